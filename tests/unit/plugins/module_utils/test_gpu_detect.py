# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import os

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect as detect


def read_fixture(fixture_file, *parts):
    with open(fixture_file(*parts)) as handle:
        return handle.read()


# --- sysfs ---------------------------------------------------------------------------------------

def test_scan_sysfs_two_k80_boards_gives_four_gpus(make_host):
    tree = make_host("k80x2")
    gpus = detect.scan_sysfs(tree.root)
    assert [(gpu["pci_bus_id"], gpu["pci_device_id"], gpu["pci_class"]) for gpu in gpus] == [
        ("0000:05:00.0", "0x102d", "0x030200"),
        ("0000:06:00.0", "0x102d", "0x030200"),
        ("0000:85:00.0", "0x102d", "0x030200"),
        ("0000:86:00.0", "0x102d", "0x030200"),
    ]
    assert gpus[0]["subsystem_vendor"] == "0x10de"
    assert gpus[0]["subsystem_device"] == "0x106c"
    assert gpus[0]["kernel_driver"] is None


def test_scan_sysfs_gives_the_bridges_between_root_complex_and_die(make_host):
    gpus = detect.scan_sysfs(make_host("k80x2").root)
    assert [(gpu["pci_bus_id"], gpu["pci_bridges"]) for gpu in gpus] == [
        ("0000:05:00.0", ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]),
        ("0000:06:00.0", ["0000:00:03.0", "0000:03:00.0", "0000:04:10.0"]),
        ("0000:85:00.0", ["0000:00:03.2", "0000:83:00.0", "0000:84:08.0"]),
        ("0000:86:00.0", ["0000:00:03.2", "0000:83:00.0", "0000:84:10.0"]),
    ]


def test_scan_sysfs_of_a_flat_tree_knows_no_topology(make_host):
    assert [gpu["pci_bridges"] for gpu in detect.scan_sysfs(make_host("k80x2", flat=True).root)] == [None] * 4


def test_scan_sysfs_of_a_gpu_on_the_root_bus_has_no_bridges(sysfs_tree):
    sysfs_tree.add("0000:00:06.0", "0x10de", "0x2330", "0x030200", parent="pci0000:00")
    assert [gpu["pci_bridges"] for gpu in detect.scan_sysfs(sysfs_tree.root)] == [[]]


@pytest.mark.parametrize("link, bridges", [
    ("../../../devices/pci0000:00/0000:00:03.0/0000:03:00.0/0000:04:08.0/0000:05:00.0",
     ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]),
    # A VMD domain (five hex digits) behind its own endpoint.
    ("../../../devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:1d.0/10000:e1:00.0", ["10000:e0:1d.0"]),
    ("../../../devices/platform/soc/0000:05:00.0", None),
])
def test_pci_bridges_read_from_the_link(tmp_path, link, bridges):
    os.symlink(link, str(tmp_path / "0000:05:00.0"))
    assert detect._pci_bridges(str(tmp_path), "0000:05:00.0") == bridges


def test_scan_sysfs_drops_audio_and_usb_functions_of_rtx5090(make_host):
    gpus = detect.scan_sysfs(make_host("rtx5090").root)
    assert [(gpu["pci_bus_id"], gpu["pci_device_id"], gpu["pci_class"]) for gpu in gpus] == [
        ("0000:09:00.0", "0x2b85", "0x030000"),
    ]


def test_scan_sysfs_reports_bound_kernel_driver(make_host):
    gpus = detect.scan_sysfs(make_host("a40", driver="570.124.06").root)
    assert [(gpu["pci_bus_id"], gpu["kernel_driver"]) for gpu in gpus] == [("0000:17:00.0", "nvidia")]


@pytest.mark.parametrize("host", ["no_gpu", "other_vendor_gpu"])
def test_scan_sysfs_without_nvidia_gpu_is_empty(make_host, host):
    assert detect.scan_sysfs(make_host(host).root) == []


def test_scan_sysfs_missing_tree_is_empty(tmp_path):
    assert detect.scan_sysfs(str(tmp_path / "absent")) == []
    assert detect.sysfs_has_pci(str(tmp_path / "absent")) is False


