# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib.util
import os

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "failure_summary.py")
SPEC = importlib.util.spec_from_file_location("failure_summary", SCRIPT)
failure_summary = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(failure_summary)

# A Molecule log as it frames Ansible's output: a coloured bar, long lines wrapped.
MOLECULE_LOG = """\
  \x1b[2m\u2502\x1b[0m PLAY [Kill the server, restart Docker, reboot the host] ******
  \x1b[2m\u2502\x1b[0m TASK [Read the optional file]
  \x1b[2m\u2502\x1b[0m fatal: [host-1]: FAILED! =>
  \x1b[2m\u2502\x1b[0m     msg: not there
  \x1b[2m\u2502\x1b[0m ...ignoring
  \x1b[2m\u2502\x1b[0m
  \x1b[2m\u2502\x1b[0m TASK [gpufleet.vllm.vllm_service : Start the unit, restarting it when its
  \x1b[2m\u2502\x1b[0m   configuration changed] ***
  \x1b[2m\u2502\x1b[0m \x1b[0;31mfatal: [host-1]: FAILED! =>\x1b[0m
  \x1b[2m\u2502\x1b[0m     changed: false
  \x1b[2m\u2502\x1b[0m     msg: Unable to start service vllm-tiny
  \x1b[2m\u2502\x1b[0m
  \x1b[2m\u2502\x1b[0m PLAY RECAP *****
"""


def test_failures_names_play_task_and_result_and_leaves_out_ignored_ones():
    found = list(failure_summary.failures(MOLECULE_LOG.splitlines(True)))
    assert found == [(
        "Kill the server, restart Docker, reboot the host",
        "gpufleet.vllm.vllm_service : Start the unit, restarting it when its",
        ["fatal: [host-1]: FAILED! =>", "changed: false", "msg: Unable to start service vllm-tiny"],
    )]


def test_main_says_so_when_the_log_has_no_failed_task(tmp_path, capsys):
    log = tmp_path / "molecule-default.log"
    log.write_text("PLAY RECAP *****\nhost-1 : ok=3 changed=0 failed=0\n", encoding="utf-8")
    failure_summary.main(str(log))
    assert capsys.readouterr().out == "No failed task in %s: see the end of that log.\n" % log


def test_failures_reads_a_log_whose_lines_start_with_the_minutes_since_the_scenario_started():
    timed = "".join("[%6.2f] %s" % (minute / 10, line) for minute, line in enumerate(MOLECULE_LOG.splitlines(True)))
    assert list(failure_summary.failures(timed.splitlines(True))) == list(failure_summary.failures(MOLECULE_LOG.splitlines(True)))
