# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The gpu_memory module: what it reads (NVML, else nvidia-smi; /proc; one docker inspect), what it returns, and that
it fails only on options it cannot check against."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils import basic

from ansible_collections.gpufleet.vllm.plugins.modules import gpu_memory

from conftest import run_main
from nvml_recording import FakeNvmlReplay

A40_MIB = 46068
UUID0 = "GPU-5a1c0f3e-0000-4000-8000-000000000000"
UUID1 = "GPU-5a1c0f3e-0000-4000-8000-000000000001"
SERVER = "3f2a9c1b0d4e" + "5" * 52
GONE = "0d4e3f2a9c1b" + "8" * 52
REPLICAS = [{"index": 0, "unit": "vllm-tiny-0", "port": 8001, "gpus": [UUID0], "env": {}},
            {"index": 1, "unit": "vllm-tiny-1", "port": 8002, "gpus": [UUID1], "env": {}}]


class Host:
    """Stands in for the host's commands (nvidia-smi, docker) and its /proc: answers per command, keeps the command lines."""

    def __init__(self, monkeypatch, tmp_path):
        self.answers = {}
        self.commands = []
        self.proc = tmp_path / "proc"
        monkeypatch.setattr(gpu_memory, "PROC", str(self.proc))
        monkeypatch.setattr(gpu_memory, "pynvml", None)
        # Plain functions, so that the module's instance is their first argument.
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda module, arg, **kwargs: self.get_bin_path(arg))
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda module, args, **kwargs: self.run_command(args))

    def get_bin_path(self, arg):
        return "/usr/bin/" + arg if arg in self.answers else None

    def run_command(self, args):
        self.commands.append(list(args))
        answer = self.answers[os.path.basename(args[0])]
        return answer(args[1:]) if callable(answer) else answer

    def nvidia_smi(self, gpus, apps):
        self.answers["nvidia-smi"] = lambda args: (0, gpus if args[0].startswith("--query-gpu") else apps, "")
        return self

    def process(self, pid, name, cgroup="0::/user.slice/user-1000.slice/session-3.scope\n"):
        os.makedirs(str(self.proc / str(pid)))
        (self.proc / str(pid) / "comm").write_text(name + "\n")
        (self.proc / str(pid) / "cgroup").write_text(cgroup)
        return self


@pytest.fixture
def host(monkeypatch, tmp_path):
    return Host(monkeypatch, tmp_path)


def run(capsys, replicas=None, utilization=0.9, **args):
    return run_main(gpu_memory, capsys, dict(args, replicas=REPLICAS if replicas is None else replicas,
                                             gpu_memory_utilization=utilization))


def in_docker(container):
    return "0::/system.slice/docker-%s.scope\n" % container


def test_documented_options_match_the_argument_spec(check_documented_options):
    check_documented_options(gpu_memory)


def test_foreign_process_through_nvidia_smi_is_named_with_its_memory(host, capsys):
    host.nvidia_smi("0, %s, 46068, 45500\n1, %s, 46068, 15000\n" % (UUID0, UUID1), "%s, 5151, 30720\n" % UUID1)
    host.process(5151, "python3")
    code, result = run(capsys)
    assert code == 0
    assert (result["source"], result["changed"], result["orphans"], result["stop_first"]) == ("nvidia-smi", False, [], [])
    assert result["gpus"][1]["processes"] == [
        {"pid": 5151, "used_mib": 30720, "name": "python3", "container": None, "container_running": False}]
    assert result["problems"] == [
        "GPU 1 (%s) can give vllm-tiny-1 only 14.6 GiB of its 45.0 GiB where it needs 40.5 GiB (gpu_memory_utilization 0.90), "
        "because pid 5151 (python3) holds 30.0 GiB; stop that process, or set gpu_memory_utilization to at most 0.32." % UUID1]
    assert [command[1] for command in host.commands] == list(gpu_memory.NVIDIA_SMI_GPU_ARGS[:1] + gpu_memory.NVIDIA_SMI_APP_ARGS[:1])