def test_scan_sysfs_skips_unreadable_function(sysfs_tree):
    sysfs_tree.add("0000:05:00.0", "0x10de", "0x102d", "0x030200")
    os.makedirs(os.path.join(sysfs_tree.root, "bus", "pci", "devices", "0000:07:00.0"))
    assert [gpu["pci_bus_id"] for gpu in detect.scan_sysfs(sysfs_tree.root)] == ["0000:05:00.0"]


def test_scan_nvswitches_finds_the_bridges_of_an_hgx_board_and_scan_sysfs_leaves_them_out(make_host):
    tree = make_host("hgx_h100")
    assert detect.scan_nvswitches(tree.root) == ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0"]
    assert [gpu["pci_device_id"] for gpu in detect.scan_sysfs(tree.root)] == ["0x2330"] * 8


@pytest.mark.parametrize("host", ["h100", "k80x2", "no_gpu"])
def test_scan_nvswitches_of_hosts_without_nvswitch_is_empty(make_host, host):
    # The K80 boards' PCIe switches are bridges too, but PLX's (vendor 0x10b5), not NVIDIA's.
    assert detect.scan_nvswitches(make_host(host).root) == []


def test_scan_nvswitches_of_a_missing_tree_is_empty(tmp_path):
    assert detect.scan_nvswitches(str(tmp_path / "absent")) == []


def test_host_counts_its_nvswitches(make_host):
    tree = make_host("hgx_h100")
    facts = detect.build_facts(detect.scan_sysfs(tree.root), nvswitches=detect.scan_nvswitches(tree.root))
    assert (facts["gpufleet_gpu_host"]["gpu_count"], facts["gpufleet_gpu_host"]["nvswitch_count"]) == (8, 4)
    assert detect.build_facts([])["gpufleet_gpu_host"]["nvswitch_count"] == 0


# As the H200 machine's driver 580.159.04 wrote it, tabs included.
H200_PROC_INFORMATION = (
    "Model: \t\t NVIDIA H200\nIRQ:   \t\t 41\nGPU UUID: \t GPU-5929a086-06ca-3a6b-952e-4f94ffe6f9e3\n"
    "Video BIOS: \t 96.00.a5.00.1a\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n"
    "Bus Location: \t 0000:00:06.0\nDevice Minor: \t 0\nGPU Firmware: \t 580.159.04\nGPU Excluded:\t No\n")


def write_proc_gpus(root, texts):
    for address, text in texts.items():
        os.makedirs(os.path.join(str(root), address))
        with open(os.path.join(str(root), address, "information"), "w") as handle:
            handle.write(text)
    return str(root)


def test_minor_numbers_from_procfs(tmp_path):
    gpus_dir = write_proc_gpus(tmp_path / "gpus", {
        "0000:00:06.0": H200_PROC_INFORMATION,
        "0000:17:00.0": H200_PROC_INFORMATION.replace("Device Minor: \t 0", "Device Minor: \t 3"),
        "0000:18:00.0": "Model: \t\t half written\n",
    })
    assert detect.read_minor_numbers(gpus_dir) == {"0000:00:06.0": 0, "0000:17:00.0": 3}


def test_minor_numbers_without_driver_are_empty(tmp_path):
    assert detect.read_minor_numbers(str(tmp_path / "absent")) == {}


def test_merged_gpus_carry_their_minor_number(make_host):
    gpus = detect.merge_gpus(detect.scan_sysfs(make_host("rtx5090_a40").root), minor_numbers={"0000:17:00.0": 1})
    assert [(gpu["pci_bus_id"], gpu["minor_number"]) for gpu in gpus] == [("0000:09:00.0", None), ("0000:17:00.0", 1)]


def test_module_version_from_sysfs(make_host):
    loaded = make_host("a40", driver="570.124.06")
    assert detect.read_module_version(loaded.root) == "570.124.06"
    assert detect.module_loaded(loaded.root) is True


def test_module_version_absent_without_driver(make_host):
    tree = make_host("a40")
    assert detect.read_module_version(tree.root) is None
    assert detect.module_loaded(tree.root) is False


@pytest.mark.parametrize("text, expected", [
    # Recorded on the project's H100 build machine.
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \n"
     "GCC version:  gcc version 15.3.0 (GCC) \n",
     {"version": "580.159.04", "kernel_module_flavor": "open"}),
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024\n"
     "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14) \n",
     {"version": "470.256.02", "kernel_module_flavor": "proprietary"}),
    ("", None),
    (None, None),
    ("GCC version:  gcc version 12.2.0\n", None),
])
def test_parse_proc_driver_version(text, expected):
    assert detect.parse_proc_driver_version(text) == expected


