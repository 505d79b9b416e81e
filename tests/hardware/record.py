# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Record what a real GPU host shows each detection layer, and time the layers.

Run on a machine with NVIDIA GPUs (see run-on-gpu-host.sh). Writes, into the directory
given as the only argument:
  raw.json     the sysfs files and nvidia-smi output the detection code read, and what
               query_nvml made of NVML's answers there;
  nvml.json    NVML's raw answers: what pynvml returned, or the error it raised, for every call
               query_nvml makes (format in tests/unit/nvml_recording.py), so that unit tests run
               the real query_nvml against this host through FakeNvmlReplay;
  timing.json  median wall time of the sysfs, NVML and nvidia-smi layers.
Exits 1 when the replayed recording does not give what the live NVML gave.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata

import pynvml

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect

# The recording format and its replay live with the unit tests that read them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "unit"))
import nvml_recording  # noqa: E402

REPEATS = 25
PCI_FILES = ("vendor", "device", "class", "subsystem_vendor", "subsystem_device")


def nvidia_pci_functions(sysfs_root="/sys"):
    """The raw sysfs files of every NVIDIA PCI function (GPUs and their companions)."""
    devices_dir = os.path.join(sysfs_root, "bus", "pci", "devices")
    functions = {}
    for bus_id in sorted(os.listdir(devices_dir)):
        files = {}
        for name in PCI_FILES:
            path = os.path.join(devices_dir, bus_id, name)
            if os.path.exists(path):
                with open(path) as handle:
                    files[name] = handle.read().strip()
        if files.get("vendor") == "0x10de":
            functions[bus_id] = files
    return functions


def read_if_present(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def run_nvidia_smi():
    return subprocess.run(["nvidia-smi"] + list(_gpu_detect.NVIDIA_SMI_ARGS),
                          check=True, capture_output=True, text=True).stdout


def median_seconds(function):
    samples = []
    for dummy in range(REPEATS):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def binding_version():
    try:
        return metadata.version("nvidia-ml-py")
    except metadata.PackageNotFoundError:
        return None


def record_nvml():
    recording = nvml_recording.record_nvml(pynvml)
    recording["recorded_with"] = {"nvidia-ml-py": binding_version(), "python": platform.python_version()}
    return recording


def write_json(out_dir, name, data):
    with open(os.path.join(out_dir, name), "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def main():
    out_dir = sys.argv[1]
    raw = {
        "pci_functions": nvidia_pci_functions(),
        "module_version": read_if_present("/sys/module/nvidia/version"),
        "proc_driver_version": read_if_present("/proc/driver/nvidia/version"),
        "nvml": _gpu_detect.query_nvml(pynvml),
        "nvidia_smi_csv": run_nvidia_smi(),
    }
    recording = record_nvml()
    write_json(out_dir, "raw.json", raw)
    write_json(out_dir, "nvml.json", recording)
    # Through JSON, as the unit tests will read it.
    replayed = _gpu_detect.query_nvml(nvml_recording.FakeNvmlReplay(json.loads(json.dumps(recording))))

    timing = {
        "repeats": REPEATS,
        "nvml_median_ms": round(1000 * median_seconds(lambda: _gpu_detect.query_nvml(pynvml)), 2),
        "nvidia_smi_median_ms": round(1000 * median_seconds(
            lambda: _gpu_detect.parse_nvidia_smi_csv(run_nvidia_smi())), 2),
        "sysfs_median_ms": round(1000 * median_seconds(lambda: _gpu_detect.scan_sysfs("/sys")), 2),
    }
    write_json(out_dir, "timing.json", timing)
    print(json.dumps(timing))
    if replayed != raw["nvml"]:
        sys.exit("the NVML recording replays to %s, the live NVML gave %s" % (
            json.dumps(replayed, sort_keys=True), json.dumps(raw["nvml"], sort_keys=True)))


if __name__ == "__main__":
    main()
