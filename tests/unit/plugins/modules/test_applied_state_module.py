# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""applied_state on a real record file: recorded root-only, matched, removed on a difference or a refusal, and only read
in check mode."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import applied_state

RUN = {"id": "20261203T101500Z-42", "started": "2026-12-03T10:15:00+00:00"}
INPUTS = {"plan": "p1", "variables": "v1", "serving": "s1", "collection": "c1"}


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A host of one managed unit file, its unit active and its container on one image."""
    (tmp_path / "vllm-tiny-0.service").write_text("[Service]\n")
    monkeypatch.setattr(applied_state, "MANAGED_FILES", (str(tmp_path / "vllm-*.service"), str(tmp_path / "*.json")))
    monkeypatch.setattr(applied_state, "active_units", lambda module: ["vllm-tiny-0.service"])
    monkeypatch.setattr(applied_state, "vllm_containers", lambda module: {"vllm-tiny-0": "sha256:i0"})
    return tmp_path


def run_module(capsys, host, **options):
    args = dict({"path": str(host / "applied-state.json"), "inputs": INPUTS, "run": RUN}, **options)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            applied_state.main()
    return json.loads(capsys.readouterr().out)


def test_a_recorded_host_is_unchanged_and_the_record_is_root_only(capsys, host):
    run_module(capsys, host, state="present")
    record = host / "applied-state.json"
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    assert json.loads(record.read_text())["files"] == {str(host / "vllm-tiny-0.service"): applied_state.sha256_of(
        str(host / "vllm-tiny-0.service"))}
    result = run_module(capsys, host)
    assert (result["changed"], result["unchanged"]) == (False, True)
    assert result["reason"] == "unchanged since run %s of %s: nothing to do" % (RUN["id"], RUN["started"])


def test_an_edited_unit_is_named_and_the_record_removed(capsys, host):
    run_module(capsys, host, state="present")
    (host / "vllm-tiny-0.service").write_text("[Service]\nEdited=1\n")
    result = run_module(capsys, host)
    assert result["unchanged"] is False
    assert result["reason"].startswith("%s changed since run %s" % (host / "vllm-tiny-0.service", RUN["id"]))
    assert not (host / "applied-state.json").exists()


def test_a_refusal_removes_the_record(capsys, host):
    run_module(capsys, host, state="present")
    result = run_module(capsys, host, refusal="gpufleet_full_run is set")
    assert (result["unchanged"], result["reason"]) == (False, "gpufleet_full_run is set: every stage runs")
    assert not (host / "applied-state.json").exists()


def test_check_mode_neither_records_nor_removes(capsys, host):
    result = run_module(capsys, host, state="present", _ansible_check_mode=True)
    assert not (host / "applied-state.json").exists()
    run_module(capsys, host, state="present")
    (host / "vllm-tiny-0.service").write_text("edited")
    result = run_module(capsys, host, _ansible_check_mode=True)
    assert result["unchanged"] is False
    assert (host / "applied-state.json").exists()
