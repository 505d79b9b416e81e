# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared test doubles: fake sysfs trees and FakeNvml (GPUs and NVML do not exist on the build machines); and for module
tests, a run of a module's main() and the check that a module documents the options its argument spec declares."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from nvml_recording import FakeNvmlReplay

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_path(*parts):
    return os.path.join(FIXTURES, *parts)


# Arguments the planner added after the recorded plans were taken on the GPU hosts.
_LATER_PLAN_ARGS = ("--max-num-seqs", "--max-num-batched-tokens")


def plan_decisions(plan):
    """A plan without its memory arithmetic, which the recorded vLLM runs check on their own
    (test_recorded_vllm_memory.py), and without the arguments added since it was recorded."""
    decisions = {key: value for key, value in plan.items() if key != "memory"}
    args = list(plan["args"])
    for flag in _LATER_PLAN_ARGS:
        if flag in args:
            del args[args.index(flag):args.index(flag) + 2]
    decisions["args"] = args
    return decisions


def recorded_gpus(gpus):
    """A recorded gpufleet_gpus fact as the detection gives it today: the recordings predate pci_bridges and
    minor_number, and their raw.json keeps neither sysfs links nor /proc/driver/nvidia/gpus, so the replay knows no
    topology and no minor number either."""
    return [dict(gpu, pci_bridges=None, minor_number=None) for gpu in gpus]


def recorded_host(host):
    """A recorded gpufleet_gpu_host fact as the detection gives it today: the recordings predate nvswitch_count, and
    the recorded hosts have no NVSwitch."""
    return dict(host, nvswitch_count=0)


class SysfsTree:
    """A directory laid out like /sys for PCI functions and the nvidia kernel module.

    A function added with a parent lives where the kernel puts it, under devices/<root complex>/<bridges>/<address>,
    and bus/pci/devices/<address> links to it. One added without a parent is a directory right in bus/pci/devices,
    as the recorded trees write it: there sysfs tells no topology.
    """

    def __init__(self, root):
        self.root = str(root)
        self.devices = os.path.join(self.root, "bus", "pci", "devices")
        os.makedirs(self.devices, exist_ok=True)
        self._places = {}

    def add(self, bus_id, vendor, device, pci_class, subsystem_vendor="0x0000", subsystem_device="0x0000", driver=None,
            parent=None):
        """parent: the address of the bridge above the function, or its root complex ("pci0000:00")."""
        path = os.path.join(self.devices, bus_id)
        if parent is not None:
            self._places[bus_id] = os.path.join(self._places.get(parent, parent), bus_id)
            path = os.path.join(self.root, "devices", self._places[bus_id])
            os.symlink(os.path.join("..", "..", "..", "devices", self._places[bus_id]), os.path.join(self.devices, bus_id))
        os.makedirs(path)
        values = {
            "vendor": vendor,
            "device": device,
            "class": pci_class,
            "subsystem_vendor": subsystem_vendor,
            "subsystem_device": subsystem_device,
        }
        for name, value in values.items():
            with open(os.path.join(path, name), "w") as handle:
                handle.write(value + "\n")
        if driver:
            # sysfs points "driver" at /sys/bus/pci/drivers/<name>; a dangling link is enough here.
            os.symlink(os.path.join("..", "..", "..", "bus", "pci", "drivers", driver), os.path.join(path, "driver"))
        return self

    def load_module(self, version):
        path = os.path.join(self.root, "module", "nvidia")
        os.makedirs(path)
        with open(os.path.join(path, "version"), "w") as handle:
            handle.write(version + "\n")
        return self


# PCI functions per fake host: (bus id, vendor, device, class, subsystem vendor, subsystem device, parent). The
# parent is the bridge above the function or its root complex; None lays the function flat (topology unknown).
CHIPSET = [
    ("0000:00:00.0", "0x8086", "0x1237", "0x060000", "0x1af4", "0x1100", "pci0000:00"),
    ("0000:00:01.0", "0x1af4", "0x1000", "0x020000", "0x1af4", "0x0001", "pci0000:00"),
]


# A Tesla K80 board is a PLX PEX 8747 switch, an upstream port and two downstream ports, with one GK210 die behind
# each downstream port; each board hangs off its own root port of the host bridge (Xeon E5 v3 ports 3a and 3c), so
# nvidia-smi topo shows PIX within a board and PHB across boards.
def _k80_board(root_port, root_port_device, switch_bus):
    """The six PCI functions of one K80 board behind the given root port, the switch on bus switch_bus."""
    upstream = "0000:%02x:00.0" % switch_bus
    downstream = ["0000:%02x:%02x.0" % (switch_bus + 1, slot) for slot in (0x08, 0x10)]
    dies = ["0000:%02x:00.0" % (switch_bus + 2 + index) for index in (0, 1)]
    plx = ("0x10b5", "0x8747", "0x060400", "0x0000", "0x0000")
    gk210 = ("0x10de", "0x102d", "0x030200", "0x10de", "0x106c")
    return ([(root_port, "0x8086", root_port_device, "0x060400", "0x0000", "0x0000", "pci0000:00"),
             (upstream,) + plx + (root_port,)]
            + [(port,) + plx + (upstream,) for port in downstream]
            + [(die,) + gk210 + (port,) for die, port in zip(dies, downstream)])


