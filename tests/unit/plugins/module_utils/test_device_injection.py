# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Device injection that survives `systemctl daemon-reload`, case by case: the method per Docker and toolkit version,
the `docker run` arguments per replica, and which replicas a reload has cut off from their GPUs. No build machine has a
GPU, a reload to provoke or Docker 28: these cases are the proof."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import (
    CDI,
    RUNTIME,
    DeviceInjectionError,
    choose_injection,
    docker_device_args,
    engine_facts,
    plan_injection,
    recovery_after_reload,
)

UUID_A = "GPU-5929a086-06ca-3a6b-952e-4f94ffe6f9e3"
UUID_B = "GPU-762a9681-d3f1-c1bb-7c4e-fff1ca98b624"


def gpu(bus_id, uuid=None, minor=None):
    """A gpufleet_gpus entry as far as injecting it goes."""
    return {"pci_bus_id": bus_id, "uuid": uuid, "minor_number": minor}


# Listed out of bus order, as nothing promises the fact's order.
TWO_GPUS = [gpu("0000:17:00.0", UUID_B, 1), gpu("0000:09:00.0", UUID_A, 0)]
BARE_HOST = [gpu("0000:17:00.0"), gpu("0000:09:00.0")]

# --- the method ---------------------------------------------------------------------------------


RUNTIME_BECAUSE = ("GPUs injected by the nvidia runtime with their device nodes passed to Docker, whose device rules survive a "
                   "systemd reload: ")
CDI_BY_DEFAULT = "GPUs injected as CDI devices, which Docker 28.2 or newer enables, and whose device rules survive a systemd reload"
CDI_BY_FEATURE = ("GPUs injected as CDI devices, which features.cdi in daemon.json enables, and whose device rules survive a "
                  "systemd reload")
BEFORE_CDI = RUNTIME_BECAUSE + "Docker before 25.0 has no CDI devices"
BEFORE_DEFAULT = RUNTIME_BECAUSE + "Docker before 28.2 takes CDI devices only with features.cdi in daemon.json"


@pytest.mark.parametrize("engine, toolkit, cdi_enabled, method, reason", [
    # Debian 12's docker.io, as `docker version` writes it.
    ("20.10.24+dfsg1", None, False, RUNTIME, BEFORE_CDI),
    ("24.0.7-0ubuntu4.1", None, True, RUNTIME, BEFORE_CDI),
    # Docker CE as dnf writes it, epoch included; 25.0 to 28.1 only with features.cdi.
    ("5:27.5.1-1.el8", None, False, RUNTIME, BEFORE_DEFAULT),
    ("5:27.5.1-1.el8", None, True, CDI, CDI_BY_FEATURE),
    ("28.2.2-0ubuntu1~24.04.1", None, False, CDI, CDI_BY_DEFAULT),
    ("29.0.1", "1.17.8-1", False, CDI, CDI_BY_DEFAULT),
    ("29.0.1", "1.14.6-1", False, RUNTIME, RUNTIME_BECAUSE + (
        "nvidia-container-toolkit 1.14.6 names GPUs by index only in its CDI specification (by UUID too from 1.15)")),
    (None, None, False, RUNTIME, RUNTIME_BECAUSE + (
        "Docker's version is not known before it is installed, and the nvidia runtime works with every engine")),
    ("", "1.17.8-1", False, RUNTIME, RUNTIME_BECAUSE + (
        "Docker's version is not known before it is installed, and the nvidia runtime works with every engine")),
])
def test_method_by_docker_and_toolkit_version(engine, toolkit, cdi_enabled, method, reason):
    assert choose_injection(engine, toolkit, cdi_enabled=cdi_enabled) == {"method": method, "reason": reason}


@pytest.mark.parametrize("installed, source", [
    ("20.10.24+dfsg1", "20.10.24"),
    ("24.0.7-0ubuntu4", "20.10.24"),
    ("29.1.3-0ubuntu3~24.04.2", "29.1.3"),
    ("5:29.0.1-1.el8", "28.2"),
])
def test_the_reason_reads_the_same_for_every_version_of_one_range(installed, source):
    # A bare host's plan decides from the version its package source installs, the next run's from the installed one.
    assert choose_injection(installed) == choose_injection(source)


