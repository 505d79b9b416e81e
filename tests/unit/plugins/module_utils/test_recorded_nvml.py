# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The NVML recording and its replay (tests/unit/nvml_recording.py).

A recording is only worth replaying if query_nvml reads the same from FakeNvmlReplay as from the
pynvml that was recorded. The stand-in host below answers with pynvml's own ctypes structures and
error classes, so the recorder sees the types a real driver gives.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect, _gpu_processes

from nvml_recording import DEVICE_CALLS, FakeNvmlReplay, NotRecorded, ReplayedNVMLError, record_nvml

pynvml = pytest.importorskip("pynvml")


class CtypesHost:
    """Answers as pynvml does on a host with two GPUs: ctypes structs, bytes or str, NVMLError."""

    NVMLError = pynvml.NVMLError

    def __init__(self, init_error=None, uuid_error=None, handle_error=None, text=bytes, processes_error=None):
        self.init_error = init_error
        self.uuid_error = uuid_error
        self.handle_error = handle_error
        self.processes_error = processes_error
        self.text = text
        self.shutdowns = 0

    def _text(self, value):
        return value.encode() if self.text is bytes else value

    def nvmlInit(self):
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        return self._text("580.159.04")

    def nvmlSystemGetCudaDriverVersion(self):
        return 13000

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        if index == 1 and self.handle_error is not None:
            raise pynvml.NVMLError(self.handle_error)
        return pynvml.c_nvmlDevice_t()

    def nvmlDeviceGetPciInfo(self, handle):
        info = pynvml.nvmlPciInfo_t()
        info.busId = "00000000:00:06.0"
        info.pciDeviceId = 0x233510DE
        info.pciSubSystemId = 0x18F810DE
        info.domain, info.bus, info.device = 0, 0, 6
        return info

    def nvmlDeviceGetMemoryInfo(self, handle):
        memory = pynvml.c_nvmlMemory_t()
        memory.total, memory.free, memory.used = 150754820096, 150199664640, 555155456
        return memory

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return (9, 0)

    def nvmlDeviceGetName(self, handle):
        return self._text("NVIDIA H200")

    def nvmlDeviceGetUUID(self, handle):
        if self.uuid_error is not None:
            raise pynvml.NVMLError(self.uuid_error)
        return self._text("GPU-00000000-1111-2222-3333-444444444444")

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        # As pynvml gives them: its own copy of each structure, usedGpuMemory None where NVML has no value.
        if self.processes_error is not None:
            raise pynvml.NVMLError(self.processes_error)
        processes = []
        for pid, used in ((4242, 21474836480), (4343, pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value)):
            process = pynvml.nvmlStructToFriendlyObject(pynvml.c_nvmlProcessInfo_v2_t(pid=pid, usedGpuMemory=used))
            if process.usedGpuMemory == pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value:
                process.usedGpuMemory = None
            processes.append(process)
        return processes


def replay(host):
    # Through JSON, as a recording travels from the GPU host to the fixtures.
    return FakeNvmlReplay(json.loads(json.dumps(record_nvml(host))))


@pytest.mark.parametrize("host", [
    CtypesHost(),
    CtypesHost(text=str),
    CtypesHost(uuid_error=pynvml.NVML_ERROR_NOT_SUPPORTED),
    CtypesHost(handle_error=pynvml.NVML_ERROR_GPU_IS_LOST),
    CtypesHost(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED),
], ids=["bytes", "str", "uuid-not-supported", "gpu-lost", "driver-not-loaded"])
def test_query_nvml_reads_the_replay_as_it_read_the_host(host):
    assert _gpu_detect.query_nvml(replay(host)) == _gpu_detect.query_nvml(host)


@pytest.mark.parametrize("host", [
    CtypesHost(),
    CtypesHost(processes_error=pynvml.NVML_ERROR_NOT_SUPPORTED),
    CtypesHost(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED),
], ids=["processes", "processes-not-supported", "driver-not-loaded"])
def test_query_nvml_memory_reads_the_replay_as_it_read_the_host(host):
    assert _gpu_processes.query_nvml_memory(replay(host)) == _gpu_processes.query_nvml_memory(host)