K80_BOARD_1 = _k80_board("0000:00:03.0", "0x2f08", 0x03)
K80_BOARD_2 = _k80_board("0000:00:03.2", "0x2f0a", 0x83)

RTX5090 = [
    ("0000:09:00.0", "0x10de", "0x2b85", "0x030000", "0x1462", "0x5301", None),
    ("0000:09:00.1", "0x10de", "0x22e8", "0x040300", "0x1462", "0x5301", None),  # HD audio function
    ("0000:09:00.2", "0x10de", "0x1ad6", "0x0c0330", "0x1462", "0x5301", None),  # USB controller function
]
A40 = [("0000:17:00.0", "0x10de", "0x2235", "0x030200", "0x10de", "0x145a", None)]
# As observed on the project's H100 build machine.
H100 = [("0000:00:06.0", "0x10de", "0x2330", "0x030200", "0x10de", "0x16c1", None)]
# An HGX H100 8-GPU baseboard: eight SXM5 GPUs and four third-generation NVSwitches (10de:22a3, class 0x0680, the
# device id AWS ParallelCluster counts on its P5 instances), all NVIDIA functions.
HGX_H100 = [("0000:%02x:00.0" % bus, "0x10de", "0x2330", "0x030200", "0x10de", "0x16c1", None)
            for bus in (0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb)] + [
    ("0000:%02x:00.0" % bus, "0x10de", "0x22a3", "0x068000", "0x10de", "0x1796", None) for bus in (0x05, 0x06, 0x07, 0x08)]
OTHER_VENDOR_GPUS = [
    ("0000:03:00.0", "0x1002", "0x744c", "0x030000", "0x1002", "0x0e3b", None),  # AMD Radeon RX 7900
    ("0000:04:00.0", "0x8086", "0x56a0", "0x030000", "0x8086", "0x1020", None),  # Intel Arc A770
]
# Not in the catalog; named in tests/unit/fixtures/pci.ids.
RTX_A6000 = [("0000:41:00.0", "0x10de", "0x2230", "0x030200", "0x10de", "0x1459", None)]
# Neither in the catalog nor in tests/unit/fixtures/pci.ids.
NOWHERE = [("0000:42:00.0", "0x10de", "0x3f00", "0x030200", "0x10de", "0x0000", None)]

HOSTS = {
    "k80x2": CHIPSET + K80_BOARD_1 + K80_BOARD_2,
    "rtx5090": CHIPSET + RTX5090,
    "a40": CHIPSET + A40,
    "h100": CHIPSET + H100,
    "hgx_h100": CHIPSET + HGX_H100,
    "k80_a40": CHIPSET + K80_BOARD_1 + A40,
    "k80_rtx5090": CHIPSET + K80_BOARD_1 + RTX5090,
    "rtx5090_a40": CHIPSET + RTX5090 + A40,
    "no_gpu": CHIPSET,
    "other_vendor_gpu": CHIPSET + OTHER_VENDOR_GPUS,
    "pci_ids_only": CHIPSET + RTX_A6000,
    "nowhere": CHIPSET + NOWHERE,
}


@pytest.fixture
def sysfs_tree(tmp_path):
    """An empty fake sysfs root (tmp_path/sys)."""
    return SysfsTree(tmp_path / "sys")


@pytest.fixture
def make_host(tmp_path):
    """Build one of HOSTS as a fake sysfs tree; driver="470.256.02" also 'loads' the nvidia module, and flat=True lays
    every function flat, so that the tree tells no topology."""

    def build(name, driver=None, flat=False):
        tree = SysfsTree(tmp_path / "sys")
        for bus_id, vendor, device, pci_class, sub_vendor, sub_device, parent in HOSTS[name]:
            tree.add(bus_id, vendor, device, pci_class, sub_vendor, sub_device, driver="nvidia" if driver and vendor == "0x10de" else None,
                     parent=None if flat else parent)
        if driver:
            tree.load_module(driver)
        return tree

    return build


MIB = 1024 * 1024

