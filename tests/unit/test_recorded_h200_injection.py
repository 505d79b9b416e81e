# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The GPU injection and the post-reload probe against what a real H200 host answered (fixtures/h200/injection)."""

from __future__ import annotations

import os
import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import (
    CONTROL_NODES, OPTIONAL_CONTROL_NODES, RUNTIME, docker_device_args, recovery_after_reload)
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import read_minor_numbers

RECORDED = os.path.join(os.path.dirname(__file__), "fixtures", "h200", "injection")
UUID = "GPU-1405a230-d3b5-b9bd-eb8a-74218eb3b1bb"
BUS_ID = "0000:00:06.0"


def recorded(name):
    with open(os.path.join(RECORDED, name), encoding="utf-8") as handle:
        return handle.read()


def proc_gpus(tmp_path):
    """The driver's /proc/driver/nvidia/gpus as the H200 host had it."""
    gpu_dir = tmp_path / "gpus" / "0000:00:06.0"
    gpu_dir.mkdir(parents=True)
    (gpu_dir / "information").write_text(recorded("proc-information.txt"), encoding="utf-8")
    return str(tmp_path / "gpus")


def device_nodes():
    """The /dev/nvidia* character devices of `ls -l /dev/nvidia*` (the nvidia-caps directory's entries left out)."""
    return set(re.findall(r"^c\S+ .* (/dev/nvidia[\w-]*)$", recorded("dev-nvidia.txt"), re.M))


def test_the_driver_procfs_gives_the_gpu_minor_number(tmp_path):
    assert read_minor_numbers(proc_gpus(tmp_path)) == {BUS_ID: 0}


def test_the_runtime_injection_passes_only_device_nodes_the_host_has(tmp_path):
    minor = read_minor_numbers(proc_gpus(tmp_path))[BUS_ID]
    facts = [{"pci_bus_id": BUS_ID, "uuid": UUID, "minor_number": minor}]
    args = docker_device_args(RUNTIME, facts, [UUID], present_nodes=device_nodes())
    passed = [args[index + 1] for index, arg in enumerate(args) if arg == "--device"]
    assert passed == ["/dev/nvidia0"] + list(CONTROL_NODES)
    assert set(passed) <= device_nodes()
    assert not set(OPTIONAL_CONTROL_NODES) & device_nodes()


def test_the_probe_of_a_replica_with_its_gpu_asks_for_nothing():
    probe = {"replica": "vllm-tiny-0", "gpus": 1, "rc": 0, "output": recorded("nvidia-smi-L.txt")}
    assert recovery_after_reload([probe]) == {"recreate": [], "unknown": []}


def test_the_probe_of_a_replica_that_sees_fewer_gpus_than_it_was_given_recreates_it():
    probe = {"replica": "vllm-tiny-0", "gpus": 2, "rc": 0, "output": recorded("nvidia-smi-L.txt")}
    assert [item["replica"] for item in recovery_after_reload([probe])["recreate"]] == ["vllm-tiny-0"]