# --- what the host tells -----------------------------------------------------------------------


@pytest.mark.parametrize("dockerd, daemon_json, expected", [
    ("Docker version 20.10.24+dfsg1, build 5d6db84\n", None, {"docker_version": "20.10.24+dfsg1", "cdi_enabled": False}),
    ("Docker version 28.3.2, build e77ff99\n", '{"features": {"cdi": true}, "runtimes": {}}',
     {"docker_version": "28.3.2", "cdi_enabled": True}),
    (None, '{"features": {"cdi": false}}', {"docker_version": None, "cdi_enabled": False}),
    ("", '{"features": "cdi"}', {"docker_version": None, "cdi_enabled": False}),
    # Not JSON, or no object: the container_runtime role refuses it; here it enables nothing.
    ("Docker version 29.0.1, build 1", "{not json", {"docker_version": "29.0.1", "cdi_enabled": False}),
    ("Docker version 29.0.1, build 1", "[1]", {"docker_version": "29.0.1", "cdi_enabled": False}),
])
def test_engine_facts(dockerd, daemon_json, expected):
    assert engine_facts(dockerd, daemon_json) == expected


# --- the arguments per replica ------------------------------------------------------------------


def test_cdi_names_each_gpu_as_the_plan_does():
    assert docker_device_args(CDI, TWO_GPUS, [UUID_A, UUID_B]) == [
        "--device", "nvidia.com/gpu=%s" % UUID_A, "--device", "nvidia.com/gpu=%s" % UUID_B]
    # Before the driver has named them the plan has indices, and so has the CDI specification.
    assert docker_device_args(CDI, BARE_HOST, ["1"]) == ["--device", "nvidia.com/gpu=1"]


def test_runtime_passes_the_gpus_own_and_the_control_nodes():
    assert docker_device_args(RUNTIME, TWO_GPUS, [UUID_B]) == [
        "--runtime", "nvidia", "--env", "NVIDIA_VISIBLE_DEVICES=%s" % UUID_B,
        "--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        "--device", "/dev/nvidia1", "--device", "/dev/nvidiactl", "--device", "/dev/nvidia-uvm",
        "--device", "/dev/nvidia-uvm-tools"]


def test_runtime_takes_the_minor_number_the_driver_gave_not_the_index():
    # procfs says the second GPU in bus order is /dev/nvidia4 (a GPU excluded or taken by vfio-pci before it).
    facts = [gpu("0000:09:00.0", UUID_A, 0), gpu("0000:17:00.0", UUID_B, 4)]
    args = docker_device_args(RUNTIME, facts, [UUID_A, UUID_B])
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--device"][:2] == ["/dev/nvidia0", "/dev/nvidia4"]
    assert "NVIDIA_VISIBLE_DEVICES=%s,%s" % (UUID_A, UUID_B) in args


def test_runtime_without_minor_numbers_takes_the_index_in_bus_order():
    args = docker_device_args(RUNTIME, BARE_HOST, ["0", "1"])
    assert "NVIDIA_VISIBLE_DEVICES=0,1" in args
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--device"][:2] == ["/dev/nvidia0", "/dev/nvidia1"]


@pytest.mark.parametrize("present, modeset", [
    (None, False),
    (["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"], False),
    (["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-modeset"], True),
])
def test_runtime_passes_the_modeset_node_only_where_it_exists(present, modeset):
    args = docker_device_args(RUNTIME, TWO_GPUS, [UUID_A], present_nodes=present)
    assert ("/dev/nvidia-modeset" in args) is modeset
    # The required nodes are passed whatever the host showed: without them CUDA finds no GPU.
    assert "/dev/nvidia-uvm" in args


@pytest.mark.parametrize("method", [CDI, RUNTIME])
def test_a_replica_without_gpu_gets_no_argument(method):
    assert docker_device_args(method, TWO_GPUS, []) == []


