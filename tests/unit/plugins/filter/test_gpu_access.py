# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""After a systemd reload the role probes each running GPU replica with its plan's gpu_probe
(roles/vllm_service/tasks/gpu_access.yml) and recreates the ones this filter names, from the registered results of the
probe loop."""

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.filter.gpu_access import FilterModule
from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import LOST_GPUS_MESSAGE

GPU_RECOVERY = FilterModule().filters()["gpu_recovery"]
TWO_GPUS = {"unit": "vllm-qwen-0", "gpus": ["GPU-a", "GPU-b"]}
ONE_GPU = {"unit": "vllm-qwen-1", "gpus": ["GPU-c"]}


def probed(replica, rc, stdout="", stderr=""):
    """One registered result of `docker exec <unit> nvidia-smi -L`, as the command module returns it in a loop."""
    return {"item": replica, "rc": rc, "stdout": stdout, "stderr": stderr, "changed": False, "failed": False}


def test_only_the_replicas_that_lost_gpus_are_recreated():
    verdicts = GPU_RECOVERY([
        probed(TWO_GPUS, 0, "GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n"),
        probed(ONE_GPU, 255, stderr=LOST_GPUS_MESSAGE + "\n"),
    ])
    assert [item["replica"] for item in verdicts["recreate"]] == ["vllm-qwen-1"]
    assert verdicts["unknown"] == []


def test_a_replica_that_lists_fewer_gpus_is_recreated():
    verdicts = GPU_RECOVERY([probed(TWO_GPUS, 0, "GPU 0: NVIDIA H100 (UUID: GPU-a)\n")])
    assert verdicts["recreate"] == [{"replica": "vllm-qwen-0", "reason": (
        "vllm-qwen-0 sees 1 of its 2 GPUs; restart the unit to recreate the container with all of them.")}]


def test_a_probe_that_fails_otherwise_is_shown_not_acted_on():
    verdicts = GPU_RECOVERY([probed(ONE_GPU, 126, stderr="OCI runtime exec failed: exec failed: executable file not found")])
    assert verdicts["recreate"] == []
    assert [item["replica"] for item in verdicts["unknown"]] == ["vllm-qwen-1"]


def test_no_probe_no_verdict():
    assert GPU_RECOVERY([]) == {"recreate": [], "unknown": []}
