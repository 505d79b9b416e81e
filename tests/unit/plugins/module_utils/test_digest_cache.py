# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import collections
import hashlib
import json
import os

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._digest_cache import (
    CACHE_FORMAT,
    RACY_WINDOW_NS,
    DigestCache,
    cached_digest,
    file_key,
    parse_cache,
    rememberable,
    render_cache,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import scan_tree, scan_wheelhouse

Stat = collections.namedtuple("Stat", "st_size st_mtime_ns st_ctime_ns")
SHA = "ab" * 32
# Long after any file these tests write, so that every digest may be kept.
LATER_NS = 4 * 10 ** 18


def later():
    return LATER_NS


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_file_key_is_size_mtime_and_ctime():
    assert file_key(Stat(191794682, 1758516300123456789, 1758516301000000000)) == [191794682, 1758516300123456789, 1758516301000000000]


@pytest.mark.parametrize("entries, key, expected", [
    ({"/w/torch.whl": {"key": [10, 5, 6], "sha256": SHA}}, [10, 5, 6], SHA),
    ({"/w/torch.whl": {"key": [10, 5, 6], "sha256": SHA}}, [11, 5, 6], None),   # size changed
    ({"/w/torch.whl": {"key": [10, 5, 6], "sha256": SHA}}, [10, 7, 6], None),   # modified
    ({"/w/torch.whl": {"key": [10, 5, 6], "sha256": SHA}}, [10, 5, 8], None),   # replaced with a copied mtime
    ({}, [10, 5, 6], None),                                                    # never hashed
    ({"/w/torch.whl": "garbage"}, [10, 5, 6], None),                           # foreign entry
], ids=["same", "size", "mtime", "ctime", "absent", "foreign"])
def test_cached_digest_holds_only_for_the_same_key(entries, key, expected):
    assert cached_digest(entries, "/w/torch.whl", key) == expected


@pytest.mark.parametrize("mtime_ns, ctime_ns, hashed_at_ns, expected", [
    (0, 0, RACY_WINDOW_NS, True),
    (0, 1, RACY_WINDOW_NS, False),       # changed within the window: may change again unseen
    (1, 0, RACY_WINDOW_NS, False),
    (10 ** 18, 10 ** 18, 10 ** 18 + 5 * RACY_WINDOW_NS, True),
], ids=["old enough", "ctime too recent", "mtime too recent", "long ago"])
def test_rememberable_only_outside_the_racy_window(mtime_ns, ctime_ns, hashed_at_ns, expected):
    assert rememberable([1, mtime_ns, ctime_ns], hashed_at_ns) is expected


@pytest.mark.parametrize("text", [
    "", "not json", "[]", json.dumps({"format": "other/v9", "files": {}}), json.dumps({"format": CACHE_FORMAT, "files": []}),
], ids=["empty", "not json", "list", "other format", "files not a mapping"])
def test_parse_cache_drops_what_it_cannot_trust(text):
    assert parse_cache(text) == {}


def test_render_and_parse_round_trip():
    entries = {"/b": {"key": [1, 2, 3], "sha256": SHA}, "/a": {"key": [4, 5, 6], "sha256": SHA}}
    text = render_cache(entries)
    assert parse_cache(text) == entries
    assert text == render_cache(dict(reversed(list(entries.items()))))


def test_without_a_path_every_file_is_hashed_and_nothing_kept(tmp_path):
    wheel = tmp_path / "torch.whl"
    wheel.write_bytes(b"torch wheel")
    cache = DigestCache(clock_ns=later)
    assert [cache.sha256(str(wheel)), cache.sha256(str(wheel))] == [sha256(b"torch wheel")] * 2
    assert (cache.hashed, cache.reused, cache.save()) == (1, 1, False)


def test_an_unchanged_file_is_not_read_again(tmp_path, monkeypatch):
    wheel = tmp_path / "wheels" / "torch.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"torch wheel")
    cache_file = tmp_path / "cache" / "digests.json"
    first = DigestCache(str(cache_file), clock_ns=later)
    assert first.sha256(str(wheel)) == sha256(b"torch wheel")
    assert first.save() is True
    # The second run may not open the wheel at all.
    monkeypatch.setattr("ansible_collections.gpufleet.vllm.plugins.module_utils._digest_cache.sha256_file",
                        lambda path: pytest.fail("read %s again" % path))
    second = DigestCache(str(cache_file), clock_ns=later)
    assert second.sha256(str(wheel)) == sha256(b"torch wheel")
    assert (second.hashed, second.reused, second.save()) == (0, 1, False)


def test_a_changed_file_is_hashed_again(tmp_path):
    wheel = tmp_path / "torch.whl"
    wheel.write_bytes(b"torch wheel")
    cache_file = str(tmp_path / "digests.json")
    first = DigestCache(cache_file, clock_ns=later)
    first.sha256(str(wheel))
    first.save()
    stat = os.stat(str(wheel))
    wheel.write_bytes(b"torch whelk")   # same size
    os.utime(str(wheel), ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    second = DigestCache(cache_file, clock_ns=later)
    assert second.sha256(str(wheel)) == sha256(b"torch whelk")
    assert second.hashed == 1


def test_a_fresh_file_is_hashed_but_not_remembered(tmp_path):
    wheel = tmp_path / "torch.whl"
    wheel.write_bytes(b"torch wheel")
    cache_file = tmp_path / "digests.json"
    stat = os.stat(str(wheel))
    cache = DigestCache(str(cache_file), clock_ns=lambda: max(stat.st_mtime_ns, stat.st_ctime_ns) + 1)
    assert cache.sha256(str(wheel)) == sha256(b"torch wheel")
    assert cache.save() is False
    assert not cache_file.exists()


def test_save_drops_files_that_are_gone(tmp_path):
    kept, gone = tmp_path / "kept.whl", tmp_path / "gone.whl"
    kept.write_bytes(b"kept")
    gone.write_bytes(b"gone")
    cache_file = tmp_path / "digests.json"
    cache = DigestCache(str(cache_file), clock_ns=later)
    cache.sha256(str(kept))
    cache.sha256(str(gone))
    gone.unlink()
    cache.save()
    assert list(parse_cache(cache_file.read_text())) == [str(kept)]


def test_an_unreadable_cache_is_ignored(tmp_path):
    wheel = tmp_path / "torch.whl"
    wheel.write_bytes(b"torch wheel")
    cache_file = tmp_path / "digests.json"
    cache_file.write_bytes(b"\xff\xfe not a cache")
    cache = DigestCache(str(cache_file), clock_ns=later)
    assert cache.sha256(str(wheel)) == sha256(b"torch wheel")
    assert cache.save() is True
    assert list(parse_cache(cache_file.read_text())) == [str(wheel)]


def test_save_raises_where_the_cache_cannot_be_written(tmp_path):
    wheel = tmp_path / "torch.whl"
    wheel.write_bytes(b"torch wheel")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    cache = DigestCache(str(blocker / "digests.json"), clock_ns=later)
    cache.sha256(str(wheel))
    with pytest.raises(OSError):
        cache.save()


def test_scans_through_the_cache_give_the_plain_digests(tmp_path):
    recipe, wheelhouse = tmp_path / "recipe", tmp_path / "wheels"
    recipe.mkdir()
    wheelhouse.mkdir()
    (recipe / "Dockerfile").write_text("FROM scratch\n")
    (wheelhouse / "torch.whl").write_bytes(b"torch wheel")
    cache = DigestCache(str(tmp_path / "digests.json"), clock_ns=later)
    assert scan_tree(str(recipe), cache.sha256) == scan_tree(str(recipe))
    assert scan_wheelhouse(str(wheelhouse), cache.sha256) == scan_wheelhouse(str(wheelhouse))
