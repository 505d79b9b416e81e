# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_lock on a real lock file: taken, taken again by the same run, refused to another run with one sentence naming it,
released only by its holder, and only read in check mode."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import run_lock

THIS = {"id": "20261203T101500-1", "controller": "deploy-1", "user": "ops", "started": "2026-12-03T10:15:00Z"}
OTHER = {"id": "20261203T100000-2", "controller": "laptop", "user": "alice", "started": "2026-12-03T10:00:00Z"}


@pytest.fixture
def lock(tmp_path):
    return tmp_path / "gpufleet" / "site.lock"


def run_module(capsys, lock, run=None, **options):
    args = dict({"run": run or THIS, "path": str(lock)}, **options)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            run_lock.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_a_free_host_is_locked_for_the_run(capsys, lock):
    code, result = run_module(capsys, lock)
    assert (code, result["changed"], result["holder"]) == (0, False, THIS)
    assert json.loads(lock.read_text()) == THIS


def test_the_same_run_takes_its_lock_again(capsys, lock):
    run_module(capsys, lock)
    code, result = run_module(capsys, lock)
    assert (code, result["holder"]) == (0, THIS)


def test_another_run_is_refused_with_one_sentence_naming_it(capsys, lock):
    run_module(capsys, lock, run=OTHER)
    code, result = run_module(capsys, lock)
    assert code == 1
    assert result["msg"] == (
        "This host is being changed by another run (run 20261203T100000-2, started 2026-12-03T10:00:00Z, by alice, "
        "on laptop); wait until it ends, or, if it no longer runs, remove %s on this host and run again." % lock)
    assert json.loads(lock.read_text()) == OTHER


def test_a_lock_that_is_no_record_is_refused_too(capsys, lock):
    lock.parent.mkdir()
    lock.write_text("garbage")
    code, result = run_module(capsys, lock)
    assert code == 1
    assert result["msg"].startswith("This host is being changed by another run (an unreadable lock); wait until it ends,")


def test_a_run_releases_its_own_lock_only(capsys, lock):
    run_module(capsys, lock, run=OTHER)
    assert run_module(capsys, lock, state="absent")[1]["holder"] == OTHER
    assert lock.exists()
    run_module(capsys, lock, run=OTHER, state="absent")
    assert not lock.exists()


def test_releasing_a_free_host_does_nothing(capsys, lock):
    code, result = run_module(capsys, lock, state="absent")
    assert (code, result["changed"], result["holder"]) == (0, False, {})


def test_check_mode_refuses_as_a_real_run_and_writes_nothing(capsys, lock):
    assert run_module(capsys, lock, _ansible_check_mode=True)[0] == 0
    assert not lock.exists()
    run_module(capsys, lock, run=OTHER)
    assert run_module(capsys, lock, _ansible_check_mode=True)[0] == 1


def test_a_run_that_takes_the_lock_first_wins_the_race(capsys, lock, monkeypatch):
    # The other run creates the file after this one found none.
    found_none = run_lock.read_holder
    calls = []

    def read_holder(path):
        calls.append(path)
        if len(calls) == 1:
            lock.parent.mkdir(exist_ok=True)
            lock.write_text(json.dumps(OTHER))
            return None
        return found_none(path)

    monkeypatch.setattr(run_lock, "read_holder", read_holder)
    code, result = run_module(capsys, lock)
    assert code == 1
    assert "run 20261203T100000-2" in result["msg"]


def test_a_run_without_id_is_refused(capsys, lock):
    code, result = run_module(capsys, lock, run={"controller": "deploy-1"})
    assert (code, result["msg"]) == (1, "run needs an id that tells this run from others; pass the run's id.")