NVML_K80 = [
    {"bus_id": "00000000:05:00.0", "device_id": 0x102D10DE, "name": "Tesla K80", "memory_bytes": 11441 * MIB,
     "uuid": "GPU-3f1e2b7a-0c52-9d41-6a8e-5b0d7c2e9f11", "cc": (3, 7)},
    {"bus_id": "00000000:06:00.0", "device_id": 0x102D10DE, "name": "Tesla K80", "memory_bytes": 11441 * MIB,
     "uuid": "GPU-8a64c0d3-51f7-2be9-04c8-e93a1d6b7f22", "cc": (3, 7)},
]
NVML_A40 = {"bus_id": "00000000:17:00.0", "device_id": 0x223510DE, "name": "NVIDIA A40", "memory_bytes": 46068 * MIB,
            "uuid": "GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b166", "cc": (8, 6)}
NVML_RTX5090 = {"bus_id": "00000000:09:00.0", "device_id": 0x2B8510DE, "name": "NVIDIA GeForce RTX 5090",
                "memory_bytes": 32607 * MIB, "uuid": "GPU-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f955", "cc": (12, 0)}
# Values read through the real pynvml on the project's H100 build machine (driver 580.159.04).
NVML_H100 = {"bus_id": "00000000:00:06.0", "device_id": 0x233010DE, "name": "NVIDIA H100 80GB HBM3",
             "memory_bytes": 85520809984, "uuid": "GPU-762a9681-d3f1-c1bb-7c4e-fff1ca98b624", "cc": (9, 0)}


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError: carries the NVML return code, str() gives NVML's text."""

    TEXTS = {
        3: "Not Supported",
        9: "Driver Not Loaded",
        12: "NVML Shared Library Not Found",
        18: "RM has detected an NVML/RM version mismatch.",
    }

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return self.TEXTS.get(self.value, "NVML Error with code %d" % self.value)


class _Struct:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class FakeNvml:
    """Test double for the pynvml module object.

    devices: dicts with bus_id ("00000000:05:00.0" as NVML writes it), device_id (int such as
    0x102D10DE), name, memory_bytes, uuid, cc ((major, minor) or an int NVML error code) and
    optionally handle_error (int code raised by nvmlDeviceGetHandleByIndex).
    init_error: NVML code raised by nvmlInit (9 = driver not loaded, 12 = library missing).
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12

    # Canned per-device answers.
    K80 = NVML_K80
    A40 = NVML_A40
    RTX5090 = NVML_RTX5090
    H100 = NVML_H100

    def __init__(self, devices=(), driver_version=b"470.256.02", cuda_version=11040, init_error=None, bytes_strings=True):
        self.devices = list(devices)
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.init_error = init_error
        self.bytes_strings = bytes_strings
        self.calls = []

    def _str(self, text):
        # pynvml before 11.5 returned bytes, newer releases str.
        return text.encode() if self.bytes_strings else text

    def nvmlInit(self):
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self):
        self.calls.append("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self):
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda_version

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        device = self.devices[index]
        if device.get("handle_error"):
            raise FakeNVMLError(device["handle_error"])
        return index

    def nvmlDeviceGetPciInfo(self, handle):
        device = self.devices[handle]
        return _Struct(busId=self._str(device["bus_id"]), pciDeviceId=device["device_id"])

    def nvmlDeviceGetName(self, handle):
        return self._str(self.devices[handle]["name"])

    def nvmlDeviceGetMemoryInfo(self, handle):
        return _Struct(total=self.devices[handle]["memory_bytes"], free=0, used=0)

    def nvmlDeviceGetUUID(self, handle):
        return self._str(self.devices[handle]["uuid"])

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        cc = self.devices[handle]["cc"]
        if isinstance(cc, int):
            raise FakeNVMLError(cc)
        return cc


@pytest.fixture
def fake_nvml():
    """The FakeNvml class (canned device answers as class attributes K80, A40, RTX5090, H100)."""
    return FakeNvml


@pytest.fixture
def fixture_file():
    """Path of a file under tests/unit/fixtures."""
    return fixture_path


@pytest.fixture
def nvml_replay():
    """FakeNvmlReplay answering from tests/unit/fixtures/<host>/nvml.json, recorded on that real host."""

    def load(host):
        return FakeNvmlReplay.from_file(fixture_path(host, "nvml.json"))

    return load


def run_main(module, capsys, args):
    """Run module.main() with module args; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as caught:
            module.main()
    return caught.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def check_documented_options(monkeypatch):
    """Check that a module's DOCUMENTATION lists the options of its argument spec, with the same type, required and default."""

    def check(module):
        seen = {}

        class Recorder:
            def __init__(self, argument_spec, **kwargs):
                seen.update(argument_spec)
                raise SystemExit(0)

        monkeypatch.setattr(module, "AnsibleModule", Recorder)
        with pytest.raises(SystemExit):
            module.main()
        documented = yaml.safe_load(module.DOCUMENTATION)["options"]
        assert set(documented) == set(seen)
        for name, spec in seen.items():
            assert documented[name]["type"] == spec["type"], name
            assert documented[name].get("required", False) == spec.get("required", False), name
            assert documented[name].get("default") == spec.get("default"), name

    return check
