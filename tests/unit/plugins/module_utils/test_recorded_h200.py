# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replay what a real H200 host showed each detection layer (tests/hardware/run-on-gpu-host.sh).

raw.json holds the sysfs files and the real nvidia-smi output, nvml.json NVML's raw answers
through pynvml, modules.json what gpu_facts and vllm_plan returned there. The real query_nvml,
build_facts and gpu_facts module run against FakeNvmlReplay and must give what the host gave.
"""

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect, _vllm_plan
from ansible_collections.gpufleet.vllm.plugins.modules import gpu_facts

from conftest import plan_decisions, recorded_gpus, recorded_host, SysfsTree, fixture_path

MIB = 1024 * 1024


def load(name):
    with open(fixture_path("h200", name)) as handle:
        return json.load(handle)


RAW = load("raw.json")
NVML = load("nvml.json")
RECORDED = load("modules.json")
NVML_MEMORY = NVML["devices"][0]["nvmlDeviceGetMemoryInfo"]["returned"]["fields"]["total"]
NVML_UUID = NVML["devices"][0]["nvmlDeviceGetUUID"]["returned"]


@pytest.fixture
def recorded_sysfs(tmp_path):
    tree = SysfsTree(tmp_path / "sys")
    for bus_id, files in RAW["pci_functions"].items():
        tree.add(bus_id, files["vendor"], files["device"], files["class"],
                 files["subsystem_vendor"], files["subsystem_device"], driver="nvidia")
    tree.load_module(RAW["module_version"].strip())
    return tree.root


def without_detection(host):
    # Which pci.ids paths exist differs between machines; everything else must match.
    return {key: value for key, value in host.items() if key != "detection"}


def test_replayed_nvml_gives_what_the_live_nvml_gave(nvml_replay):
    double = nvml_replay("h200")
    assert _gpu_detect.query_nvml(double) == RAW["nvml"]
    # Every recorded answer is asked for, once, and nothing else: the recording and the code agree.
    assert double.calls == [
        "nvmlInit", "nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion", "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetPciInfo", "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlShutdown"]


@pytest.mark.parametrize("layers, nvml, smi", [
    ("all_layers", True, False),
    ("without_nvml", False, True),
    ("sysfs_only", False, False),
])
def test_replayed_layers_give_the_recorded_facts(recorded_sysfs, nvml_replay, layers, nvml, smi):
    facts = _gpu_detect.build_facts(
        _gpu_detect.scan_sysfs(recorded_sysfs),
        nvml=_gpu_detect.query_nvml(nvml_replay("h200")) if nvml else None,
        smi_gpus=_gpu_detect.parse_nvidia_smi_csv(RAW["nvidia_smi_csv"]) if smi else None,
        module_version=_gpu_detect.read_module_version(recorded_sysfs),
        proc_version_text=RAW["proc_driver_version"],
    )
    expected = RECORDED[layers]
    assert facts["gpufleet_gpus"] == recorded_gpus(expected["gpufleet_gpus"])
    assert without_detection(facts["gpufleet_gpu_host"]) == without_detection(recorded_host(expected["gpufleet_gpu_host"]))


@pytest.fixture
def replayed_module(monkeypatch, tmp_path, nvml_replay):
    """gpu_facts with the recorded /proc text, NVML and nvidia-smi of the H200 host."""
    proc = tmp_path / "proc-driver-nvidia-version"
    proc.write_text(RAW["proc_driver_version"])
    smi_path = RECORDED["without_nvml"]["gpufleet_gpu_host"]["detection"]["nvidia_smi"]["path"]
    monkeypatch.setattr(gpu_facts, "PROC_DRIVER_VERSION", str(proc))
    monkeypatch.setattr(gpu_facts, "DEFAULT_PCI_IDS_PATHS", (str(tmp_path / "no-pci.ids"),))
    monkeypatch.setattr(gpu_facts, "pynvml", nvml_replay("h200"))
    monkeypatch.setattr(gpu_facts, "HAS_PYNVML", True)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, arg, required=False, opt_dirs=None: smi_path if arg == "nvidia-smi" else None)
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, args, **kwargs: (0, RAW["nvidia_smi_csv"], ""))


@pytest.mark.parametrize("layers, args", [
    ("all_layers", {}),
    ("without_nvml", {"use_nvml": False}),
])
def test_the_module_on_the_replayed_host_returns_the_recorded_facts(replayed_module, recorded_sysfs, capsys, layers, args):
    with patch_module_args(dict(args, sysfs_root=recorded_sysfs)):
        with pytest.raises(SystemExit):
            gpu_facts.main()
    facts = json.loads(capsys.readouterr().out)["ansible_facts"]
    expected = RECORDED[layers]
    assert facts["gpufleet_gpus"] == recorded_gpus(expected["gpufleet_gpus"])
    assert without_detection(facts["gpufleet_gpu_host"]) == without_detection(recorded_host(expected["gpufleet_gpu_host"]))
    detection, recorded = facts["gpufleet_gpu_host"]["detection"], expected["gpufleet_gpu_host"]["detection"]
    assert (detection["nvml"], detection["nvidia_smi"]) == (recorded["nvml"], recorded["nvidia_smi"])


def test_recorded_h200_is_a_hopper_with_nvml_memory_on_an_open_580_driver(nvml_replay):
    nvml = _gpu_detect.query_nvml(nvml_replay("h200"))
    gpu, = _gpu_detect.build_facts([], nvml=nvml)["gpufleet_gpus"]
    host = RECORDED["all_layers"]["gpufleet_gpu_host"]
    assert gpu == dict(recorded_gpus(RECORDED["all_layers"]["gpufleet_gpus"])[0], kernel_driver=None, subsystem_vendor=None,
                       subsystem_device=None)
    assert (gpu["name"], gpu["pci_device_id"], gpu["architecture"], gpu["compute_capability"], gpu["source"]) == (
        "NVIDIA H200", "0x2335", "hopper", "9.0", "nvml")
    assert gpu["memory_mib"] == NVML_MEMORY // MIB == 143771
    assert gpu["uuid"] == NVML_UUID and gpu["uuid"].startswith("GPU-")
    assert (nvml["driver_version"], nvml["cuda_driver_version"]) == ("580.159.04", "13.0")
    assert (host["driver_branch"], host["cuda_driver_version"], host["loaded_kernel_module_flavor"],
            host["driver_fits_gpus"]) == ("580", "13.0", "open", True)


@pytest.mark.parametrize("index, model", [(0, "TinyLlama/TinyLlama-1.1B-Chat-v1.0"), (1, "meta-llama/Llama-3.1-8B-Instruct")])
def test_plans_on_the_replayed_facts_match_the_recorded_plans(recorded_sysfs, nvml_replay, index, model):
    facts = _gpu_detect.build_facts(
        _gpu_detect.scan_sysfs(recorded_sysfs),
        nvml=_gpu_detect.query_nvml(nvml_replay("h200")),
        module_version=_gpu_detect.read_module_version(recorded_sysfs),
        proc_version_text=RAW["proc_driver_version"],
    )
    plan = _vllm_plan.plan_deployment(gpus=facts["gpufleet_gpus"], gpu_host=facts["gpufleet_gpu_host"], model=model)
    assert plan_decisions(plan) == plan_decisions(RECORDED["plans"][index])
    assert plan["memory"]["memory_mib_per_gpu"] == 143771