def test_orphaned_engine_core_and_replicas_own_server_are_told_apart_by_one_docker_inspect(host, capsys):
    host.nvidia_smi("0, %s, 46068, 4000\n" % UUID0, "%s, 4100, 20000\n%s, 4242, 22000\n" % (UUID0, UUID0))
    host.process(4100, "python3", in_docker(SERVER)).process(4242, "VLLM::EngineCor", in_docker(GONE))
    # Docker knows the server's container, not the engine core's, and exits 1 for it.
    host.answers["docker"] = (1, json.dumps([{"Id": SERVER, "Name": "/vllm-tiny-0", "State": {"Running": True}}]),
                              "Error: No such container: %s" % GONE)
    code, result = run(capsys, replicas=REPLICAS[:1])
    assert code == 0
    assert (result["problems"], result["orphans"]) == ([], [4242])
    assert result["notes"] == ["GPU 0 (%s) holds 21.5 GiB in pid 4242 (VLLM::EngineCor) of container %s, which no longer "
                               "runs; it is killed before vllm-tiny-0 starts." % (UUID0, GONE[:12])]
    assert host.commands[-1] == ["/usr/bin/docker", "inspect", "--type", "container", GONE, SERVER]


def test_containers_docker_does_not_answer_for_are_not_orphans(host, capsys):
    host.nvidia_smi("0, %s, 46068, 4000\n" % UUID0, "%s, 4242, 42000\n" % UUID0)
    host.process(4242, "VLLM::EngineCor", in_docker(GONE))
    host.answers["docker"] = (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
                                     "daemon running?")
    code, result = run(capsys, replicas=REPLICAS[:1])
    assert result["orphans"] == []
    assert "pid 4242 (VLLM::EngineCor, container %s) holds 41.0 GiB" % GONE[:12] in result["problems"][0]
    assert result["notes"] == [
        "Docker did not answer (docker inspect exited with 1: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?), so containers %s are named by their IDs and taken "
        "for running; no process of theirs is returned as an orphan." % GONE[:12]]


def test_process_gone_from_proc_is_nameless_and_docker_is_not_asked(host, capsys):
    host.nvidia_smi("0, %s, 46068, 30000\n" % UUID0, "%s, 777, 15000\n" % UUID0)
    code, result = run(capsys, replicas=REPLICAS[:1])
    assert result["gpus"][0]["processes"][0]["name"] is None
    assert "because pid 777 (?) holds 14.6 GiB" in result["problems"][0]
    assert [os.path.basename(command[0]) for command in host.commands] == ["nvidia-smi", "nvidia-smi"]


def test_nvml_answers_first(host, fake_nvml, monkeypatch, capsys):
    host.nvidia_smi("should not be read", "")
    monkeypatch.setattr(gpu_memory, "pynvml", fake_nvml(devices=[fake_nvml.A40]))
    # FakeNvml has no process list: NVML answers only in part, and nvidia-smi is asked.
    code, result = run(capsys, replicas=[])
    assert result["source"] == "nvidia-smi"


def test_without_nvml_and_nvidia_smi_nothing_is_checked(host, capsys):
    code, result = run(capsys)
    assert code == 0
    assert (result["source"], result["gpus"], result["problems"], result["orphans"], result["stop_first"]) == (
        "none", [], [], [], [])
    assert result["notes"] == ["Neither NVML (the Python module pynvml (PyPI package nvidia-ml-py) is not installed) nor "
                               "nvidia-smi (not found in PATH) answered, so no GPU memory was checked."]