@pytest.mark.parametrize("value, expected", [
    ("00000000:05:00.0", "0000:05:00.0"),
    ("00000000:0A:00.0", "0000:0a:00.0"),
    (b"00000001:C1:00.0", "0001:c1:00.0"),
    ("0000:09:00.0", "0000:09:00.0"),
    ("05:00.0", "0000:05:00.0"),
    (None, None),
])
def test_normalize_bus_id(value, expected):
    assert detect.normalize_bus_id(value) == expected


# --- pci.ids -------------------------------------------------------------------------------------

def test_read_pci_ids_keeps_only_nvidia_block(fixture_file):
    entries = detect.read_pci_ids(fixture_file("pci.ids"))
    assert entries == {
        "0x102d": "GK210GL [Tesla K80]",
        "0x11c7": "GK106 [GeForce GTX 750 Ti]",
        "0x1380": "GM107 [GeForce GTX 750 Ti]",
        "0x223f": "GA102GL",
        "0x2230": "GA102GL [RTX A6000]",
        "0x2717": "AD103M / GN21-X11 [GeForce RTX 4090 Laptop GPU]",
        "0x2c02": "GB203 [GeForce RTX 5080]",
        "0x2e12": "GB20B [GB10]",
        "0x2f04": "GB205 [GeForce RTX 5070]",
    }


def test_read_pci_ids_gz(fixture_file, tmp_path):
    target = tmp_path / "pci.ids.gz"
    with gzip.open(str(target), "wt") as handle:
        handle.write(read_fixture(fixture_file, "pci.ids"))
    assert detect.read_pci_ids(str(target))["0x2230"] == "GA102GL [RTX A6000]"


def test_read_pci_ids_missing_file(tmp_path):
    assert detect.read_pci_ids(str(tmp_path / "nope")) == {}


def test_find_pci_ids_takes_first_existing(tmp_path, fixture_file):
    assert detect.find_pci_ids([str(tmp_path / "a"), fixture_file("pci.ids")]) == fixture_file("pci.ids")
    assert detect.find_pci_ids([str(tmp_path / "a")]) is None


# --- nvidia-smi ----------------------------------------------------------------------------------

def test_parse_nvidia_smi_470_k80(fixture_file):
    gpus = detect.parse_nvidia_smi_csv(read_fixture(fixture_file, "nvidia-smi", "driver-470-k80x4.csv"))
    assert [gpu["pci_bus_id"] for gpu in gpus] == ["0000:05:00.0", "0000:06:00.0", "0000:85:00.0", "0000:86:00.0"]
    assert gpus[0] == {
        "pci_bus_id": "0000:05:00.0",
        "pci_device_id": "0x102d",
        "name": "Tesla K80",
        "memory_mib": 11441,
        "uuid": "GPU-3f1e2b7a-0c52-9d41-6a8e-5b0d7c2e9f11",
        "driver_version": "470.256.02",
    }


def test_parse_nvidia_smi_570_rtx5090_a40(fixture_file):
    gpus = detect.parse_nvidia_smi_csv(read_fixture(fixture_file, "nvidia-smi", "driver-570-rtx5090-a40.csv"))
    assert [(gpu["pci_device_id"], gpu["name"], gpu["memory_mib"], gpu["driver_version"]) for gpu in gpus] == [
        ("0x2b85", "NVIDIA GeForce RTX 5090", 32607, "570.124.06"),
        ("0x2235", "NVIDIA A40", 46068, "570.124.06"),
    ]


def test_parse_nvidia_smi_580_h100(fixture_file):
    gpus = detect.parse_nvidia_smi_csv(read_fixture(fixture_file, "nvidia-smi", "driver-580-h100.csv"))
    assert gpus == [{
        "pci_bus_id": "0000:00:06.0",
        "pci_device_id": "0x2330",
        "name": "NVIDIA H100 80GB HBM3",
        "memory_mib": 81559,
        "uuid": "GPU-762a9681-d3f1-c1bb-7c4e-fff1ca98b624",
        "driver_version": "580.159.04",
    }]