def test_nvml_memory_of_processes_nvml_has_no_size_for_is_none_and_a_refused_list_is_no_answer():
    gpus, error = _gpu_processes.query_nvml_memory(replay(CtypesHost()))
    assert (gpus[0]["processes"], error) == ([{"pid": 4242, "used_mib": 20480}, {"pid": 4343, "used_mib": 0}], None)
    refused = CtypesHost(processes_error=pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert _gpu_processes.query_nvml_memory(replay(refused)) == (
        None, "GPU 0 processes: Not Supported; GPU 1 processes: Not Supported")


def test_recording_keeps_the_processes_pynvml_made_of_their_structures():
    processes = record_nvml(CtypesHost())["devices"][0]["nvmlDeviceGetComputeRunningProcesses"]
    assert processes == {"returned": [
        {"struct": "nvmlFriendlyObject", "fields": {"pid": 4242, "usedGpuMemory": 21474836480, "gpuInstanceId": 0,
                                                    "computeInstanceId": 0}},
        {"struct": "nvmlFriendlyObject", "fields": {"pid": 4343, "usedGpuMemory": None, "gpuInstanceId": 0,
                                                    "computeInstanceId": 0}}]}


def test_recording_keeps_types_values_and_errors():
    recording = record_nvml(CtypesHost(uuid_error=pynvml.NVML_ERROR_NOT_SUPPORTED))
    device = recording["devices"][0]
    assert recording["system"]["nvmlSystemGetDriverVersion"] == {"returned": {"bytes": "580.159.04"}}
    assert device["nvmlDeviceGetHandleByIndex"] == {"returned": {"handle": 0}}
    assert device["nvmlDeviceGetCudaComputeCapability"] == {"returned": {"tuple": [9, 0]}}
    assert device["nvmlDeviceGetMemoryInfo"] == {"returned": {"struct": "c_nvmlMemory_t", "fields": {
        "total": 150754820096, "free": 150199664640, "used": 555155456}}}
    assert device["nvmlDeviceGetPciInfo"]["returned"]["fields"]["busId"] == "00000000:00:06.0"
    assert device["nvmlDeviceGetUUID"] == {"raised": {
        "error": "NVMLError_NotSupported", "value": pynvml.NVML_ERROR_NOT_SUPPORTED, "text": "Not Supported"}}
    assert "nvmlShutdown" in recording


def test_device_calls_are_recorded_after_one_fails():
    # query_nvml stops at a failed PCI query; the recording keeps the rest for later code.
    class NoPci(CtypesHost):
        def nvmlDeviceGetPciInfo(self, handle):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    recording = record_nvml(NoPci())
    assert sorted(recording["devices"][0]) == sorted(DEVICE_CALLS + ("nvmlDeviceGetHandleByIndex",))


def test_failed_init_records_no_shutdown_and_replays_the_error():
    double = replay(CtypesHost(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    result = _gpu_detect.query_nvml(double)
    assert (result["available"], result["error"]) == (False, "nvmlInit failed: NVML Shared Library Not Found")
    assert double.calls == ["nvmlInit"]


def test_replayed_errors_are_the_doubles_nvml_error():
    double = replay(CtypesHost(uuid_error=pynvml.NVML_ERROR_NOT_SUPPORTED))
    double.nvmlInit()
    handle = double.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(ReplayedNVMLError) as error:
        double.nvmlDeviceGetUUID(handle)
    assert (error.value.value, str(error.value)) == (pynvml.NVML_ERROR_NOT_SUPPORTED, "Not Supported")


def test_a_function_the_binding_lacked_is_missing_from_the_double():
    class OldBinding(CtypesHost):
        nvmlSystemGetCudaDriverVersion = property(lambda self: self.no_such_function)

    double = replay(OldBinding())
    assert "missing" in double.recording["system"]["nvmlSystemGetCudaDriverVersion"]
    with pytest.raises(AttributeError):
        double.nvmlSystemGetCudaDriverVersion


class LacksCudaDriverVersion(CtypesHost):
    nvmlSystemGetCudaDriverVersion = property(lambda self: self.no_such_function)


class LacksComputeCapability(CtypesHost):
    nvmlDeviceGetCudaComputeCapability = property(lambda self: self.no_such_function)


@pytest.mark.parametrize("host, field", [
    (LacksCudaDriverVersion(), "CUDA driver version"),
    (LacksComputeCapability(), "GPU 0 compute capability"),
], ids=["system-function", "device-function"])
def test_a_function_the_binding_lacks_costs_only_its_field(host, field):
    double = replay(host)
    result = _gpu_detect.query_nvml(double)
    assert result == _gpu_detect.query_nvml(host)
    assert (result["available"], result["driver_version"], len(result["gpus"])) == (True, "580.159.04", 2)
    assert result["device_errors"][0].startswith(field + ": ")
    assert "no_such_function" in result["device_errors"][0]
    assert double.calls[-1] == "nvmlShutdown"


def test_a_call_the_recording_lacks_fails_the_test_instead_of_being_caught():
    recording = record_nvml(CtypesHost())
    del recording["devices"][0]["nvmlDeviceGetName"]
    with pytest.raises(NotRecorded, match="nvmlDeviceGetName for GPU 0"):
        _gpu_detect.query_nvml(FakeNvmlReplay(recording))
    with pytest.raises(NotRecorded, match="nvmlDeviceGetPowerUsage"):
        FakeNvmlReplay(recording).nvmlDeviceGetPowerUsage


def test_device_calls_need_a_handle_of_the_double():
    double = replay(CtypesHost())
    with pytest.raises(NotRecorded, match="not with a handle"):
        double.nvmlDeviceGetName(0)
    with pytest.raises(NotRecorded, match="for GPU 5"):
        double.nvmlDeviceGetHandleByIndex(5)