def test_nvidia_smi_failure_and_options_off_say_why(host, capsys):
    host.answers["nvidia-smi"] = (9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", "")
    code, result = run(capsys)
    assert result["notes"][0].endswith("nor nvidia-smi (exited with 9: NVIDIA-SMI has failed because it couldn't "
                                       "communicate with the NVIDIA driver.) answered, so no GPU memory was checked.")
    code, result = run(capsys, use_nvml=False, use_nvidia_smi=False)
    assert result["notes"] == ["Neither NVML (not asked) nor nvidia-smi (not asked) answered, so no GPU memory was checked."]


@pytest.mark.parametrize("utilization", [0, 1.5])
def test_utilization_that_is_no_fraction_fails_even_with_nothing_to_check(host, capsys, utilization):
    code, result = run(capsys, utilization=utilization)
    assert (code, result["failed"]) == (1, True)
    assert result["msg"] == "gpu_memory_utilization must be a fraction above 0 and at most 1, not %r; pass the plan's value." % (
        float(utilization),)


def test_replica_without_unit_or_gpus_fails_with_one_sentence(host, capsys):
    code, result = run(capsys, replicas=[REPLICAS[0], {"index": 1, "port": 8002, "gpus": "0"}])
    assert code == 1
    assert result["msg"] == ("replicas[1] needs unit (its unit name) and gpus (a list of GPU UUIDs or indexes), as the plan's "
                             "service.replicas gives them; it has the keys gpus, index, port.")


def test_check_mode_reads_the_same(host, capsys):
    host.nvidia_smi("0, %s, 46068, 45500\n1, %s, 46068, 15000\n" % (UUID0, UUID1), "%s, 5151, 30720\n" % UUID1)
    host.process(5151, "python3")
    dummy, result = run(capsys)
    dummy, checked = run(capsys, _ansible_check_mode=True)
    assert checked == result


# The H200 host, recorded by tests/hardware/gpu_memory_check.py while pid 471 held 20 GiB with torch (and its CUDA
# context); the module ran there through NVML and through nvidia-smi alone, for one replica at utilization 0.9.
H200 = ("h200", "gpu-memory")
H200_UUID = "GPU-e9407cc8-faaf-db84-f3d6-f1a5c74161cd"
H200_SENTENCE = (
    "GPU 0 (%s) can give vllm-tiny-0 only 119.2 GiB of its 140.4 GiB where it needs 126.4 GiB (gpu_memory_utilization "
    "0.90), because pid 471 (python3) holds 20.6 GiB; stop that process, or set gpu_memory_utilization to at most 0.84."
    % H200_UUID)


def recorded(fixture_file, name):
    with open(fixture_file(*(H200 + (name,)))) as handle:
        text = handle.read()
    return json.loads(text) if name.endswith(".json") else text


@pytest.fixture
def h200(host):
    # The holder's cgroup on that host, which is no container's.
    return host.process(471, "python3", "0::/process_api/2dd109a38224c77f69c084a2a12d334e\n")


def without_invocation(result):
    return {key: value for key, value in result.items() if key != "invocation"}


def test_recorded_h200_through_nvml_names_the_process_and_its_memory(h200, fixture_file, monkeypatch, capsys):
    nvml = FakeNvmlReplay.from_file(fixture_file(*(H200 + ("nvml.json",))))
    monkeypatch.setattr(gpu_memory, "pynvml", nvml)
    code, result = run(capsys, replicas=[{"unit": "vllm-tiny-0", "gpus": [H200_UUID]}])
    assert without_invocation(result) == without_invocation(recorded(fixture_file, "module-nvml.json"))
    assert result["problems"] == [H200_SENTENCE]
    assert result["gpus"][0]["processes"] == [
        {"pid": 471, "used_mib": 21090, "name": "python3", "container": None, "container_running": False}]
    assert (result["gpus"][0]["total_mib"], result["gpus"][0]["free_mib"]) == (143771, 122057)
    assert nvml.calls == ["nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetUUID",
                          "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetComputeRunningProcesses", "nvmlShutdown"]
    assert h200.commands == []


def test_recorded_h200_through_nvidia_smi_gives_what_the_module_gave_there(h200, fixture_file, capsys):
    h200.nvidia_smi(recorded(fixture_file, "nvidia-smi-gpus.csv"), recorded(fixture_file, "nvidia-smi-compute-apps.csv"))
    code, result = run(capsys, replicas=[{"unit": "vllm-tiny-0", "gpus": [H200_UUID]}], use_nvml=False)
    assert without_invocation(result) == without_invocation(recorded(fixture_file, "module-nvidia-smi.json"))
    # nvidia-smi read one MiB more free a moment later; the sentence is the same.
    assert (result["source"], result["gpus"][0]["free_mib"], result["problems"]) == ("nvidia-smi", 122058, [H200_SENTENCE])


def test_recorded_h200_replica_at_the_utilization_offered_fits(h200, fixture_file, monkeypatch, capsys):
    monkeypatch.setattr(gpu_memory, "pynvml", FakeNvmlReplay.from_file(fixture_file(*(H200 + ("nvml.json",)))))
    code, result = run(capsys, replicas=[{"unit": "vllm-tiny-0", "gpus": [H200_UUID]}], utilization=0.84)
    assert result["problems"] == []
