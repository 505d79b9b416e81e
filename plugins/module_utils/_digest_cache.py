# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""File digests remembered between runs, so that unchanged build inputs are not read again.

The image tag hashes every build input on the controller and again on the build host, on every run;
a CPU torch wheel alone is 183 MiB. A file whose size, modification time and inode change time are
those seen when it was hashed is taken to hold the same content, the trust that git's index and make
place in them. The change time cannot be set from user space, so a file swapped in with a copied
modification time (cp -p, tar) is hashed again.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import sha256_file

# Bump when the cache layout changes: a cache of another format is dropped, never misread.
CACHE_FORMAT = "gpufleet.vllm/digest-cache/v1"
# A file written within this window before it was hashed may be written again within the same
# timestamp tick without its time changing (git's "racily clean" entries): its digest is not kept.
RACY_WINDOW_NS = 2 * 1000 ** 3


def file_key(stat_result):
    """[size, mtime_ns, ctime_ns] of an os.stat() result: what must stay equal for a digest to hold."""
    return [stat_result.st_size, stat_result.st_mtime_ns, stat_result.st_ctime_ns]


def cached_digest(entries, path, key):
    """The sha256 remembered for path when it was hashed with this key, else None."""
    entry = entries.get(path)
    if isinstance(entry, dict) and entry.get("key") == key:
        return entry.get("sha256")
    return None


def rememberable(key, hashed_at_ns):
    """Whether a digest taken at hashed_at_ns may be kept: the file had not changed within RACY_WINDOW_NS before."""
    return hashed_at_ns - max(key[1], key[2]) >= RACY_WINDOW_NS


def parse_cache(text):
    """The entries {path: {"key": [...], "sha256": hex}} of a cache file's text; {} for anything else.

    An unreadable or foreign cache only costs hashing again, so it is dropped rather than refused.
    """
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(document, dict) or document.get("format") != CACHE_FORMAT or not isinstance(document.get("files"), dict):
        return {}
    return document["files"]


def render_cache(entries):
    """The text of a cache file holding entries (stable order, so that an unchanged cache reads the same)."""
    return json.dumps({"format": CACHE_FORMAT, "files": entries}, indent=1, sort_keys=True) + "\n"


class DigestCache(object):
    """sha256 of files through a cache file; without a path, every file is hashed and nothing is kept."""

    def __init__(self, path=None, clock_ns=time.time_ns):
        self.path = path
        self.clock_ns = clock_ns
        self.entries = {}
        self.hashed = 0
        self.reused = 0
        self._dirty = False
        if path and os.path.isfile(path):
            try:
                with open(path) as handle:
                    self.entries = parse_cache(handle.read())
            except (IOError, OSError, UnicodeDecodeError):
                self.entries = {}

    def sha256(self, path):
        """Hex sha256 of the file at path, read only when the cache does not hold it for the file's key."""
        path = os.path.abspath(path)
        key = file_key(os.stat(path))
        digest = cached_digest(self.entries, path, key)
        if digest is not None:
            self.reused += 1
            return digest
        digest = sha256_file(path)
        self.hashed += 1
        if rememberable(key, self.clock_ns()):
            self.entries[path] = {"key": key, "sha256": digest}
            self._dirty = True
        return digest

    def save(self):
        """Write the cache file when it gained entries, without those of files that no longer exist.

        Written to a temporary file and renamed, so that a run that stops half-way leaves the old
        cache or the new one; raises IOError/OSError, which callers report as a warning.
        """
        if not self.path or not self._dirty:
            return False
        entries = dict((path, entry) for path, entry in self.entries.items() if os.path.isfile(path))
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            os.makedirs(directory)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".digests-")
        try:
            with os.fdopen(handle, "w") as output:
                output.write(render_cache(entries))
            os.rename(temporary, self.path)
        except (IOError, OSError):
            os.unlink(temporary)
            raise
        self._dirty = False
        return True
