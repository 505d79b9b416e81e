# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""gpufleet.vllm.image_archive against this machine's real Docker engine, through real Ansible.

The images are imported from a few bytes of tar, so no registry and no base image are needed; a
missing engine fails the tests (never skips them).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import uuid

import pytest

# tests/integration is on sys.path (pytest puts each test file's directory there): share the engine client and the ad hoc runner.
from test_vllm_image import engine_client, run_module

MODULE = "gpufleet.vllm.image_archive"
WRONG_ID = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def engine():
    return engine_client()


@pytest.fixture
def repository(engine):
    """A repository of its own for one test; every image under it is removed afterwards."""
    name = "gpufleet-it-%s/archive" % uuid.uuid4().hex[:10]
    yield name
    for image in engine.images():
        for tag in image.get("RepoTags") or ():
            if tag.startswith(name + ":"):
                engine.remove_image(tag, force=True)


def make_image(engine, reference, content):
    """Import a one-file image under reference; returns its ID."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        payload = content.encode("utf-8")
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    repository, dummy, tag = reference.rpartition(":")
    engine.import_image_from_data(data.getvalue(), repository=repository, tag=tag)
    return engine.inspect_image(reference)["Id"]


def image_id(engine, reference):
    import docker

    try:
        return engine.inspect_image(reference)["Id"]
    except docker.errors.NotFound:
        return None


def engine_images(engine):
    """{image ID: sorted tags} of the whole engine, to show that a failed load left it as it was."""
    return dict((image["Id"], sorted(tag for tag in image.get("RepoTags") or () if tag != "<none>:<none>")) for image in engine.images())


def archive(args, check=False):
    result, dummy = run_module(args, check=check, module=MODULE)
    return result


def test_export_delete_load_and_idempotence(engine, repository, tmp_path):
    reference = "%s:1" % repository
    original = make_image(engine, reference, "hello %s" % uuid.uuid4().hex)
    path = tmp_path / "images" / "archive.tar.gz"
    exported = {"image": reference, "path": str(path), "state": "exported"}

    checked = archive(exported, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert (checked["changed"], checked["action"], checked["image_id"], checked["bytes"]) == (True, "exported", original, None)
    assert not path.parent.exists(), "check mode wrote something"

    written = archive(dict(exported, image_id=original))
    assert not written.get("failed"), written.get("msg")
    assert (written["changed"], written["action"], written["image"], written["image_id"]) == (True, "exported", reference, original)
    assert written["bytes"] == path.stat().st_size > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with gzip.open(str(path)) as unpacked, tarfile.open(fileobj=unpacked, mode="r|") as tar:
        assert "manifest.json" in [member.name for member in tar]
    sidecar = (tmp_path / "images" / "archive.tar.gz.id").read_text().splitlines()
    assert sidecar == [original, "image %s" % reference, "bytes %d" % written["bytes"]]
    assert sorted(os.listdir(str(path.parent))) == ["archive.tar.gz", "archive.tar.gz.id"], "a temporary file was left"

    mtime = path.stat().st_mtime_ns
    for check in (True, False):
        again = archive(exported, check=check)
        assert (again["changed"], again["action"], again["image_id"], again["bytes"]) == (False, "present", original, written["bytes"])
    assert path.stat().st_mtime_ns == mtime

    engine.remove_image(reference, force=True)
    loaded_args = {"image": reference, "path": str(path), "state": "loaded", "image_id": original}
    checked = archive(loaded_args, check=True)
    assert (checked["changed"], checked["action"], checked["image_id"], checked["bytes"]) == (True, "loaded", None, written["bytes"])
    assert image_id(engine, reference) is None, "check mode loaded the image"

    loaded = archive(loaded_args)
    assert not loaded.get("failed"), loaded.get("msg")
    assert (loaded["changed"], loaded["action"], loaded["image_id"]) == (True, "loaded", original)
    assert image_id(engine, reference) == original

    # Present in the engine: the archive is not even needed.
    path.unlink()
    for check in (True, False):
        again = archive(loaded_args, check=check)
        assert not again.get("failed"), again.get("msg")
        assert (again["changed"], again["action"], again["image_id"], again["bytes"]) == (False, "present", original, None)


def test_a_changed_image_is_exported_again(engine, repository, tmp_path):
    reference = "%s:1" % repository
    make_image(engine, reference, "first")
    path = tmp_path / "archive.tar.gz"
    first = archive({"image": reference, "path": str(path), "state": "exported"})
    assert first["action"] == "exported", first.get("msg")

    second_id = make_image(engine, reference, "second")
    second = archive({"image": reference, "path": str(path), "state": "exported"})
    assert (second["changed"], second["action"], second["image_id"]) == (True, "exported", second_id)
    assert (tmp_path / "archive.tar.gz.id").read_text().splitlines()[0] == second_id


def test_a_wrong_image_id_fails_and_leaves_the_engine_as_it_was(engine, repository, tmp_path):
    reference = "%s:1" % repository
    make_image(engine, reference, "archived %s" % uuid.uuid4().hex)
    path = tmp_path / "archive.tar.gz"
    assert archive({"image": reference, "path": str(path), "state": "exported"})["action"] == "exported"
    expected = (
        "The archive at %s holds %s as %%s, not the image ID %s the build host made; delete it and run again." % (path, reference, WRONG_ID)
    )
    archived = image_id(engine, reference)

    # The engine lacks the image: the load is undone by removing what it brought.
    engine.remove_image(reference, force=True)
    before = engine_images(engine)
    failed = archive({"image": reference, "path": str(path), "state": "loaded", "image_id": WRONG_ID})
    assert failed.get("failed") is True
    assert failed["msg"] == expected % archived
    assert engine_images(engine) == before

    # The engine holds another image under the name: the tag goes back to it.
    other = make_image(engine, reference, "another image %s" % uuid.uuid4().hex)
    before = engine_images(engine)
    failed = archive({"image": reference, "path": str(path), "state": "loaded", "image_id": WRONG_ID})
    assert failed["msg"] == expected % archived
    assert image_id(engine, reference) == other
    assert engine_images(engine) == before


def test_failures_name_the_problem(engine, repository, tmp_path):
    reference = "%s:1" % repository
    path = tmp_path / "archive.tar.gz"

    missing = archive({"image": reference, "path": str(path), "state": "exported"})
    assert missing["msg"] == (
        "The engine holds no image %s to export; build or pull it first (gpufleet.vllm.vllm_image) and run again." % reference
    )
    made = make_image(engine, reference, "x")
    wrong = archive({"image": reference, "path": str(path), "state": "exported", "image_id": WRONG_ID})
    assert wrong["msg"] == (
        "The engine holds %s as %s, not the image ID %s that was asked for; build the image again or pass its current image_id."
        % (reference, made, WRONG_ID)
    )
    assert not path.exists()

    absent = archive({"image": reference, "path": str(path), "state": "loaded", "image_id": WRONG_ID})
    assert absent["msg"] == (
        "There is no archive at %s to load %s from; export it on the build host (state=exported) and copy it here first." % (path, reference)
    )

    path.write_bytes(gzip.compress(b"this is not a tar archive" * 100))
    before = engine_images(engine)
    damaged = archive({"image": reference, "path": str(path), "state": "loaded", "image_id": WRONG_ID})
    assert damaged.get("failed") is True
    assert damaged["msg"].startswith("Loading the archive at %s failed (" % path), damaged["msg"]
    assert damaged["msg"].endswith("); the archive may be damaged: delete it and run again.")
    assert engine_images(engine) == before

    untagged = archive({"image": repository, "path": str(path), "state": "exported"})
    assert untagged["msg"].startswith("image %s is not a reference with a tag;" % repository)
    required = archive({"image": reference, "path": str(path), "state": "loaded"})
    assert required.get("failed") is True and "image_id" in required["msg"]