def test_parse_nvidia_smi_not_available_fields_and_junk():
    text = ("No devices were found\n"
            "00000000:05:00.0, 0x102D10DE, Tesla K80, [N/A], [N/A], 470.256.02\n"
            "\n")
    assert detect.parse_nvidia_smi_csv(text) == [{
        "pci_bus_id": "0000:05:00.0", "pci_device_id": "0x102d", "name": "Tesla K80",
        "memory_mib": None, "uuid": None, "driver_version": "470.256.02"}]
    assert detect.parse_nvidia_smi_csv("") == []


def test_nvidia_smi_query_leaves_compute_cap_out():
    assert "compute_cap" not in " ".join(detect.NVIDIA_SMI_ARGS)
    assert detect.NVIDIA_SMI_ARGS == (
        "--query-gpu=pci.bus_id,pci.device_id,name,memory.total,uuid,driver_version",
        "--format=csv,noheader,nounits",
    )


# --- NVML ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [(12080, "12.8"), (11040, "11.4"), (13000, "13.0"), (12090, "12.9"), (0, None), (None, None)])
def test_cuda_version_from_int(value, text):
    assert detect.cuda_version_from_int(value) == text


@pytest.mark.parametrize("bytes_strings", [True, False])
def test_query_nvml_per_device_answers(fake_nvml, bytes_strings):
    nvml = fake_nvml(devices=[fake_nvml.RTX5090, fake_nvml.A40], driver_version=b"570.124.06" if bytes_strings else "570.124.06",
                     cuda_version=12080, bytes_strings=bytes_strings)
    result = detect.query_nvml(nvml)
    assert result == {
        "available": True,
        "error": None,
        "driver_version": "570.124.06",
        "cuda_driver_version": "12.8",
        "gpus": [
            {"pci_bus_id": "0000:09:00.0", "pci_device_id": "0x2b85", "name": "NVIDIA GeForce RTX 5090", "memory_mib": 32607,
             "uuid": "GPU-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f955", "compute_capability": "12.0"},
            {"pci_bus_id": "0000:17:00.0", "pci_device_id": "0x2235", "name": "NVIDIA A40", "memory_mib": 46068,
             "uuid": "GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b166", "compute_capability": "8.6"},
        ],
        "device_errors": [],
    }
    assert nvml.calls == ["nvmlInit", "nvmlShutdown"]


def test_query_nvml_h100_values_as_recorded(fake_nvml):
    result = detect.query_nvml(fake_nvml(devices=[fake_nvml.H100], driver_version="580.159.04", cuda_version=13000, bytes_strings=False))
    assert result["gpus"][0]["memory_mib"] == 81559
    assert result["cuda_driver_version"] == "13.0"


@pytest.mark.parametrize("code, text", [
    (9, "nvmlInit failed: Driver Not Loaded"),
    (12, "nvmlInit failed: NVML Shared Library Not Found"),
])
def test_query_nvml_init_error_is_reported_not_raised(fake_nvml, code, text):
    nvml = fake_nvml(devices=[fake_nvml.A40], init_error=code)
    result = detect.query_nvml(nvml)
    assert result == {"available": False, "error": text, "driver_version": None, "cuda_driver_version": None,
                      "gpus": [], "device_errors": []}
    assert nvml.calls == ["nvmlInit"]


def test_query_nvml_without_library():
    result = detect.query_nvml(None)
    assert result["available"] is False
    assert result["error"] == "the Python module pynvml (PyPI package nvidia-ml-py) is not installed"


def test_query_nvml_device_errors_do_not_stop_the_others(fake_nvml):
    broken = dict(fake_nvml.K80[0], handle_error=15)
    no_cc = dict(fake_nvml.K80[1], cc=3)
    nvml = fake_nvml(devices=[broken, no_cc])
    result = detect.query_nvml(nvml)
    assert result["available"] is True
    assert [(gpu["pci_bus_id"], gpu["compute_capability"]) for gpu in result["gpus"]] == [("0000:06:00.0", None)]
    assert result["device_errors"] == ["GPU 0 handle: NVML Error with code 15", "GPU 1 compute capability: Not Supported"]
    assert nvml.calls[-1] == "nvmlShutdown"


def older_binding(fake_nvml, lacking, **answers):
    """A FakeNvml as a pynvml release that predates the function named lacking would answer."""

    class OlderBinding(fake_nvml):
        def __getattribute__(self, name):
            if name == lacking:
                raise AttributeError("module 'pynvml' has no attribute %r" % name)
            return super().__getattribute__(name)

    return OlderBinding(**answers)


