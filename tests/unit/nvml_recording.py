# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""NVML's raw answers on a real GPU host, recorded, and FakeNvmlReplay, the test double of the
pynvml module that answers from such a recording.

tests/hardware/record.py writes the recording (nvml.json) on the GPU host; unit tests hand
FakeNvmlReplay to the real query_nvml, so the parsing of what a real driver said runs on machines
without one. No pytest here: record.py imports this module on hosts that lack it.

A recording holds, for every pynvml call query_nvml and query_nvml_memory (_gpu_processes) make, one answer:
  {"returned": VALUE}, or
  {"raised": {"error": "NVMLError_NotSupported", "value": 3, "text": "Not Supported"}}, or
  {"missing": "module 'pynvml' has no attribute ..."} when the binding lacks the function.
VALUE is plain JSON for numbers, text and None; the rest is tagged, so that the double gives back
the types pynvml gave: {"bytes": "580.159.04"} (older bindings), {"tuple": [9, 0]},
{"struct": "c_nvmlMemory_t", "fields": {"total": 150754820096, ...}}, {"handle": 0}; the plain
objects pynvml makes of some structures (nvmlFriendlyObject, one per process of
nvmlDeviceGetComputeRunningProcesses) are recorded as structs too.
"""

from __future__ import annotations

import ctypes
import json

FORMAT = 1

# The calls of _gpu_detect.query_nvml and _query_nvml_device, and of _gpu_processes.query_nvml_memory.
# A call the code makes that a recording lacks raises NotRecorded, which neither catches: the test
# fails and says which call to add here and to record again. Recordings made before a call was
# added here lack it, and serve the code that does not make it.
SYSTEM_CALLS = ("nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion", "nvmlDeviceGetCount")
DEVICE_CALLS = ("nvmlDeviceGetPciInfo", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetCudaComputeCapability",
                "nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetComputeRunningProcesses")
HANDLE_CALL = "nvmlDeviceGetHandleByIndex"


class NotRecorded(LookupError):
    """The code asked the double something the recording does not hold."""


# Recording -----------------------------------------------------------------------------------

def encode(value):
    """A pynvml return value as JSON (see the module docstring); TypeError for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.decode("utf-8", "replace")}
    if isinstance(value, tuple):
        return {"tuple": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, ctypes.Structure):
        fields = [field[0] for field in type(value)._fields_]
        return {"struct": type(value).__name__, "fields": dict((name, encode(getattr(value, name))) for name in fields)}
    if isinstance(value, ctypes.Array):
        return [encode(item) for item in value]
    if type(value).__name__ == "nvmlFriendlyObject":
        # pynvml copies each process's ctypes structure into one of these, usedGpuMemory None where NVML has no value.
        return {"struct": "nvmlFriendlyObject", "fields": dict((name, encode(item)) for name, item in vars(value).items())}
    raise TypeError("cannot record a %s returned by pynvml: %r" % (type(value).__name__, value))


def _caught(pynvml):
    # What query_nvml catches; anything else would break the module too, so it breaks the recording.
    nvml_error = getattr(pynvml, "NVMLError", None)
    return (nvml_error, AttributeError, OSError) if isinstance(nvml_error, type) else (AttributeError, OSError)


def _answer(pynvml, name, *args):
    try:
        function = getattr(pynvml, name)
    except AttributeError as exc:
        return {"missing": str(exc)}
    try:
        value = function(*args)
    except _caught(pynvml) as exc:
        return {"raised": {"error": type(exc).__name__, "value": getattr(exc, "value", None), "text": str(exc)}}
    return {"returned": value}


def _encoded(answer):
    if "returned" in answer:
        return {"returned": encode(answer["returned"])}
    return answer


def _record_device(pynvml, index):
    handle = _answer(pynvml, HANDLE_CALL, index)
    device = {HANDLE_CALL: {"returned": {"handle": index}} if "returned" in handle else handle}
    if "returned" in handle:
        for name in DEVICE_CALLS:
            device[name] = _encoded(_answer(pynvml, name, handle["returned"]))
    return device


def record_nvml(pynvml):
    """Ask pynvml every call query_nvml and query_nvml_memory make, the per-device ones even after one failed.

    Returns the recording as a JSON-ready dict; nvmlShutdown runs whenever nvmlInit succeeded.
    """
    recording = {"format": FORMAT, "nvmlInit": _encoded(_answer(pynvml, "nvmlInit")), "system": {}, "devices": []}
    if "returned" not in recording["nvmlInit"]:
        return recording
    try:
        for name in SYSTEM_CALLS:
            recording["system"][name] = _encoded(_answer(pynvml, name))
        count = recording["system"]["nvmlDeviceGetCount"].get("returned") or 0
        for index in range(int(count)):
            recording["devices"].append(_record_device(pynvml, index))
    finally:
        recording["nvmlShutdown"] = _encoded(_answer(pynvml, "nvmlShutdown"))
    return recording


