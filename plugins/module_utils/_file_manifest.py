# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Manifests of copied file trees: relative path, size and modification time of each file.

ansible.builtin.copy checksums every file on the controller and on the host on every run, one module
call per file: a model or a wheelhouse of hundreds of MiB is read twice to find nothing to do. The
roles record, beside each copy, the manifest of the controller's files it was made from and the
manifest of the host's files it left; while both still hold, the copy is current and is not run.
"""

from __future__ import annotations

import os


def file_manifest(files, root=None):
    """Sorted [[relative path, size, mtime]] of the regular files (and links) of a listing.

    files: the `files` of ansible.builtin.find (absolute paths under root) or the items of the
    community.general.filetree lookup (paths relative to its root); directories are left out.
    root: the directory absolute paths are made relative to; None when they are relative already.
    """
    entries = []
    for item in files:
        if item.get("state") == "directory" or item.get("isdir"):
            continue
        path = item["path"]
        if root is not None and os.path.isabs(path):
            path = os.path.relpath(path, root)
        entries.append([path.replace(os.sep, "/"), int(item["size"]), float(item["mtime"])])
    return sorted(entries)