def test_query_nvml_missing_system_function_costs_only_its_field(fake_nvml):
    nvml = older_binding(fake_nvml, "nvmlSystemGetCudaDriverVersion", devices=[fake_nvml.A40], driver_version="570.124.06")
    result = detect.query_nvml(nvml)
    assert (result["available"], result["driver_version"], result["cuda_driver_version"]) == (True, "570.124.06", None)
    assert [gpu["name"] for gpu in result["gpus"]] == ["NVIDIA A40"]
    assert result["device_errors"] == ["CUDA driver version: module 'pynvml' has no attribute 'nvmlSystemGetCudaDriverVersion'"]
    assert nvml.calls == ["nvmlInit", "nvmlShutdown"]


def test_query_nvml_missing_device_function_costs_only_its_field(fake_nvml):
    result = detect.query_nvml(older_binding(fake_nvml, "nvmlDeviceGetCudaComputeCapability", devices=fake_nvml.K80))
    assert [(gpu["pci_bus_id"], gpu["memory_mib"], gpu["compute_capability"]) for gpu in result["gpus"]] == [
        ("0000:05:00.0", 11441, None), ("0000:06:00.0", 11441, None)]
    assert result["device_errors"] == [
        "GPU %d compute capability: module 'pynvml' has no attribute 'nvmlDeviceGetCudaComputeCapability'" % index for index in (0, 1)]


def test_query_nvml_missing_handle_function_leaves_the_gpus_to_the_other_layers(fake_nvml):
    nvml = older_binding(fake_nvml, "nvmlDeviceGetHandleByIndex", devices=fake_nvml.K80)
    result = detect.query_nvml(nvml)
    assert (result["available"], result["gpus"]) == (True, [])
    assert result["device_errors"] == [
        "GPU %d handle: module 'pynvml' has no attribute 'nvmlDeviceGetHandleByIndex'" % index for index in (0, 1)]
    assert nvml.calls == ["nvmlInit", "nvmlShutdown"]


# --- merge ---------------------------------------------------------------------------------------

def test_merge_sysfs_only_k80(make_host):
    gpus = detect.merge_gpus(detect.scan_sysfs(make_host("k80x2").root))
    assert len(gpus) == 4
    assert gpus[0] == {
        "pci_bus_id": "0000:05:00.0", "pci_device_id": "0x102d", "name": "Tesla K80", "architecture": "kepler",
        "compute_capability": "3.7", "memory_mib": 11441, "uuid": None, "source": "sysfs", "chip": "GK210",
        "known_by": "catalog", "kernel_driver": None, "subsystem_vendor": "0x10de", "subsystem_device": "0x106c",
        "pci_bridges": ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"], "minor_number": None,
    }


def test_merge_nvml_wins_and_keeps_sysfs_details(make_host, fake_nvml):
    sysfs = detect.scan_sysfs(make_host("rtx5090_a40", driver="570.124.06").root)
    nvml = detect.query_nvml(fake_nvml(devices=[fake_nvml.A40], driver_version="570.124.06", cuda_version=12080))
    gpus = detect.merge_gpus(sysfs, nvml_gpus=nvml["gpus"])
    assert [(gpu["pci_bus_id"], gpu["name"], gpu["source"], gpu["uuid"], gpu["kernel_driver"]) for gpu in gpus] == [
        ("0000:09:00.0", "GeForce RTX 5090", "sysfs", None, "nvidia"),
        ("0000:17:00.0", "NVIDIA A40", "nvml", "GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b166", "nvidia"),
    ]
    assert gpus[1]["subsystem_device"] == "0x145a"


def test_merge_lists_gpus_only_the_driver_sees(fixture_file):
    smi = detect.parse_nvidia_smi_csv(read_fixture(fixture_file, "nvidia-smi", "driver-580-h100.csv"))
    gpus = detect.merge_gpus([], smi_gpus=smi)
    assert gpus == [{
        "pci_bus_id": "0000:00:06.0", "pci_device_id": "0x2330", "name": "NVIDIA H100 80GB HBM3", "architecture": "hopper",
        "compute_capability": "9.0", "memory_mib": 81559, "uuid": "GPU-762a9681-d3f1-c1bb-7c4e-fff1ca98b624",
        "source": "nvidia-smi", "chip": "GH100", "known_by": "catalog", "kernel_driver": None,
        "subsystem_vendor": None, "subsystem_device": None, "pci_bridges": None, "minor_number": None,
    }]