# Replay --------------------------------------------------------------------------------------

class ReplayedNVMLError(Exception):
    """Stands in for pynvml.NVMLError: NVML's code in ``value``, str() is the text recorded."""

    def __init__(self, value, text, error="NVMLError"):
        super().__init__(value)
        self.value = value
        self.text = text
        self.error = error

    def __str__(self):
        return self.text


class ReplayedStruct:
    """A recorded ctypes structure: its fields as attributes."""

    def __init__(self, name, fields):
        self._name = name
        self.__dict__.update(fields)

    def __repr__(self):
        fields = ", ".join("%s=%r" % item for item in sorted(self.__dict__.items()) if item[0] != "_name")
        return "%s(%s)" % (self._name, fields)


class ReplayedHandle:
    """Stands in for the device handle of the GPU at a recorded index."""

    def __init__(self, index):
        self.index = index

    def __repr__(self):
        return "ReplayedHandle(%d)" % self.index


def decode(value):
    """The Python value encode() was given, with structs and handles as stand-ins."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "bytes" in value:
        return value["bytes"].encode("utf-8")
    if "tuple" in value:
        return tuple(decode(item) for item in value["tuple"])
    if "struct" in value:
        return ReplayedStruct(value["struct"], dict((name, decode(item)) for name, item in value["fields"].items()))
    if "handle" in value:
        return ReplayedHandle(value["handle"])
    raise ValueError("not a recorded pynvml value: %r" % (value,))


def _raise(raised):
    if raised["error"] == "AttributeError":
        raise AttributeError(raised["text"])
    if raised["error"] == "OSError":
        raise OSError(raised["text"])
    raise ReplayedNVMLError(raised["value"], raised["text"], raised["error"])


class FakeNvmlReplay:
    """Test double of the pynvml module that answers every call from a recording of a real host.

    Only the calls the recording holds exist: one it lacks raises NotRecorded (never caught by
    query_nvml), one the recorded binding lacked raises AttributeError as pynvml would. ``calls``
    lists the calls in the order they were made.
    """

    NVMLError = ReplayedNVMLError

    def __init__(self, recording):
        if recording.get("format") != FORMAT:
            raise ValueError("NVML recording format %r, expected %d" % (recording.get("format"), FORMAT))
        self.recording = recording
        self.calls = []

    @classmethod
    def from_file(cls, path):
        with open(path) as handle:
            return cls(json.load(handle))

    def _answers(self, name):
        if name in ("nvmlInit", "nvmlShutdown"):
            return self.recording.get(name)
        if name in self.recording["system"]:
            return self.recording["system"][name]
        if name == HANDLE_CALL or name in DEVICE_CALLS:
            # A function the binding lacks is missing for every GPU; pynvml fails at the lookup.
            missing = [device[name] for device in self.recording["devices"] if "missing" in device.get(name, {})]
            return missing[0] if missing else "per device"
        return None

    def __getattr__(self, name):
        if not name.startswith("nvml"):
            raise AttributeError(name)
        answer = self._answers(name)
        if answer is None:
            raise NotRecorded("the NVML recording holds no answer to %s" % name)
        if isinstance(answer, dict) and "missing" in answer:
            raise AttributeError(answer["missing"])

        def call(*args, **kwargs):
            self.calls.append(name)
            return self._reply(name, args, kwargs)

        return call

    def _reply(self, name, args, kwargs):
        if kwargs:
            raise NotRecorded("%s was recorded without keyword arguments, asked with %r" % (name, kwargs))
        answer = self._answers(name)
        if answer == "per device":
            answer = self._device_answer(name, args)
        elif args:
            raise NotRecorded("%s was recorded without arguments, asked with %r" % (name, args))
        if "raised" in answer:
            _raise(answer["raised"])
        return decode(answer["returned"])

    def _device_answer(self, name, args):
        if len(args) != 1:
            raise NotRecorded("%s was recorded with one argument, asked with %r" % (name, args))
        index = args[0] if name == HANDLE_CALL else getattr(args[0], "index", None)
        if name != HANDLE_CALL and not isinstance(args[0], ReplayedHandle):
            raise NotRecorded("%s was asked with %r, not with a handle this double gave" % (name, args[0]))
        devices = self.recording["devices"]
        if not isinstance(index, int) or not 0 <= index < len(devices) or name not in devices[index]:
            raise NotRecorded("the NVML recording holds no answer to %s for GPU %r" % (name, index))
        return devices[index][name]
