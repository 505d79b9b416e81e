# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The applied-state record: the match, each difference named in one line, refusals, and the record's round trip."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._applied_state import (
    first_difference, held_packages, new_record, observation, verdict)

RUN = {"id": "20261203T101500Z-42", "started": "2026-12-03T10:15:00+00:00", "user": "ops"}
SINCE = "run 20261203T101500Z-42 of 2026-12-03T10:15:00+00:00"
INPUTS = {"plan": "p1", "variables": "v1", "serving": "s1", "collection": "c1", "fleet": ""}
UNIT = "/etc/systemd/system/vllm-tiny-0.service"
OBSERVED = observation(
    files={UNIT: "a0", "/etc/gpufleet/plan.json": "b0"},
    units=["vllm-tiny-0.service", "vllm-tiny-router.service", "docker.service"],
    containers={"vllm-tiny-0": "sha256:i0"},
    held=["nvidia-driver"])


def recorded():
    """The record as a later run reads it back from the host."""
    return json.loads(json.dumps(new_record(RUN, INPUTS, OBSERVED)))


def changed(observed=None, **parts):
    return dict(observed or OBSERVED, **parts)


def test_the_record_round_trips_and_names_its_run_only():
    record = recorded()
    assert record["run"] == {"id": RUN["id"], "started": RUN["started"]}
    assert record["inputs"] == INPUTS
    assert first_difference(record, INPUTS, OBSERVED) is None


def test_an_unchanged_host_takes_the_fast_path():
    assert verdict(recorded(), INPUTS, OBSERVED) == (True, "unchanged since %s: nothing to do" % SINCE)


def test_a_host_without_record_takes_every_stage():
    assert verdict(None, INPUTS, OBSERVED) == (False, "no complete run is recorded on this host: every stage runs")


def test_a_record_of_another_format_is_not_trusted():
    record = dict(recorded(), format=0)
    assert first_difference(record, INPUTS, OBSERVED) == "the record of the last run is of another format"


@pytest.mark.parametrize("key, name", [
    ("plan", "the plan"),
    ("variables", "the collection's variables"),
    ("serving", "the model or the serving settings"),
    ("collection", "the collection's files"),
    ("fleet", "the fleet's hosts or their plans, which its scrape targets follow"),
])
def test_each_changed_input_is_named(key, name):
    inputs = dict(INPUTS, **{key: "other"})
    assert first_difference(recorded(), inputs, OBSERVED) == "%s changed since %s" % (name, SINCE)


def test_a_changed_file_is_named():
    observed = changed(files={UNIT: "edited", "/etc/gpufleet/plan.json": "b0"})
    assert first_difference(recorded(), INPUTS, observed) == "%s changed since %s" % (UNIT, SINCE)


def test_a_removed_file_is_named():
    observed = changed(files={"/etc/gpufleet/plan.json": "b0"})
    assert first_difference(recorded(), INPUTS, observed) == "%s is gone since %s" % (UNIT, SINCE)


def test_a_new_managed_file_is_named():
    observed = changed(files=dict(OBSERVED["files"], **{"/etc/systemd/system/vllm-tiny-2.service": "c0"}))
    assert first_difference(recorded(), INPUTS, observed) == (
        "/etc/systemd/system/vllm-tiny-2.service appeared since %s" % SINCE)


def test_a_unit_no_longer_active_is_named():
    observed = changed(units=["vllm-tiny-router.service", "docker.service"])
    assert first_difference(recorded(), INPUTS, observed) == "vllm-tiny-0.service is not active"


def test_a_stopped_container_is_named():
    observed = changed(containers={})
    assert first_difference(recorded(), INPUTS, observed) == "container vllm-tiny-0 is not running"


def test_a_container_on_another_image_is_named():
    observed = changed(containers={"vllm-tiny-0": "sha256:i1"})
    assert first_difference(recorded(), INPUTS, observed) == (
        "container vllm-tiny-0 runs image sha256:i1, not sha256:i0 as after %s" % SINCE)


def test_a_package_no_longer_held_is_named():
    observed = changed(held=[])
    assert first_difference(recorded(), INPUTS, observed) == "package nvidia-driver is no longer held"


def test_inputs_are_named_before_what_the_host_holds():
    observed = changed(units=[])
    inputs = dict(INPUTS, plan="other")
    assert first_difference(recorded(), inputs, observed) == "the plan changed since %s" % SINCE


def test_a_refusal_takes_every_stage_without_looking():
    assert verdict(recorded(), {}, None, "gpufleet_full_run is set") == (False, "gpufleet_full_run is set: every stage runs")


def test_held_packages_are_read_from_dpkg_status():
    status = ("Package: nvidia-driver\nStatus: hold ok installed\nVersion: 535\n\n"
              "Package: nvidia-kernel-dkms\nStatus: install ok installed\n\n"
              "Package: other\nStatus: hold ok installed\nDescription: x\n more: y\n")
    assert held_packages(status, {"nvidia-driver", "nvidia-kernel-dkms"}) == ["nvidia-driver"]