def test_merge_nvml_compute_capability_names_unknown_device(make_host, fake_nvml):
    tree = make_host("nowhere", driver="580.95.05")
    device = {"bus_id": "00000000:42:00.0", "device_id": 0x3F0010DE, "name": "NVIDIA Future GPU",
              "memory_bytes": 1024 * 1024 * 1024, "uuid": "GPU-0", "cc": (12, 0)}
    nvml = detect.query_nvml(fake_nvml(devices=[device]))
    gpus = detect.merge_gpus(detect.scan_sysfs(tree.root), nvml_gpus=nvml["gpus"])
    assert [(gpu["architecture"], gpu["compute_capability"], gpu["memory_mib"], gpu["known_by"]) for gpu in gpus] == [
        ("blackwell", "12.0", 1024, None)]


def test_merge_resolves_through_pci_ids(make_host, fixture_file):
    pci_ids = detect.read_pci_ids(fixture_file("pci.ids"))
    gpus = detect.merge_gpus(detect.scan_sysfs(make_host("pci_ids_only").root), pci_ids=pci_ids)
    assert [(gpu["name"], gpu["architecture"], gpu["compute_capability"], gpu["memory_mib"], gpu["known_by"]) for gpu in gpus] == [
        ("RTX A6000", "ampere", "8.6", None, "pci.ids")]


def test_merge_id_found_nowhere_is_unknown(make_host, fixture_file):
    pci_ids = detect.read_pci_ids(fixture_file("pci.ids"))
    gpus = detect.merge_gpus(detect.scan_sysfs(make_host("nowhere").root), pci_ids=pci_ids)
    assert [(gpu["pci_device_id"], gpu["name"], gpu["architecture"], gpu["compute_capability"]) for gpu in gpus] == [
        ("0x3f00", None, "unknown", None)]


# --- host summary --------------------------------------------------------------------------------

def host_for(make_host, name, **kwargs):
    return detect.build_facts(detect.scan_sysfs(make_host(name).root), **kwargs)["gpufleet_gpu_host"]


def constraints(host):
    return (host["gpu_count"], host["kernel_module_flavor"], host["driver_branch_min"], host["driver_branch_max"],
            host["compatible"], host["problems"])


@pytest.mark.parametrize("name, expected", [
    ("k80x2", (4, "proprietary", None, "470", True, [])),
    ("a40", (1, "any", None, None, True, [])),
    ("h100", (1, "any", "525", None, True, [])),
    ("rtx5090", (1, "open", "570", None, True, [])),
    ("k80_a40", (3, "proprietary", None, "470", True, [])),
    ("rtx5090_a40", (2, "open", "570", None, True, [])),
    ("no_gpu", (0, None, None, None, True, [])),
    ("other_vendor_gpu", (0, None, None, None, True, [])),
])
def test_host_constraints(make_host, name, expected):
    assert constraints(host_for(make_host, name)) == expected


def test_host_k80_with_rtx5090_is_incompatible(make_host):
    host = host_for(make_host, "k80_rtx5090")
    assert (host["gpu_count"], host["kernel_module_flavor"], host["driver_branch_min"], host["driver_branch_max"],
            host["compatible"]) == (3, None, "570", "470", False)
    assert host["problems"] == [
        "Tesla K80 (0000:05:00.0) needs proprietary kernel modules of branch <= 470 while GeForce RTX 5090 (0000:09:00.0) "
        "needs open kernel modules of branch >= 570: no single NVIDIA driver drives both, so this host cannot serve them "
        "together; move one of the cards to another host or exclude it."]
    assert host["architectures"] == ["blackwell", "kepler"]


def test_host_unknown_gpu_is_a_problem_but_not_a_conflict(make_host):
    host = host_for(make_host, "nowhere")
    assert (host["gpu_count"], host["kernel_module_flavor"], host["compatible"]) == (1, None, True)
    assert host["problems"] == [
        "GPU with PCI device id 10de:3f00 at 0000:42:00.0 is in neither the collection's catalog nor the host's pci.ids, "
        "so its architecture is unknown and no driver can be chosen for it: update pci.ids on the host (update-pciids) "
        "or point pci_ids_path at a newer copy, or set the driver branch and kernel module flavor explicitly."]
    assert host["default_driver_branch"] is None


