# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Content-addressed image tags for the images the collection builds, the present/pull/build decision,
and the reading of build output.

The tag of a built image is derived from everything that goes into the build (recipe files, build
arguments, wheelhouse, extra CA certificates, vLLM source tree), so that a changed input gives a new tag and an
unchanged one the same tag: the service then runs exactly the image its inputs describe, and a
host that finds the tag locally or in the registry knows it needs no build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

# Bump when the digest layout changes, so that old and new tags can never collide.
DIGEST_FORMAT = "gpufleet.vllm/image-recipe/v1"
TAG_DIGEST_LENGTH = 12
# Docker tags are at most 128 characters of [A-Za-z0-9_.-], not starting with . or - (distribution
# reference grammar).
TAG_MAX_LENGTH = 128
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Build arguments that only set how many compilers run in parallel: the image is the same whatever
# their value, and hosts with different CPU counts must still agree on the tag to share a registry.
PARALLELISM_BUILD_ARGS = frozenset(("MAX_JOBS", "NVCC_THREADS", "CMAKE_BUILD_PARALLEL_LEVEL"))
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
_CHUNK = 1024 * 1024
# Directories of a source tree that the build never needs and that change without the source changing:
# a fresh clone or a test run would otherwise give a new tag for the same code.
SOURCE_SKIPPED_DIRS = frozenset((".git", "__pycache__"))
# The classic builder announces each Dockerfile instruction as "Step 3/9 : RUN ...".
_STEP_LINE = re.compile(r"^Step \d+/\d+ : ")
# Build log lines a failure message quotes.
FAILURE_TAIL_LINES = 15


class RecipeError(Exception):
    """Bad input for an image recipe; the message is one sentence saying what is wrong and what to do."""

    def __init__(self, message):
        super(RecipeError, self).__init__(message)
        self.message = message


# --------------------------------------------------------------------------------------------
# Hashing files


def sha256_file(path):
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan_tree(root, digest=sha256_file):
    """Sorted [(relative path with "/" separators, sha256)] of the regular files under root (links followed).

    digest(path) gives a file's sha256: sha256_file, or a digest cache's that skips unchanged files.
    """
    entries = []
    for current, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in files:
            path = os.path.join(current, name)
            if not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            entries.append((relative, digest(path)))
    return sorted(entries)


def scan_source(root, digest=sha256_file):
    """Sorted [(relative path with "/" separators, sha256)] of a source tree's regular files (links followed).

    Like scan_tree, but without SOURCE_SKIPPED_DIRS at any depth; a ".git" file (the pointer of a
    worktree or submodule checkout) is skipped too, as its content is a path on the host.
    """
    entries = []
    for current, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(name for name in dirs if name not in SOURCE_SKIPPED_DIRS)
        for name in files:
            path = os.path.join(current, name)
            if name in SOURCE_SKIPPED_DIRS or not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            entries.append((relative, digest(path)))
    return sorted(entries)


def scan_wheelhouse(path, digest=sha256_file):
    """Sorted [(file name, sha256)] of the *.whl files directly in a wheelhouse directory."""
    entries = []
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if name.endswith(".whl") and os.path.isfile(full):
            entries.append((name, digest(full)))
    return sorted(entries)


def cert_context_name(sha256):
    """File name of an extra CA certificate in the build context's certs/.

    Named after the content so that the context (and the image, which installs the file under this
    name) depends on the certificates alone, not on where they lay on the host.
    """
    return "ca-%s.crt" % sha256[:16]


# --------------------------------------------------------------------------------------------
# Digest and tag


def redact_url(url):
    """The URL without its user:password@ part, which pip index URLs may carry."""
    return _URL_USERINFO.sub(r"\1", str(url))


def hashed_build_args(build_args):
    """The build arguments that shape the image, as sorted [(name, value)] of strings.

    Parallelism arguments are left out (see PARALLELISM_BUILD_ARGS), and credentials in URLs are
    dropped so that a rotated index token does not trigger a rebuild.
    """
    result = []
    for name, value in (build_args or {}).items():
        name = str(name)
        if name in PARALLELISM_BUILD_ARGS:
            continue
        value = "" if value is None else str(value)
        result.append((name, " ".join(redact_url(part) for part in value.split(" "))))
    return sorted(result)


