# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What holds each GPU's memory, case by case: nvidia-smi's two CSV answers, the Docker container in a process's
cgroup under either cgroup driver and version, docker inspect's answer for running, stopped and forgotten containers or
none at all, and the processes with their owners as the memory check reads them."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_processes import (
    container_id,
    containers_from_inspect,
    gpu_pids,
    parse_nvidia_smi_memory,
    query_nvml_memory,
    with_owners,
)

from nvml_recording import FakeNvmlReplay

UUID0 = "GPU-5a1c0f3e-0000-4000-8000-000000000000"
UUID1 = "GPU-5a1c0f3e-0000-4000-8000-000000000001"
SERVER = "3f2a9c1b0d4e" + "5" * 52
ENGINE = "9c1b0d4e3f2a" + "7" * 52
FORGOTTEN = "0d4e3f2a9c1b" + "8" * 52


# nvidia-smi --------------------------------------------------------------------------------------

def test_nvidia_smi_gpus_get_their_compute_processes_by_uuid():
    gpus = parse_nvidia_smi_memory(
        "0, %s, 46068, 4012\n1, %s, 46068, 45500\n" % (UUID0, UUID1),
        "%s, 4100, 41500\n%s, 4242, 500\n" % (UUID0, UUID0))
    assert gpus == [
        {"index": 0, "uuid": UUID0, "total_mib": 46068, "free_mib": 4012,
         "processes": [{"pid": 4100, "used_mib": 41500}, {"pid": 4242, "used_mib": 500}]},
        {"index": 1, "uuid": UUID1, "total_mib": 46068, "free_mib": 45500, "processes": []}]


def test_nvidia_smi_process_of_unknown_size_holds_nothing_and_messages_are_no_rows():
    gpus = parse_nvidia_smi_memory("0, %s, 46068, 4012\n" % UUID0, "No running processes found\n%s, 4100, [N/A]\n" % UUID0)
    assert gpus[0]["processes"] == [{"pid": 4100, "used_mib": 0}]


def test_nvidia_smi_gpu_without_memory_figures_is_left_out():
    gpus = parse_nvidia_smi_memory("0, %s, [N/A], [N/A]\n1, %s, 46068, 45500\n" % (UUID0, UUID1), "")
    assert [gpu["index"] for gpu in gpus] == [1]


def test_nvidia_smi_without_output_lists_no_gpu():
    assert parse_nvidia_smi_memory("", "") == []


# NVML ------------------------------------------------------------------------------------------------

def test_nvml_on_the_recorded_h200_while_a_process_held_20_gib(fixture_file):
    # tests/hardware/gpu_memory_check.py: torch held 20 GiB, and its CUDA context 610 MiB more.
    nvml = FakeNvmlReplay.from_file(fixture_file("h200", "gpu-memory", "nvml.json"))
    assert query_nvml_memory(nvml) == ([{"index": 0, "uuid": "GPU-e9407cc8-faaf-db84-f3d6-f1a5c74161cd", "total_mib": 143771,
                                         "free_mib": 122057, "processes": [{"pid": 471, "used_mib": 21090}]}], None)


def test_nvml_without_the_binding_says_why():
    assert query_nvml_memory(None) == (None, "the Python module pynvml (PyPI package nvidia-ml-py) is not installed")


def test_nvml_without_a_driver_says_why(fake_nvml):
    assert query_nvml_memory(fake_nvml(init_error=9)) == (None, "nvmlInit failed: Driver Not Loaded")


# cgroups ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cgroup, expected", [
    ("0::/system.slice/docker-%s.scope\n" % SERVER, SERVER),
    ("12:pids:/system.slice/docker-%s.scope\n11:memory:/system.slice/docker-%s.scope\n" % (SERVER, SERVER), SERVER),
    ("0::/docker/%s\n" % SERVER, SERVER),
    ("12:pids:/docker/%s\n1:name=systemd:/docker/%s\n" % (SERVER, SERVER), SERVER),
    # A container started inside another: the host's Docker knows the outer one.
    ("0::/system.slice/docker-%s.scope/docker/%s\n" % (SERVER, ENGINE), SERVER),
    ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-%s.scope\n" % SERVER, SERVER),
    ("0::/system.slice/vllm-tiny-0.service\n", None),
    ("0::/machine.slice/libpod-%s.scope/container\n" % SERVER, None),
    ("0::/system.slice/docker.service\n", None),
    ("0::/docker/%s\n" % SERVER[:12], None),
    ("0::/\n", None),
    ("", None),
    (None, None),
], ids=["systemd-v2", "systemd-v1", "cgroupfs-v2", "cgroupfs-v1", "nested", "rootless", "service", "podman", "dockerd",
        "short-id", "root", "empty", "unreadable"])
