# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.filter.service_limits import FilterModule

FILTERS = FilterModule().filters()


def test_start_limit_of_the_sandbox_unit():
    # TimeoutStartSec 660, TimeoutStopSec 45, RestartSec 10: three starts of 760 s at most, and a minute.
    assert FILTERS["start_limit"](660, 45, 10) == {"interval_sec": 3 * 760 + 60, "burst": 3}


def test_failure_cause_leads_with_the_rejected_argument():
    journal = ["INFO starting", "api_server.py: error: unrecognized arguments: --no-such-argument"]
    assert FILTERS["failure_cause"](journal).startswith("vLLM does not know the arguments --no-such-argument;")


def test_failure_cause_is_none_when_the_journal_tells_nothing():
    assert FILTERS["failure_cause"](["INFO starting", "INFO loading"]) is None


def test_failure_headline_leads_with_the_start_limit_systemd_gave_the_unit_up_at():
    journal = ["vllm-tiny-0.service: Start request repeated too quickly.", "vllm-tiny-0.service: Failed with result 'exit-code'."]
    status = {"StartLimitBurst": "3", "StartLimitIntervalUSec": "10min"}
    assert FILTERS["failure_headline"]("vllm-tiny-0", journal, status).startswith(
        "vLLM unit vllm-tiny-0 gave up after 3 starts in 600 s (its start limit)")