def test_runtime_refuses_a_gpu_the_facts_do_not_show():
    with pytest.raises(DeviceInjectionError) as caught:
        docker_device_args(RUNTIME, TWO_GPUS, ["GPU-00000000-0000-0000-0000-000000000000"])
    assert str(caught.value) == (
        "The replica's GPU GPU-00000000-0000-0000-0000-000000000000 is none of this host's GPUs (0, 1, %s, %s): "
        "gather facts on the host again and plan anew." % (UUID_A, UUID_B))


def test_plan_gives_each_replica_its_arguments():
    planned = plan_injection(TWO_GPUS, [[UUID_A], [UUID_B]], engine_version="20.10.24+dfsg1")
    assert planned["method"] == RUNTIME
    assert planned["reason"] == BEFORE_CDI
    assert [args[args.index("--device") + 1] for args in planned["replica_args"]] == ["/dev/nvidia0", "/dev/nvidia1"]
    planned = plan_injection(TWO_GPUS, [[UUID_A, UUID_B]], engine_version="28.3.0", toolkit_version="1.18.0-1")
    assert planned["replica_args"] == [["--device", "nvidia.com/gpu=%s" % UUID_A, "--device", "nvidia.com/gpu=%s" % UUID_B]]


def test_plan_of_cpu_replicas_injects_nothing():
    assert plan_injection([], [[], []], engine_version="28.3.0") == {"method": None, "reason": None, "replica_args": [[], []]}


# --- recovery after a reload --------------------------------------------------------------------

HEALTHY_TWO = "GPU 0: NVIDIA H200 (UUID: %s)\nGPU 1: NVIDIA H200 (UUID: %s)\n" % (UUID_A, UUID_B)


def probe(replica, rc, output, gpus=2):
    return {"replica": replica, "gpus": gpus, "rc": rc, "output": output}


def test_healthy_replicas_are_left_alone():
    assert recovery_after_reload([probe("vllm-qwen-0", 0, HEALTHY_TWO)]) == {"recreate": [], "unknown": []}


def test_a_replica_with_nvml_unknown_error_is_recreated():
    # nvidia-smi's exit status and text in a container whose device rules a reload dropped (NVIDIA/nvidia-container-toolkit#1227).
    verdicts = recovery_after_reload([probe("vllm-qwen-0", 255, "Failed to initialize NVML: Unknown Error\n"),
                                      probe("vllm-qwen-1", 0, HEALTHY_TWO)])
    assert verdicts == {"unknown": [], "recreate": [{"replica": "vllm-qwen-0", "reason": (
        "vllm-qwen-0 lost its GPUs: nvidia-smi in its container says \"Failed to initialize NVML: Unknown Error\", as it "
        "does once a systemd reload has dropped the container's device rules; restart the unit to recreate the container.")}]}


def test_a_replica_that_sees_fewer_gpus_than_it_was_given_is_recreated():
    verdicts = recovery_after_reload([probe("vllm-qwen-0", 0, "GPU 0: NVIDIA H200 (UUID: %s)\n" % UUID_A)])
    assert verdicts["recreate"] == [{"replica": "vllm-qwen-0", "reason": (
        "vllm-qwen-0 sees 1 of its 2 GPUs; restart the unit to recreate the container with all of them.")}]


@pytest.mark.parametrize("rc, output, said", [
    (1, "Error response from daemon: container 4f2a is not running\n", "Error response from daemon: container 4f2a is not running"),
    (127, "", "no output"),
])
def test_a_probe_that_fails_otherwise_is_reported_not_acted_on(rc, output, said):
    verdicts = recovery_after_reload([probe("vllm-qwen-1", rc, output)])
    assert verdicts == {"recreate": [], "unknown": [{"replica": "vllm-qwen-1", "reason": (
        "The GPU probe in vllm-qwen-1 failed with exit status %d (%s), which is not the reload's NVML error; "
        "look at `journalctl -u vllm-qwen-1` before recreating it." % (rc, said))}]}