def test_container_id_of_a_cgroup(cgroup, expected):
    assert container_id(cgroup) == expected


# docker inspect ----------------------------------------------------------------------------------------

def inspected(container, name, running):
    return {"Id": container, "Name": "/" + name, "State": {"Status": "running" if running else "exited", "Running": running}}


def test_inspect_names_containers_and_says_whether_they_run():
    stdout = json.dumps([inspected(SERVER, "vllm-tiny-0", True), inspected(ENGINE, "vllm-tiny-1", False)], indent=4)
    assert containers_from_inspect([SERVER, ENGINE], stdout) == {
        SERVER: {"container": "vllm-tiny-0", "container_running": True},
        ENGINE: {"container": "vllm-tiny-1", "container_running": False}}


def test_container_docker_no_longer_knows_keeps_its_short_id_and_does_not_run():
    # docker inspect prints the containers it knows and exits 1 for the rest; with none known it prints [].
    stdout = '[{"Id": "%s", "Name": "/vllm-tiny-0", "State": {"Running": true}}]\n' % SERVER
    assert containers_from_inspect([SERVER, FORGOTTEN], stdout)[FORGOTTEN] == {"container": FORGOTTEN[:12],
                                                                               "container_running": False}
    assert containers_from_inspect([FORGOTTEN], "[]\n") == {FORGOTTEN: {"container": FORGOTTEN[:12], "container_running": False}}


@pytest.mark.parametrize("stdout", ["", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", "{}", None])
def test_no_answer_from_docker_is_none(stdout):
    assert containers_from_inspect([SERVER], stdout) is None


# owners ------------------------------------------------------------------------------------------------

GPUS = [{"index": 0, "uuid": UUID0, "total_mib": 46068, "free_mib": 2000,
         "processes": [{"pid": 4100, "used_mib": 20000}, {"pid": 4242, "used_mib": 20000}, {"pid": 700, "used_mib": 2000}]},
        {"index": 1, "uuid": UUID1, "total_mib": 46068, "free_mib": 25000, "processes": [{"pid": 4100, "used_mib": 20000}]}]
NAMES = {4100: "python3", 4242: "VLLM::EngineCor", 700: None}
CONTAINER_IDS = {4100: SERVER, 4242: FORGOTTEN, 700: None}


def test_pids_on_several_gpus_are_listed_once():
    assert gpu_pids(GPUS) == [700, 4100, 4242]


def test_processes_get_their_names_and_containers():
    containers = containers_from_inspect([SERVER, FORGOTTEN], '[{"Id": "%s", "Name": "/vllm-tiny-0", "State": {"Running": true}}]'
                                         % SERVER)
    owned = with_owners(GPUS, NAMES, CONTAINER_IDS, containers)
    assert owned[0]["processes"] == [
        {"pid": 4100, "used_mib": 20000, "name": "python3", "container": "vllm-tiny-0", "container_running": True},
        {"pid": 4242, "used_mib": 20000, "name": "VLLM::EngineCor", "container": FORGOTTEN[:12], "container_running": False},
        {"pid": 700, "used_mib": 2000, "name": None, "container": None, "container_running": False}]
    assert owned[1]["processes"][0]["container"] == "vllm-tiny-0"
    assert {key: owned[0][key] for key in ("index", "uuid", "total_mib", "free_mib")} == {
        "index": 0, "uuid": UUID0, "total_mib": 46068, "free_mib": 2000}


def test_containers_docker_did_not_tell_about_count_as_running():
    owned = with_owners(GPUS, NAMES, CONTAINER_IDS, None)
    assert [(process["container"], process["container_running"]) for process in owned[0]["processes"]] == [
        (SERVER[:12], True), (FORGOTTEN[:12], True), (None, False)]
