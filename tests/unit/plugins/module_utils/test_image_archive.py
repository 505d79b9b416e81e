# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._image_archive import (
    ArchiveError,
    Snapshot,
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

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64
ID_C = "sha256:" + "c" * 64
IMAGE = "registry.example.com:5000/gpufleet/vllm-cpu:0.32.0-3f9c2a7d41be"


def test_sidecar_round_trip_with_the_id_alone_on_the_first_line():
    text = sidecar_text(ID_A, IMAGE, 1234)
    assert text.splitlines()[0] == ID_A
    assert parse_sidecar(text) == {"image_id": ID_A, "image": IMAGE, "bytes": 1234}


@pytest.mark.parametrize("text, expected", [
    ("", None),
    ("not an id\nimage x:1\nbytes 1\n", None),
    ("sha256:abc\n", None),
    # A sidecar an operator wrote by hand with the ID alone: it vouches for neither the name nor the size.
    (ID_A + "\n", {"image_id": ID_A, "image": None, "bytes": None}),
    (ID_A + "\nbytes many\nimage x:1\nother y\n", {"image_id": ID_A, "image": "x:1", "bytes": None}),
])
def test_parse_sidecar(text, expected):
    assert parse_sidecar(text) == expected


@pytest.mark.parametrize("archive_bytes, sidecar, expected", [
    (None, None, "exported"),
    (1234, None, "exported"),
    (None, {"image_id": ID_A, "image": IMAGE, "bytes": 1234}, "exported"),
    (1234, {"image_id": ID_A, "image": IMAGE, "bytes": 1234}, "present"),
    (1234, {"image_id": ID_B, "image": IMAGE, "bytes": 1234}, "exported"),
    (1234, {"image_id": ID_A, "image": "other/name:1", "bytes": 1234}, "exported"),
    # Cut short or replaced behind the sidecar's back.
    (99, {"image_id": ID_A, "image": IMAGE, "bytes": 1234}, "exported"),
    (1234, {"image_id": ID_A, "image": None, "bytes": None}, "exported"),
])
def test_export_action(archive_bytes, sidecar, expected):
    assert export_action(ID_A, IMAGE, archive_bytes, sidecar) == expected


def test_load_action():
    assert load_action(ID_A, ID_A) == "present"
    assert load_action(None, ID_A) == "loaded"
    assert load_action(ID_B, ID_A) == "loaded"


def test_check_image_id():
    check_image_id(ID_A)
    for bad in (None, "", "a" * 64, "sha256:" + "A" * 64, "sha256:abc", "sha512:" + "a" * 64):
        with pytest.raises(ArchiveError, match="is not an engine image ID"):
            check_image_id(bad)


def test_check_reference():
    for good in (IMAGE, "gpufleet/vllm-cpu:0.32.0", "localhost:5000/vllm:1", "busybox:1"):
        check_reference(good)
    for bad in ("gpufleet/vllm-cpu", "localhost:5000/vllm", "vllm:", "gpufleet/vllm@sha256:" + "a" * 64, ""):
        with pytest.raises(ArchiveError, match="is not a reference with a tag"):
            check_reference(bad)


def test_snapshot_ignores_the_untagged_pseudo_tag():
    images = [
        {"Id": ID_A, "RepoTags": [IMAGE, "other:1"]},
        {"Id": ID_B, "RepoTags": ["<none>:<none>"]},
        {"Id": ID_C, "RepoTags": None},
    ]
    assert snapshot(images) == Snapshot({IMAGE: ID_A, "other:1": ID_A}, {ID_A, ID_B, ID_C})


def test_loaded_images():
    lines = ["Loaded image: %s" % IMAGE, "Loaded image ID: %s" % ID_B, "unrelated output", "Loaded image: other:1 "]
    assert loaded_images(lines) == ([IMAGE, "other:1"], [ID_B])


def test_rollback_of_a_load_into_an_engine_without_the_image():
    before = Snapshot({"unrelated:1": ID_C}, {ID_C})
    after = Snapshot({"unrelated:1": ID_C, IMAGE: ID_A, "built-meanwhile:1": ID_B}, {ID_A, ID_B, ID_C})
    # Only what the load reported is touched: an image another client made meanwhile stays.
    assert rollback_steps(before, after, [IMAGE], []) == [("untag", IMAGE), ("remove", ID_A)]


def test_rollback_of_a_load_that_moved_tags():
    before = Snapshot({IMAGE: ID_C, "extra:1": ID_B}, {ID_B, ID_C})
    after = Snapshot({IMAGE: ID_A, "extra:1": ID_B, "new:1": ID_A}, {ID_A, ID_B, ID_C})
    steps = rollback_steps(before, after, [IMAGE, "extra:1", "new:1", IMAGE], [])
    assert steps == [("untag", "new:1"), ("tag", ID_C, IMAGE), ("remove", ID_A)]


def test_rollback_keeps_images_the_engine_had():
    # The archive held an image the engine had under another name: only the new tag goes.
    before = Snapshot({"old-name:1": ID_A}, {ID_A})
    after = Snapshot({"old-name:1": ID_A, IMAGE: ID_A}, {ID_A})
    assert rollback_steps(before, after, [IMAGE], [ID_A]) == [("untag", IMAGE)]


def test_rollback_removes_untagged_images_the_load_brought():
    before = Snapshot({}, {ID_C})
    after = Snapshot({}, {ID_A, ID_C})
    assert rollback_steps(before, after, [IMAGE], [ID_A]) == [("remove", ID_A)]
    assert rollback_steps(before, Snapshot({}, {ID_C}), [IMAGE], []) == []
