#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_archive
short_description: Carry a container image between Docker hosts as a gzip archive, for fleets without a registry
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Moves an image, such as the one M(gpufleet.vllm.vllm_image) built, from the host that built it to air-gapped hosts without a
    registry, as a file the play copies between them.
  - With O(state=exported), writes the image as C(docker save) would, gzip-compressed, to O(path), streaming it from the engine so
    that the image is never held in memory. A sidecar file C(<path>.id) records the image ID (alone on its first line), the
    reference and the archive's size; when it matches the engine's image and the archive, nothing is written.
  - With O(state=loaded), streams the archive at O(path) into the engine (the engine reads gzip directly), unless the engine already
    holds O(image) with O(image_id). After the load the engine must hold O(image) with exactly O(image_id); otherwise the load is
    undone (the tags it set go back to what they were and the images it added are removed) and the module fails.
  - Talks to the Docker engine API directly, so the C(docker) CLI is not needed on the host.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._docker_engine
attributes:
  check_mode:
    support: full
    details:
      - Asks the engine for the image and reads the sidecar, and reports the action a real run would take without writing the archive
        or loading it.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - An export whose archive and sidecar match the engine's image, and a load into an engine that holds the image with O(image_id),
        report no change.
options:
  image:
    description:
      - Full reference of the image, with its tag, such as C(registry.example.com:5000/gpufleet/vllm-cpu:0.32.0-3f9c2a7d41be) (the
        RV(gpufleet.vllm.vllm_image#module:image) that M(gpufleet.vllm.vllm_image) returned).
      - The archive carries this name, and the load gives the image this name again.
    type: str
    required: true
  path:
    description:
      - The archive file on the host, such as C(/var/lib/gpufleet/images/vllm-cpu.tar.gz).
      - For O(state=exported), missing parent directories are created, and the archive and its sidecar C(<path>.id) are written with
        mode C(0600), as the image history can hold build arguments.
    type: path
    required: true
  state:
    description:
      - V(exported) writes the engine's image to O(path); V(loaded) loads O(path) into the engine.
    type: str
    required: true
    choices: [exported, loaded]
  image_id:
    description:
      - Engine ID of the image (C(sha256:) and 64 hex digits), as the build host's M(gpufleet.vllm.vllm_image) or
        M(gpufleet.vllm.image_archive) returned it (RV(image_id)).
      - Required for O(state=loaded), where the loaded image must have exactly this ID.
      - For O(state=exported), when given, the engine's image must have this ID, so that the archive holds the image that was planned.
    type: str
  timeout:
    description:
      - Seconds the engine may stay silent during an export or a load before the module gives up.
      - Loading a large image can keep the engine busy for minutes after the archive is sent; raise it for slow disks.
    type: int
    default: 3600
notes:
  - Archives are as large as the compressed image layers (several GB for CUDA images); make room at O(path) on both hosts.
seealso:
  - module: gpufleet.vllm.vllm_image
  - module: community.docker.docker_image_export
  - module: community.docker.docker_image_load
"""

EXAMPLES = r"""
---
- name: Build the image on the build host
  gpufleet.vllm.vllm_image:
    plan: "{{ planned.plan }}"
    recipe_dir: /var/lib/gpufleet/build/{{ planned.plan.variant }}
    registry_push: false
  register: built
  delegate_to: "{{ gpufleet_build_host }}"
  run_once: true

- name: Export it to an archive there
  gpufleet.vllm.image_archive:
    image: "{{ built.image }}"
    image_id: "{{ built.image_id }}"
    path: /var/lib/gpufleet/images/vllm.tar.gz
    state: exported
  delegate_to: "{{ gpufleet_build_host }}"
  run_once: true

# Copying it to each host (for example with ansible.builtin.fetch, then ansible.builtin.copy) is left to the play.

- name: Load it on every GPU host
  gpufleet.vllm.image_archive:
    image: "{{ built.image }}"
    image_id: "{{ built.image_id }}"
    path: /var/lib/gpufleet/images/vllm.tar.gz
    state: loaded
"""

RETURN = r"""
image:
  description: The image reference, as given.
  returned: success
  type: str
  sample: registry.example.com:5000/gpufleet/vllm-cpu:0.32.0-3f9c2a7d41be
image_id:
  description:
    - Engine ID of the image; for O(state=loaded), O(image_id) once the engine holds it (null in check mode before a load).
  returned: success
  type: str
  sample: sha256:49d3d430d3b2e0b8c6f53e5d0a5c1e1a8a8e8f2b6c4d0f3a1b2c3d4e5f6a7b8c
action:
  description:
    - What the run did (in check mode, would do).
    - V(exported) (the archive was written), V(loaded) (the archive was loaded into the engine) or V(present) (the archive, or the
      engine's image, was already what it should be).
  returned: success
  type: str
  sample: exported
bytes:
  description:
    - Size of the archive at O(path) in bytes.
    - Null in check mode when the archive would be written, and for O(state=loaded) when the engine holds the image and there is
      no archive at O(path).
  returned: success
  type: int
  sample: 2147483648
"""

import gzip
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.gpufleet.vllm.plugins.module_utils._image_archive import (
    SIDECAR_SUFFIX,
    ArchiveError,
    check_image_id,
    check_reference,
    export_action,
    load_action,
    loaded_images,
    parse_sidecar,
    rollback_steps,
    sidecar_text,
    snapshot,
)

from ansible_collections.gpufleet.vllm.plugins.module_utils._docker_engine import (
    DOCKER_IMPORT_ERROR,
    MISSING_SDK,
    APIError,
    DockerException,
    NotFound,
    connect,
    image_id,
)

_CHUNK = 4 * 1024 * 1024
# Compression only has to beat the network relay: level 1 saved a 416 MB image three times faster than
# level 6 for an archive 11 % larger (measured on the build machines), and levels above cost more still.
_COMPRESS_LEVEL = 1


class Engine(object):
    """The Docker engine API calls of an export or a load (all present in Docker SDK 5.0.3)."""

    def __init__(self, docker_host, timeout):
        self.timeout = timeout
        self.api = connect(docker_host, timeout, ArchiveError)

    def image_id(self, reference):
        return image_id(self.api, reference, ArchiveError)

    def snapshot(self):
        try:
            return snapshot(self.api.images())
        except (APIError, DockerException) as exc:
            raise ArchiveError("The Docker engine could not list its images (%s); check the engine's health." % to_native(exc))

    def save(self, image, handle):
        """Write the engine's `docker save` tar of image to handle, gzip-compressed, chunk by chunk."""
        # mtime 0 and no file name in the gzip header: the same image gives the same archive bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=_COMPRESS_LEVEL, mtime=0) as packed:
            for chunk in self.api.get_image(image, chunk_size=_CHUNK):
                packed.write(chunk)

    def load(self, path):
        """Stream the archive at path into the engine; (output lines, error or None)."""
        lines, error = [], None
        try:
            with open(path, "rb") as handle:
                for chunk in self.api.load_image(handle):
                    if not isinstance(chunk, dict):
                        continue
                    lines.extend(line for line in to_native(chunk.get("stream") or "").splitlines() if line.strip())
                    if chunk.get("error"):
                        error = to_native(chunk["error"]).strip()
        except (APIError, DockerException) as exc:
            error = to_native(exc)
        except (IOError, OSError) as exc:
            error = "%s (no answer within %d seconds, or the archive cannot be read)" % (to_native(exc), self.timeout)
        return lines, error

    def undo(self, steps):
        """Apply rollback_steps(); an image gone already (removed with its last tag) is fine."""
        for step in steps:
            try:
                if step[0] == "tag":
                    repository, dummy, tag = step[2].rpartition(":")
                    self.api.tag(step[1], repository, tag, force=True)
                else:
                    # Removing a reference drops that tag, and the image with its last tag; removing an ID drops the image.
                    self.api.remove_image(step[1])
            except NotFound:
                pass
            except (APIError, DockerException) as exc:
                raise ArchiveError("Undoing the load failed at %s (%s); check the engine's images by hand." % (" ".join(step), to_native(exc)))


def _archive_size(path):
    return os.path.getsize(path) if os.path.isfile(path) else None


def _read_sidecar(path):
    try:
        with open(path + SIDECAR_SUFFIX) as handle:
            return parse_sidecar(handle.read())
    except (IOError, OSError):
        return None


def _replace(path, write):
    """Write a file through a temporary file beside it (mode 0600), renamed over path only once complete."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".part", dir=directory)
    renamed = False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
        renamed = True
    finally:
        if not renamed and os.path.exists(temporary):
            os.unlink(temporary)


def _write_archive(engine, image, image_id, path):
    """Export image to path and write its sidecar; returns the archive's size."""
    directory = os.path.dirname(path)
    sidecar = path + SIDECAR_SUFFIX
    try:
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        # The old sidecar goes first: a run cut short must never leave it vouching for a new archive.
        if os.path.lexists(sidecar):
            os.unlink(sidecar)
        _replace(path, lambda handle: engine.save(image, handle))
        size = os.path.getsize(path)
        _replace(sidecar, lambda handle: handle.write(sidecar_text(image_id, image, size).encode("utf-8")))
    except (APIError, DockerException, IOError, OSError) as exc:
        raise ArchiveError(
            "Exporting %s to %s failed (%s); check the free space there and the engine's health, then run again." % (image, path, to_native(exc))
        )
    return size


def _export(module, engine, result):
    params = module.params
    image, path = params["image"], params["path"]
    engine_id = engine.image_id(image)
    if engine_id is None:
        raise ArchiveError("The engine holds no image %s to export; build or pull it first (gpufleet.vllm.vllm_image) and run again." % image)
    if params["image_id"] and engine_id != params["image_id"]:
        raise ArchiveError(
            "The engine holds %s as %s, not the image ID %s that was asked for; build the image again or pass its current image_id."
            % (image, engine_id, params["image_id"])
        )
    if os.path.isdir(path):
        raise ArchiveError("path %s is a directory; give the archive's file name, such as %s/vllm.tar.gz." % (path, path.rstrip("/")))
    size = _archive_size(path)
    action = export_action(engine_id, image, size, _read_sidecar(path) if size is not None else None)
    result.update(image_id=engine_id, action=action, changed=action != "present", bytes=size if action == "present" else None)
    if action == "exported" and not module.check_mode:
        result["bytes"] = _write_archive(engine, image, engine_id, path)


def _undo_load(engine, image, before, lines):
    """Put the engine's tags and images back as they were before the load."""
    references, image_ids = loaded_images(lines)
    engine.undo(rollback_steps(before, engine.snapshot(), list(references) + [image], image_ids))


def _load(module, engine, result):
    params = module.params
    image, path, image_id = params["image"], params["path"], params["image_id"]
    action = load_action(engine.image_id(image), image_id)
    size = _archive_size(path)
    result.update(action=action, changed=action == "loaded", bytes=size, image_id=image_id if action == "present" else None)
    if action == "present":
        return
    if size is None:
        raise ArchiveError("There is no archive at %s to load %s from; export it on the build host (state=exported) and copy it here first." % (path, image))
    if module.check_mode:
        return
    before = engine.snapshot()
    lines, error = engine.load(path)
    if error:
        _undo_load(engine, image, before, lines)
        result["changed"] = False
        raise ArchiveError("Loading the archive at %s failed (%s); the archive may be damaged: delete it and run again." % (path, error))
    loaded_id = engine.image_id(image)
    if loaded_id != image_id:
        _undo_load(engine, image, before, lines)
        result["changed"] = False
        holds = "%s as %s" % (image, loaded_id) if loaded_id else "no image %s" % image
        raise ArchiveError("The archive at %s holds %s, not the image ID %s the build host made; delete it and run again." % (path, holds, image_id))
    result["image_id"] = loaded_id


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            path=dict(type="path", required=True),
            state=dict(type="str", required=True, choices=["exported", "loaded"]),
            image_id=dict(type="str"),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
            timeout=dict(type="int", default=3600),
        ),
        required_if=[("state", "loaded", ("image_id",))],
        supports_check_mode=True,
    )
    if DOCKER_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib(MISSING_SDK), exception=DOCKER_IMPORT_ERROR)

    params = module.params
    result = dict(changed=False, image=params["image"])
    try:
        check_reference(params["image"])
        if params["image_id"] is not None:
            check_image_id(params["image_id"])
        engine = Engine(params["docker_host"], params["timeout"])
        if params["state"] == "exported":
            _export(module, engine, result)
        else:
            _load(module, engine, result)
    except ArchiveError as exc:
        module.fail_json(msg=exc.message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
