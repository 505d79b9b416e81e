# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Image archives that carry an image from a build host to hosts without a registry: the sidecar
file that makes exports idempotent, the export/load decisions, and how to undo a load that brought
the wrong image.
"""

from __future__ import annotations

import collections
import re

# The sidecar lies next to the archive, as "<path>.id".
SIDECAR_SUFFIX = ".id"
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# What the engine's /images/load answers for each image it took from the archive.
_LOADED_REFERENCE = re.compile(r"^Loaded image: (\S+)\s*$")
_LOADED_ID = re.compile(r"^Loaded image ID: (sha256:[0-9a-f]{64})\s*$")
# Engines before the containerd store list untagged images with this pseudo tag.
_NO_TAG = "<none>:<none>"

# The engine's images at one moment: tags is {reference: image ID}, ids the set of image IDs.
Snapshot = collections.namedtuple("Snapshot", "tags ids")


class ArchiveError(Exception):
    """The archive cannot be written or loaded; the message is one sentence saying what is wrong and what to do."""

    def __init__(self, message):
        super(ArchiveError, self).__init__(message)
        self.message = message


def check_image_id(image_id):
    """Raise ArchiveError unless image_id is an engine image ID ("sha256:" and 64 hex digits)."""
    if not _IMAGE_ID.match(str(image_id or "")):
        raise ArchiveError(
            "image_id %r is not an engine image ID (sha256: and 64 hex digits); pass the image_id that "
            "gpufleet.vllm.vllm_image or image_archive returned on the build host." % (image_id,)
        )


def check_reference(image):
    """Raise ArchiveError unless image names a repository and a tag, which the archive must carry to name the image on load."""
    image = str(image or "")
    last = image.rsplit("/", 1)[-1]
    if "@" in image or ":" not in last or last.endswith(":"):
        raise ArchiveError(
            "image %s is not a reference with a tag; pass the full reference, such as "
            "registry.example.com:5000/gpufleet/vllm-cpu:0.32.0-3f9c2a7d41be." % image
        )


def sidecar_text(image_id, image, size):
    """The sidecar's content: the image ID alone on the first line (so `head -n1` reads it), then the image and the archive's size."""
    return "%s\nimage %s\nbytes %d\n" % (image_id, image, size)


def parse_sidecar(text):
    """{"image_id", "image", "bytes"} from a sidecar's text; None when it is not one that sidecar_text wrote."""
    lines = str(text or "").splitlines()
    if not lines or not _IMAGE_ID.match(lines[0].strip()):
        return None
    found = {"image_id": lines[0].strip(), "image": None, "bytes": None}
    for line in lines[1:]:
        key, dummy, value = line.strip().partition(" ")
        if key == "image":
            found["image"] = value.strip()
        elif key == "bytes" and value.strip().isdigit():
            found["bytes"] = int(value.strip())
    return found


def export_action(image_id, image, archive_bytes, sidecar):
    """"present" when the archive already is the export of image_id under image, "exported" otherwise.

    archive_bytes: size of the file at the archive's path, None when there is none;
    sidecar: parse_sidecar() of the sidecar, None when there is none.
    The size guards against an archive replaced or cut short behind the sidecar's back.
    """
    if archive_bytes is None or not sidecar:
        return "exported"
    if (sidecar["image_id"], sidecar["image"], sidecar["bytes"]) == (image_id, image, archive_bytes):
        return "present"
    return "exported"


def load_action(engine_id, image_id):
    """"present" when the engine holds the image with image_id already (engine_id: its ID there, None when absent), "loaded" otherwise."""
    return "present" if engine_id == image_id else "loaded"


def snapshot(images):
    """Snapshot of the engine's image list (the engine's /images/json answer)."""
    tags, ids = {}, set()
    for image in images or ():
        ids.add(image["Id"])
        for reference in image.get("RepoTags") or ():
            if reference != _NO_TAG:
                tags[reference] = image["Id"]
    return Snapshot(tags, ids)


def loaded_images(lines):
    """(references, image IDs) that the lines of a load's output report as loaded."""
    references, ids = [], []
    for line in lines:
        match = _LOADED_REFERENCE.match(line)
        if match:
            references.append(match.group(1))
        match = _LOADED_ID.match(line)
        if match:
            ids.append(match.group(1))
    return references, ids


def rollback_steps(before, after, references, image_ids):
    """Engine calls that undo a load, as [("tag", image ID, reference) | ("untag", reference) | ("remove", image ID)].

    before, after: Snapshots taken around the load; references, image_ids: what the load brought
    (loaded_images(), plus the image the module asked for). Only those are touched, so that images
    another client tags or builds meanwhile are left alone. Tags the load moved go back to their
    old image, tags it created go away, and images that were not in the engine before are removed.
    """
    steps = []
    new_ids = set(image_id for image_id in image_ids if image_id not in before.ids)
    for reference in sorted(set(references)):
        old, new = before.tags.get(reference), after.tags.get(reference)
        if new is not None and new not in before.ids:
            new_ids.add(new)
        if old == new:
            continue
        steps.append(("tag", old, reference) if old else ("untag", reference))
    steps.extend(("remove", image_id) for image_id in sorted(new_ids))
    return steps