def test_host_maxwell_with_blackwell_conflicts_on_flavor():
    gpus = [
        {"pci_bus_id": "0000:01:00.0", "name": "Tesla M40", "pci_device_id": "0x17fd", "architecture": "maxwell"},
        {"pci_bus_id": "0000:02:00.0", "name": "B200", "pci_device_id": "0x2901", "architecture": "blackwell"},
    ]
    flavor, low, high, compatible, problems = detect.driver_constraints(gpus)
    assert (flavor, low, high, compatible) == (None, "570", "580", False)
    assert problems[0].startswith("Tesla M40 (0000:01:00.0) needs proprietary kernel modules of branch <= 580 while B200")


def test_host_turing_with_kepler_drops_open_flavor():
    gpus = [
        {"pci_bus_id": "0000:01:00.0", "name": "Tesla T4", "architecture": "turing"},
        {"pci_bus_id": "0000:02:00.0", "name": "Tesla K80", "architecture": "kepler"},
    ]
    assert detect.driver_constraints(gpus) == ("proprietary", None, "470", True, [])


def test_host_with_loaded_470_driver_k80(make_host, fixture_file):
    tree = make_host("k80x2", driver="470.256.02")
    smi = detect.parse_nvidia_smi_csv(read_fixture(fixture_file, "nvidia-smi", "driver-470-k80x4.csv"))
    facts = detect.build_facts(detect.scan_sysfs(tree.root), smi_gpus=smi, module_version="470.256.02",
                               nvidia_module_loaded=True, detection={"nvidia_smi": {"answered": True}})
    host = facts["gpufleet_gpu_host"]
    assert {key: host[key] for key in ("gpu_count", "driver_loaded", "driver_version", "cuda_driver_version",
                                       "driver_branch", "driver_fits_gpus", "problems", "detection")} == {
        "gpu_count": 4, "driver_loaded": True, "driver_version": "470.256.02", "cuda_driver_version": "11.4",
        "driver_branch": "470", "driver_fits_gpus": True, "problems": [], "detection": {"nvidia_smi": {"answered": True}}}
    assert [gpu["source"] for gpu in facts["gpufleet_gpus"]] == ["nvidia-smi"] * 4


def test_host_driver_from_proc_when_sysfs_lacks_module(make_host):
    proc = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \n"
    host = host_for(make_host, "h100", proc_version_text=proc)
    assert (host["driver_loaded"], host["driver_version"], host["cuda_driver_version"], host["loaded_kernel_module_flavor"],
            host["driver_fits_gpus"]) == (True, "580.159.04", "13.0", "open", True)


def test_host_wrong_flavor_loaded_for_blackwell(make_host, fake_nvml):
    # Proprietary modules load but do not drive an RTX 5090: NVML answers with no device.
    tree = make_host("rtx5090", driver="570.124.06")
    nvml = detect.query_nvml(fake_nvml(devices=[], driver_version="570.124.06", cuda_version=12080))
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.124.06  Wed Feb 26 01:41:40 UTC 2025\n"
    facts = detect.build_facts(detect.scan_sysfs(tree.root), nvml=nvml, module_version="570.124.06", proc_version_text=proc)
    host = facts["gpufleet_gpu_host"]
    assert (host["compatible"], host["driver_fits_gpus"], host["cuda_driver_version"]) == (True, False, "12.8")
    assert host["problems"] == [
        "NVML sees no GPU at 0000:09:00.0 although sysfs lists GeForce RTX 5090 (0000:09:00.0) there: the loaded driver "
        "570.124.06 does not drive it; install a driver that does (open kernel modules of branch >= 570)."]


def test_host_old_driver_outside_interval(make_host, fake_nvml):
    tree = make_host("h100", driver="470.256.02")
    nvml = detect.query_nvml(fake_nvml(devices=[fake_nvml.H100], driver_version="470.256.02", cuda_version=11040))
    host = detect.build_facts(detect.scan_sysfs(tree.root), nvml=nvml)["gpufleet_gpu_host"]
    assert (host["driver_branch"], host["driver_fits_gpus"], host["default_driver_branch"]) == ("470", False, "570")
