# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A replica's start limit, held against systemd's own rate limit: a model that cannot load is started `burst` times
and then refused, whether each start fails at once or only after the whole start timeout."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._start_limit import (
    DEFAULT_ATTEMPTS,
    refusal_sentence,
    span_seconds,
    start_limit,
    worst_start_cycle,
)

# The replica unit with the role's defaults: TimeoutStartSec = start timeout 900 + 60, TimeoutStopSec = stop timeout
# 30 + 15, RestartSec 10.
UNIT = (960, 45, 10)


def systemd_allows(start_times, interval, burst):
    """Which starts systemd lets through: its ratelimit_below(), a window opened by the first start and reopened by the
    first start after it ends, at most `burst` starts per window."""
    allowed, begin, count = [], None, 0
    for now in start_times:
        if begin is None or now - begin > interval:
            begin, count = now, 0
        count += 1
        allowed.append(count <= burst)
    return allowed


def failing_starts(cycle, count):
    """The start times of a unit whose every start fails after `cycle` seconds."""
    return [index * cycle for index in range(count)]


def test_role_defaults_give_three_starts_within_54_minutes():
    assert worst_start_cycle(*UNIT) == 960 + 2 * 45 + 10
    assert start_limit(*UNIT) == {"interval_sec": 3 * 1060 + 60, "burst": 3}


def test_default_attempts_are_three():
    assert DEFAULT_ATTEMPTS == 3


@pytest.mark.parametrize("cycle", [1060, 400, 12])
def test_fourth_start_is_refused_however_long_each_attempt_takes(cycle):
    # 1060 s: every start times out; 12 s: vLLM rejects an argument at once and only RestartSec passes. Once refused,
    # the unit is failed and Restart= starts it no more.
    limit = start_limit(*UNIT)
    assert systemd_allows(failing_starts(cycle, 4), limit["interval_sec"], limit["burst"]) == [True, True, True, False]


def test_systemd_default_interval_never_trips_on_starts_that_time_out():
    # What the unit did before: StartLimitIntervalSec=10s, StartLimitBurst=5 and a start that times out after minutes.
    assert all(systemd_allows(failing_starts(1060, 20), 10, 5))


@pytest.mark.parametrize("unit, attempts", [((960, 45, 10), 3), ((120, 20, 0), 1), ((3600, 120, 30), 5), (("960", "45", "10"), "3")])
def test_interval_exceeds_burst_times_the_worst_cycle(unit, attempts):
    limit = start_limit(*unit, attempts=attempts)
    assert limit["burst"] == int(attempts)
    assert limit["interval_sec"] > limit["burst"] * worst_start_cycle(*unit)


def test_starts_after_the_window_ends_are_counted_afresh():
    limit = start_limit(*UNIT)
    later = limit["interval_sec"] + 1
    starts = failing_starts(1060, 3) + [later + index * 1060 for index in range(3)]
    assert systemd_allows(starts, limit["interval_sec"], limit["burst"]) == [True] * 6


@pytest.mark.parametrize("unit, attempts, message", [
    (("infinity", 45, 10), 3, "TimeoutStartSec must be a whole number of seconds of at least 1, not 'infinity'; set it to one."),
    ((960, 0, 10), 3, "TimeoutStopSec must be a whole number of seconds of at least 1, not 0; set it to one."),
    ((960, 45, -1), 3, "RestartSec must be a whole number of seconds of at least 0, not -1; set it to one."),
    ((960, 45, 1.5), 3, "RestartSec must be a whole number of seconds of at least 0, not 1.5; set it to one."),
    ((960, 45, 10), 0, "attempts must be a whole number of starts of at least 1, not 0; set it to one."),
    ((960, 45, 10), True, "attempts must be a whole number of starts of at least 1, not True; set it to one."),
])
def test_values_that_are_no_seconds_are_refused(unit, attempts, message):
    with pytest.raises(ValueError) as caught:
        start_limit(*unit, attempts=attempts)
    assert str(caught.value) == message


@pytest.mark.parametrize("text, seconds", [
    ("10s", 10), ("17min", 1020), ("16min 40s", 1000), ("1h 2min 3s", 3723), ("1min 500ms", 60), ("2d", 172800),
])
def test_span_reads_as_systemctl_show_writes_it(text, seconds):
    assert span_seconds(text) == seconds


@pytest.mark.parametrize("text", [None, "", "infinity", "10 parsecs", "1min soon"])
def test_span_it_cannot_read_is_none(text):
    assert span_seconds(text) is None


# The end of a replica's journal (journalctl --output cat) when systemd refused its restart after the last start.
REFUSED = [
    "vllm-tiny-0.service: Scheduled restart job, restart counter is at 3.",
    "vllm-tiny-0.service: Start request repeated too quickly.",
    "vllm-tiny-0.service: Failed with result 'exit-code'.",
    "Failed to start vllm-tiny-0.service - vLLM OpenAI-compatible server tiny, replica 0 (cpu).",
]
LIMIT = {"StartLimitBurst": "3", "StartLimitIntervalUSec": "17min", "Result": "exit-code"}


def test_a_refused_start_names_the_limit_in_starts_and_seconds():
    assert refusal_sentence("vllm-tiny-0", REFUSED, LIMIT) == (
        "vLLM unit vllm-tiny-0 gave up after 3 starts in 1020 s (its start limit), so systemd starts it no more.")


def test_the_interval_is_held_against_the_unit_file_value():
    limit = start_limit(960, 45, 10)
    status = {"StartLimitBurst": str(limit["burst"]), "StartLimitIntervalUSec": "%dmin %ds" % divmod(limit["interval_sec"], 60)}
    assert "in %d s " % limit["interval_sec"] in refusal_sentence("vllm-tiny-0", REFUSED, status)


def test_without_the_unit_properties_the_refusal_is_still_said():
    assert refusal_sentence("vllm-tiny-0", REFUSED, {}) == (
        "vLLM unit vllm-tiny-0 gave up (its start limit), so systemd starts it no more.")


def test_a_failed_start_without_a_refusal_says_nothing():
    assert refusal_sentence("vllm-tiny-0", [line for line in REFUSED if "repeated" not in line], LIMIT) is None
