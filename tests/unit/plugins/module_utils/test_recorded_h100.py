# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replay what a real H100 host showed each detection layer (tests/hardware/run-on-gpu-host.sh).

raw.json holds the sysfs files, the answers of the real NVML and the real nvidia-smi output;
modules.json what gpu_facts and vllm_plan returned there. The detection code must turn the
first into the second on any machine.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect, _vllm_plan

from conftest import plan_decisions, recorded_gpus, recorded_host, SysfsTree, fixture_path


def load(name):
    with open(fixture_path("h100", name)) as handle:
        return json.load(handle)


RAW = load("raw.json")
RECORDED = load("modules.json")


@pytest.fixture
def recorded_sysfs(tmp_path):
    tree = SysfsTree(tmp_path / "sys")
    for bus_id, files in RAW["pci_functions"].items():
        tree.add(bus_id, files["vendor"], files["device"], files["class"],
                 files["subsystem_vendor"], files["subsystem_device"], driver="nvidia")
    tree.load_module(RAW["module_version"])
    return tree.root


def without_detection(host):
    # Which pci.ids paths exist differs between machines; everything else must match.
    return {key: value for key, value in host.items() if key != "detection"}


@pytest.mark.parametrize("layers, nvml, smi", [
    ("all_layers", True, False),
    ("without_nvml", False, True),
    ("sysfs_only", False, False),
])
def test_replayed_layers_give_the_recorded_facts(recorded_sysfs, layers, nvml, smi):
    facts = _gpu_detect.build_facts(
        _gpu_detect.scan_sysfs(recorded_sysfs),
        nvml=RAW["nvml"] if nvml else None,
        smi_gpus=_gpu_detect.parse_nvidia_smi_csv(RAW["nvidia_smi_csv"]) if smi else None,
        module_version=_gpu_detect.read_module_version(recorded_sysfs),
        proc_version_text=RAW["proc_driver_version"],
    )
    expected = RECORDED[layers]
    assert facts["gpufleet_gpus"] == recorded_gpus(expected["gpufleet_gpus"])
    assert without_detection(facts["gpufleet_gpu_host"]) == without_detection(recorded_host(expected["gpufleet_gpu_host"]))


def test_recorded_h100_is_a_hopper_on_an_open_580_driver():
    gpu, = RECORDED["all_layers"]["gpufleet_gpus"]
    host = RECORDED["all_layers"]["gpufleet_gpu_host"]
    assert (gpu["architecture"], gpu["compute_capability"], gpu["memory_mib"], gpu["source"]) == ("hopper", "9.0", 81559, "nvml")
    assert (host["driver_version"], host["cuda_driver_version"], host["loaded_kernel_module_flavor"]) == ("580.159.04", "13.0", "open")


@pytest.mark.parametrize("index, model", [(0, "TinyLlama/TinyLlama-1.1B-Chat-v1.0"), (1, "meta-llama/Llama-3.1-8B-Instruct")])
def test_plans_on_the_recorded_facts_match_the_recorded_plans(index, model):
    facts = RECORDED["all_layers"]
    plan = _vllm_plan.plan_deployment(gpus=facts["gpufleet_gpus"], gpu_host=facts["gpufleet_gpu_host"], model=model)
    assert plan_decisions(plan) == plan_decisions(RECORDED["plans"][index])
    assert plan["image"] == "vllm/vllm-openai:v0.33.0"
