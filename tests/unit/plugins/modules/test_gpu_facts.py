# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import gpu_facts


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path):
    """No real /proc, pci.ids, NVML or nvidia-smi: each test switches on what it needs."""
    monkeypatch.setattr(gpu_facts, "PROC_DRIVER_VERSION", str(tmp_path / "proc-driver-nvidia-version"))
    monkeypatch.setattr(gpu_facts, "PROC_DRIVER_GPUS", str(tmp_path / "proc-driver-nvidia-gpus"))
    monkeypatch.setattr(gpu_facts, "DEFAULT_PCI_IDS_PATHS", (str(tmp_path / "no-pci.ids"),))
    monkeypatch.setattr(gpu_facts, "DOCKER_DAEMON_JSON", str(tmp_path / "no-daemon.json"))
    monkeypatch.setattr(gpu_facts, "pynvml", None)
    monkeypatch.setattr(gpu_facts, "HAS_PYNVML", False)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, arg, required=False, opt_dirs=None: None)


class SmiRecorder:
    """Stands in for nvidia-smi: returns a recorded output and keeps the command lines it got."""

    def __init__(self, rc=0, stdout="", stderr=""):
        self.answer = (rc, stdout, stderr)
        self.commands = []

    def install(self, monkeypatch):
        recorder = self

        def run_command(module, args, **kwargs):
            recorder.commands.append(list(args))
            return recorder.answer

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda self, arg, required=False, opt_dirs=None: "/usr/bin/nvidia-smi" if arg == "nvidia-smi" else None)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        return self


