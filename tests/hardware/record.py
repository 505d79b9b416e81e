# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Record what a real GPU host shows each detection layer, and time the layers.

Run on a machine with NVIDIA GPUs (see run-on-gpu-host.sh). Writes, into the directory
given as the only argument:
  raw.json     the sysfs files, NVML answers and nvidia-smi output the detection code read,
               so unit tests can replay this host without it;
  timing.json  median wall time of the NVML layer and of the nvidia-smi layer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import pynvml

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect

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


def main():
    out_dir = sys.argv[1]
    raw = {
        "pci_functions": nvidia_pci_functions(),
        "module_version": read_if_present("/sys/module/nvidia/version"),
        "proc_driver_version": read_if_present("/proc/driver/nvidia/version"),
        "nvml": _gpu_detect.query_nvml(pynvml),
        "nvidia_smi_csv": run_nvidia_smi(),
    }
    with open(os.path.join(out_dir, "raw.json"), "w") as handle:
        json.dump(raw, handle, indent=2, sort_keys=True)

    timing = {
        "repeats": REPEATS,
        "nvml_median_ms": round(1000 * median_seconds(lambda: _gpu_detect.query_nvml(pynvml)), 2),
        "nvidia_smi_median_ms": round(1000 * median_seconds(
            lambda: _gpu_detect.parse_nvidia_smi_csv(run_nvidia_smi())), 2),
        "sysfs_median_ms": round(1000 * median_seconds(lambda: _gpu_detect.scan_sysfs("/sys")), 2),
    }
    with open(os.path.join(out_dir, "timing.json"), "w") as handle:
        json.dump(timing, handle, indent=2, sort_keys=True)
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