def recipe_digest(recipe_files, build_args, wheel_files=(), cert_digests=(), source_files=()):
    """Hex sha256 over everything a build consumes.

    recipe_files: [(relative path, sha256)] of the recipe directory (scan_tree);
    build_args: dict of effective build arguments;
    wheel_files: [(wheel file name, sha256)] (scan_wheelhouse);
    cert_digests: sha256 of each extra CA certificate (order and duplicates do not matter);
    source_files: [(relative path, sha256)] of the vLLM source tree (scan_source).
    """
    document = {
        "format": DIGEST_FORMAT,
        "recipe": sorted([str(path), str(sha)] for path, sha in recipe_files),
        "build_args": [list(pair) for pair in hashed_build_args(build_args)],
        "wheels": sorted([str(name), str(sha)] for name, sha in wheel_files),
        "certs": sorted(set(str(sha) for sha in cert_digests)),
    }
    # Only present when there is a source tree, so that the tags of images built without one stay
    # what they were before source trees counted.
    if source_files:
        document["source"] = sorted([str(path), str(sha)] for path, sha in source_files)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_tag(version_label, digest):
    """Tag "<version label>-<first 12 hex digits of the digest>", shortened to fit Docker's 128 characters."""
    if not re.match(r"^[0-9a-f]{%d,}$" % TAG_DIGEST_LENGTH, str(digest)):
        raise RecipeError("The recipe digest %r is not a hex sha256." % (digest,))
    label = _TAG_UNSAFE.sub("-", str(version_label or "")).lstrip(".-") or "build"
    label = label[:TAG_MAX_LENGTH - TAG_DIGEST_LENGTH - 1]
    return "%s-%s" % (label, digest[:TAG_DIGEST_LENGTH])


# --------------------------------------------------------------------------------------------
# Image references


def split_reference(reference):
    """(repository, tag) of an image reference; tag is None when it has none (a digest reference keeps its @ part)."""
    reference = str(reference or "").strip()
    if not reference:
        raise RecipeError("The plan names no image; pass the plan returned by gpufleet.vllm.vllm_plan.")
    if "@" in reference:
        return reference, None
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, None


def registry_host(repository):
    """Registry host part of a repository ("registry.example.com:5000/gpufleet/vllm-cpu"), None for Docker Hub names.

    Follows Docker's rule: the first component is a host when it holds "." or ":" or is "localhost".
    """
    first, sep, dummy = str(repository).partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def build_reference(plan_image, digest):
    """Image reference of a build plan: the plan's repository with the content tag of its version label."""
    repository, tag = split_reference(plan_image)
    if "@" in repository:
        raise RecipeError("The plan's image %s is pinned by digest, so it cannot name a built image; pass a plan whose build is true." % plan_image)
    return "%s:%s" % (repository, content_tag(tag or "build", digest))


# --------------------------------------------------------------------------------------------
# Decision


def decide(present_locally, in_registry, build, registry, push=True):
    """What to do for an image: (action, push).

    action: "present" (nothing to do), "pushed" (built here before, but its registry lacks it: the
    push failed or never ran, so it is pushed now), "pulled" (the registry has it) or "built";
    push: whether the image goes to ``registry`` (a registry host, or None).
    Raises RecipeError when the image is neither local nor in a registry and cannot be built.
    """
    if present_locally:
        if build and registry and push and not in_registry:
            return "pushed", True
        return "present", False
    if in_registry:
        return "pulled", False
    if not build:
        raise RecipeError(
            "The image is neither on the host nor in its registry, and prebuilt images are never built here; "
            "check the image name and that the host can reach its registry."
        )
    return "built", bool(registry) and bool(push)


# --------------------------------------------------------------------------------------------
# Build output


class LineSplitter(object):
    """Cuts a stream of text chunks into whole lines.

    The engine's chunks need not end at line ends: a line (and a credential in it) can arrive in
    two pieces, and only whole lines can be masked and written to the build log safely.
    """

    def __init__(self):
        self._partial = ""

    def feed(self, text):
        """The lines that text completes, without their line ends."""
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        return [piece.rstrip("\r") for piece in pieces]

    def rest(self):
        """The unfinished last line, if any, once the stream has ended."""
        rest, self._partial = self._partial, ""
        return [rest] if rest else []


def is_step_line(line):
    """Whether a build output line announces a Dockerfile instruction ("Step 3/9 : RUN ...")."""
    return bool(_STEP_LINE.match(line))


def build_failure_message(reference, error, step, tail, log_path=None):
    """The fail message of a build: the failing step, the engine's error, the last log lines and where the log is.

    step: the last "Step N/M : ..." line seen (None when the build failed before its first step);
    tail: the last build output lines (the last FAILURE_TAIL_LINES are quoted);
    log_path: the file holding the whole log, None when the output was kept in build_log only.
    """
    if step:
        where, todo = "at %s" % step, "fix that step or its inputs"
    else:
        where, todo = "before its first step", "check the recipe directory and the engine's log"
    if log_path:
        full = "the full log is in %s" % log_path
    else:
        full = "the last output lines are in build_log (set log_path to keep the whole log)"
    lines = list(tail)[-FAILURE_TAIL_LINES:]
    message = "Building %s failed %s: %s; %s and run again, %s." % (reference, where, error, todo, full)
    if lines:
        message += "\nLast %d lines of the build log:\n%s" % (len(lines), "\n".join(lines))
    return message