def run_module(capsys, args):
    """Run gpu_facts.main() with args the way Ansible passes them; return the parsed result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            gpu_facts.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 0, result
    return result


def use_nvml(monkeypatch, nvml):
    monkeypatch.setattr(gpu_facts, "pynvml", nvml)
    monkeypatch.setattr(gpu_facts, "HAS_PYNVML", True)


def test_module_imports_without_pynvml():
    assert gpu_facts.main is not None
    assert isinstance(gpu_facts.HAS_PYNVML, bool)


def test_k80_sysfs_only_exact_facts(make_host, capsys):
    tree = make_host("k80x2")
    result = run_module(capsys, {"sysfs_root": tree.root})
    assert result["changed"] is False
    facts = result["ansible_facts"]
    assert facts["gpufleet_gpus"][0] == {
        "pci_bus_id": "0000:05:00.0", "pci_device_id": "0x102d", "name": "Tesla K80", "architecture": "kepler",
        "compute_capability": "3.7", "memory_mib": 11441, "uuid": None, "source": "sysfs", "chip": "GK210",
        "known_by": "catalog", "kernel_driver": None, "subsystem_vendor": "0x10de", "subsystem_device": "0x106c",
        "pci_bridges": ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"], "minor_number": None}
    assert [gpu["pci_bus_id"] for gpu in facts["gpufleet_gpus"]] == ["0000:05:00.0", "0000:06:00.0", "0000:85:00.0", "0000:86:00.0"]
    host = facts["gpufleet_gpu_host"]
    assert {key: host[key] for key in ("gpu_count", "driver_loaded", "driver_version", "cuda_driver_version",
                                       "kernel_module_flavor", "driver_branch_min", "driver_branch_max", "compatible",
                                       "problems", "nvswitch_count")} == {
        "gpu_count": 4, "driver_loaded": False, "driver_version": None, "cuda_driver_version": None,
        "kernel_module_flavor": "proprietary", "driver_branch_min": None, "driver_branch_max": "470",
        "compatible": True, "problems": [], "nvswitch_count": 0}
    assert host["detection"] == {
        "sysfs": {"root": tree.root, "answered": True, "gpu_count": 4},
        "pci_ids": {"path": None, "answered": False, "error": "no pci.ids file found in %s" % gpu_facts.DEFAULT_PCI_IDS_PATHS[0]},
        "nvml": {"asked": True, "answered": False,
                 "error": "the Python module pynvml (PyPI package nvidia-ml-py) is not installed"},
        "nvidia_smi": {"asked": True, "answered": False, "error": "nvidia-smi not found in PATH", "path": None},
    }


def test_no_gpu_host(make_host, capsys):
    result = run_module(capsys, {"sysfs_root": make_host("no_gpu").root})
    facts = result["ansible_facts"]
    assert facts["gpufleet_gpus"] == []
    host = facts["gpufleet_gpu_host"]
    assert (host["gpu_count"], host["compatible"], host["kernel_module_flavor"], host["problems"], host["default_driver_branch"]) == (
        0, True, None, [], None)


def test_missing_sysfs_does_not_fail(tmp_path, capsys):
    result = run_module(capsys, {"sysfs_root": str(tmp_path / "not-mounted"), "use_nvml": False, "use_nvidia_smi": False})
    host = result["ansible_facts"]["gpufleet_gpu_host"]
    assert (host["gpu_count"], host["detection"]["sysfs"]["answered"], host["detection"]["nvml"]) == (
        0, False, {"asked": False, "answered": False, "error": None})


def test_nvml_answers_and_nvidia_smi_is_not_run(make_host, fake_nvml, monkeypatch, capsys):
    tree = make_host("k80_a40", driver="470.256.02")
    use_nvml(monkeypatch, fake_nvml(devices=fake_nvml.K80 + [fake_nvml.A40], driver_version=b"470.256.02", cuda_version=11040))
    smi = SmiRecorder(stdout="should not be read").install(monkeypatch)
    facts = run_module(capsys, {"sysfs_root": tree.root})["ansible_facts"]
    assert smi.commands == []
    assert [(gpu["pci_bus_id"], gpu["name"], gpu["memory_mib"], gpu["source"], gpu["compute_capability"]) for gpu in facts["gpufleet_gpus"]] == [
        ("0000:05:00.0", "Tesla K80", 11441, "nvml", "3.7"),
        ("0000:06:00.0", "Tesla K80", 11441, "nvml", "3.7"),
        ("0000:17:00.0", "NVIDIA A40", 46068, "nvml", "8.6"),
    ]
    host = facts["gpufleet_gpu_host"]
    assert {key: host[key] for key in ("gpu_count", "driver_loaded", "driver_version", "cuda_driver_version",
                                       "kernel_module_flavor", "driver_branch_min", "driver_branch_max", "compatible",
                                       "problems", "driver_fits_gpus")} == {
        "gpu_count": 3, "driver_loaded": True, "driver_version": "470.256.02", "cuda_driver_version": "11.4",
        "kernel_module_flavor": "proprietary", "driver_branch_min": None, "driver_branch_max": "470",
        "compatible": True, "problems": [], "driver_fits_gpus": True}
    assert host["detection"]["nvml"] == {"asked": True, "answered": True, "error": None}
    assert host["detection"]["nvidia_smi"] == {"asked": False, "answered": False, "error": None, "path": None}


def test_nvml_driver_not_loaded_falls_back_to_nvidia_smi(make_host, fake_nvml, fixture_file, monkeypatch, capsys):
    tree = make_host("rtx5090_a40", driver="570.124.06")
    use_nvml(monkeypatch, fake_nvml(init_error=9))
    with open(fixture_file("nvidia-smi", "driver-570-rtx5090-a40.csv")) as handle:
        smi = SmiRecorder(stdout=handle.read()).install(monkeypatch)
    facts = run_module(capsys, {"sysfs_root": tree.root})["ansible_facts"]
    assert smi.commands == [["/usr/bin/nvidia-smi",
                             "--query-gpu=pci.bus_id,pci.device_id,name,memory.total,uuid,driver_version",
                             "--format=csv,noheader,nounits"]]
    assert [(gpu["pci_bus_id"], gpu["name"], gpu["architecture"], gpu["compute_capability"], gpu["memory_mib"], gpu["source"])
            for gpu in facts["gpufleet_gpus"]] == [
        ("0000:09:00.0", "NVIDIA GeForce RTX 5090", "blackwell", "12.0", 32607, "nvidia-smi"),
        ("0000:17:00.0", "NVIDIA A40", "ampere", "8.6", 46068, "nvidia-smi"),
    ]
    host = facts["gpufleet_gpu_host"]
    assert (host["driver_version"], host["cuda_driver_version"], host["kernel_module_flavor"], host["driver_branch_min"],
            host["driver_branch_max"], host["compatible"]) == ("570.124.06", "12.8", "open", "570", None, True)
    assert host["detection"]["nvml"] == {"asked": True, "answered": False, "error": "nvmlInit failed: Driver Not Loaded"}
    assert host["detection"]["nvidia_smi"] == {"asked": True, "answered": True, "error": None, "path": "/usr/bin/nvidia-smi"}


def test_nvidia_smi_failure_is_reported(make_host, monkeypatch, capsys):
    tree = make_host("a40")
    failure = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
               "Make sure that the latest NVIDIA driver is installed and running.\n")
    SmiRecorder(rc=9, stdout=failure).install(monkeypatch)
    facts = run_module(capsys, {"sysfs_root": tree.root})["ansible_facts"]
    assert facts["gpufleet_gpus"][0]["source"] == "sysfs"
    assert facts["gpufleet_gpu_host"]["detection"]["nvidia_smi"]["error"] == (
        "nvidia-smi exited with 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.")
    assert facts["gpufleet_gpu_host"]["driver_loaded"] is False


def test_use_nvml_and_nvidia_smi_off(make_host, fake_nvml, monkeypatch, capsys):
    nvml = fake_nvml(devices=[fake_nvml.H100])
    use_nvml(monkeypatch, nvml)
    smi = SmiRecorder(stdout="").install(monkeypatch)
    facts = run_module(capsys, {"sysfs_root": make_host("h100").root, "use_nvml": False, "use_nvidia_smi": False})["ansible_facts"]
    assert nvml.calls == []
    assert smi.commands == []
    assert facts["gpufleet_gpus"][0]["memory_mib"] == 81559
    assert facts["gpufleet_gpus"][0]["source"] == "sysfs"


def test_k80_with_rtx5090_reports_incompatibility(make_host, capsys):
    facts = run_module(capsys, {"sysfs_root": make_host("k80_rtx5090").root})["ansible_facts"]
    assert [gpu["pci_bus_id"] for gpu in facts["gpufleet_gpus"]] == ["0000:05:00.0", "0000:06:00.0", "0000:09:00.0"]
    host = facts["gpufleet_gpu_host"]
    assert (host["compatible"], host["kernel_module_flavor"], host["driver_branch_min"], host["driver_branch_max"]) == (
        False, None, "570", "470")
    assert host["problems"] == [
        "Tesla K80 (0000:05:00.0) needs proprietary kernel modules of branch <= 470 while GeForce RTX 5090 (0000:09:00.0) "
        "needs open kernel modules of branch >= 570: no single NVIDIA driver drives both, so this host cannot serve them "
        "together; move one of the cards to another host or exclude it."]


def test_pci_ids_option_resolves_unknown_id(make_host, fixture_file, capsys):
    facts = run_module(capsys, {"sysfs_root": make_host("pci_ids_only").root, "pci_ids_path": fixture_file("pci.ids")})["ansible_facts"]
    gpu = facts["gpufleet_gpus"][0]
    assert (gpu["name"], gpu["architecture"], gpu["compute_capability"], gpu["known_by"]) == ("RTX A6000", "ampere", "8.6", "pci.ids")
    host = facts["gpufleet_gpu_host"]
    assert (host["kernel_module_flavor"], host["problems"]) == ("any", [])
    assert host["detection"]["pci_ids"] == {"path": fixture_file("pci.ids"), "answered": True, "error": None}


def test_default_pci_ids_locations_are_searched(make_host, fixture_file, monkeypatch, capsys):
    monkeypatch.setattr(gpu_facts, "DEFAULT_PCI_IDS_PATHS", ("/nonexistent/pci.ids", fixture_file("pci.ids")))
    facts = run_module(capsys, {"sysfs_root": make_host("pci_ids_only").root})["ansible_facts"]
    assert facts["gpufleet_gpus"][0]["architecture"] == "ampere"


def test_id_found_nowhere(make_host, fixture_file, capsys):
    facts = run_module(capsys, {"sysfs_root": make_host("nowhere").root, "pci_ids_path": fixture_file("pci.ids")})["ansible_facts"]
    gpu = facts["gpufleet_gpus"][0]
    assert (gpu["pci_device_id"], gpu["architecture"], gpu["compute_capability"]) == ("0x3f00", "unknown", None)
    host = facts["gpufleet_gpu_host"]
    assert host["compatible"] is True
    assert host["kernel_module_flavor"] is None
    assert len(host["problems"]) == 1
    assert "10de:3f00 at 0000:42:00.0" in host["problems"][0]


def test_other_vendor_gpus_only(make_host, capsys):
    facts = run_module(capsys, {"sysfs_root": make_host("other_vendor_gpu").root})["ansible_facts"]
    assert facts["gpufleet_gpus"] == []
    assert facts["gpufleet_gpu_host"]["gpu_count"] == 0


def test_proc_version_gives_driver_and_flavor(make_host, monkeypatch, tmp_path, capsys):
    proc = tmp_path / "proc-version"
    proc.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \n")
    monkeypatch.setattr(gpu_facts, "PROC_DRIVER_VERSION", str(proc))
    host = run_module(capsys, {"sysfs_root": make_host("h100").root})["ansible_facts"]["gpufleet_gpu_host"]
    assert (host["driver_loaded"], host["driver_version"], host["cuda_driver_version"], host["loaded_kernel_module_flavor"]) == (
        True, "580.159.04", "13.0", "open")


def test_hgx_board_reports_its_nvswitches(make_host, capsys):
    host = run_module(capsys, {"sysfs_root": make_host("hgx_h100").root})["ansible_facts"]["gpufleet_gpu_host"]
    assert (host["gpu_count"], host["nvswitch_count"]) == (8, 4)


def test_procfs_gives_the_minor_numbers(make_host, monkeypatch, tmp_path, capsys):
    gpus_dir = tmp_path / "proc-gpus" / "0000:00:06.0"
    gpus_dir.mkdir(parents=True)
    (gpus_dir / "information").write_text("Bus Location: \t 0000:00:06.0\nDevice Minor: \t 0\n")
    monkeypatch.setattr(gpu_facts, "PROC_DRIVER_GPUS", str(tmp_path / "proc-gpus"))
    gpus = run_module(capsys, {"sysfs_root": make_host("h100").root})["ansible_facts"]["gpufleet_gpus"]
    assert [gpu["minor_number"] for gpu in gpus] == [0]


def test_check_mode_gives_the_same_facts(make_host, capsys):
    root = make_host("rtx5090").root
    normal = run_module(capsys, {"sysfs_root": root})
    checked = run_module(capsys, {"sysfs_root": root, "_ansible_check_mode": True})
    assert checked["ansible_facts"] == normal["ansible_facts"]
    assert checked["changed"] is False


def test_a_host_without_docker_has_no_engine_version(make_host, capsys):
    facts = run_module(capsys, {"sysfs_root": make_host("k80x2").root})["ansible_facts"]
    assert facts["gpufleet_container_engine"] == {"docker_version": None, "cdi_enabled": False}


def test_the_installed_engine_and_its_cdi_setting(make_host, monkeypatch, tmp_path, capsys):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"features": {"cdi": true}, "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}')
    monkeypatch.setattr(gpu_facts, "DOCKER_DAEMON_JSON", str(daemon_json))
    commands = []

    def run_command(module, args, **kwargs):
        commands.append(list(args))
        return 0, "Docker version 27.5.1, build 4c9b3b0\n", ""

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, arg, required=False, opt_dirs=None: "/usr/bin/dockerd" if arg == "dockerd" else None)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    facts = run_module(capsys, {"sysfs_root": make_host("h100").root, "use_nvidia_smi": False})["ansible_facts"]
    assert facts["gpufleet_container_engine"] == {"docker_version": "27.5.1", "cdi_enabled": True}
    assert commands == [["/usr/bin/dockerd", "--version"]]
