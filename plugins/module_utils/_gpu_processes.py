# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What holds the memory of each GPU, as the memory preflight (_gpu_memory_check) reads it: free and total memory and the
compute processes per GPU, from NVML or nvidia-smi, and for each process the Docker container it runs in, from its
cgroup and `docker inspect`. Pure functions: the module gpu_memory passes the pynvml module object and the texts it read.
"""

from __future__ import annotations

import csv
import json
import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import (
    ask_nvml,
    call_nvml,
    nvml_text,
    smi_value,
)

_MIB = 1024 * 1024

NVIDIA_SMI_GPU_ARGS = ("--query-gpu=index,uuid,memory.total,memory.free", "--format=csv,noheader,nounits")
NVIDIA_SMI_APP_ARGS = ("--query-compute-apps=gpu_uuid,pid,used_memory", "--format=csv,noheader,nounits")

# --type container: an image or volume whose ID happens to match is no answer.
DOCKER_INSPECT_ARGS = ("inspect", "--type", "container")

# The cgroup path of a process in a Docker container: .../docker-<id>.scope with the systemd cgroup driver (the default on
# cgroup v2 hosts), /docker/<id> with cgroupfs. The first match is the container the host's Docker runs, also for a
# container started inside another.
_DOCKER_CGROUP = re.compile(r"/docker-([0-9a-f]{64})\.scope(?:/|$)|/docker/([0-9a-f]{64})(?:/|$)")

# Docker's short form of a container ID, as `docker ps` shows it.
_SHORT_ID = 12


def query_nvml_memory(pynvml):
    """(gpus, None) as NVML reports them, or (None, why NVML did not answer).

    gpus: per GPU index, uuid, total_mib, free_mib and processes (pid, used_mib; a process whose size NVML does not
    know holds 0). A GPU NVML answers only in part makes the whole answer none, so that the caller asks nvidia-smi.
    """
    result = ask_nvml(pynvml, {"available": False, "error": None, "gpus": [], "device_errors": []}, _ask_memory)
    if not result["available"]:
        return None, result["error"]
    if result["device_errors"]:
        return None, "; ".join(result["device_errors"])
    return result["gpus"], None


def _ask_memory(pynvml, errors, result):
    count = call_nvml(result, errors, "device count", pynvml, "nvmlDeviceGetCount") or 0
    for index in range(int(count)):
        handle = call_nvml(result, errors, "GPU %d handle" % index, pynvml, "nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            continue
        uuid = nvml_text(call_nvml(result, errors, "GPU %d UUID" % index, pynvml, "nvmlDeviceGetUUID", handle))
        memory = call_nvml(result, errors, "GPU %d memory" % index, pynvml, "nvmlDeviceGetMemoryInfo", handle)
        processes = call_nvml(result, errors, "GPU %d processes" % index, pynvml, "nvmlDeviceGetComputeRunningProcesses", handle)
        if memory is None or processes is None:
            continue
        result["gpus"].append({
            "index": index,
            "uuid": uuid,
            "total_mib": int(memory.total) // _MIB,
            "free_mib": int(memory.free) // _MIB,
            "processes": [{"pid": int(process.pid), "used_mib": int(process.usedGpuMemory or 0) // _MIB} for process in processes],
        })


def _csv_rows(text, fields):
    """The rows of nvidia-smi's CSV with `fields` fields, each field through smi_value; other lines (a message such as
    "No running processes found") are skipped."""
    rows = csv.reader((text or "").splitlines(), skipinitialspace=True)
    return [[smi_value(field) for field in row] for row in rows if len(row) == fields]


def _mib(text):
    return int(text) if text is not None and text.isdigit() else None


def parse_nvidia_smi_memory(gpu_csv, app_csv):
    """The gpus of query_nvml_memory from the outputs of nvidia-smi with NVIDIA_SMI_GPU_ARGS and NVIDIA_SMI_APP_ARGS.

    A GPU whose memory nvidia-smi does not give is left out, so that a replica planned on it is refused; a process whose
    memory it does not give ("[N/A]") holds 0.
    """
    processes = {}
    for uuid, pid, used in _csv_rows(app_csv, 3):
        if uuid is not None and _mib(pid) is not None:
            processes.setdefault(uuid, []).append({"pid": int(pid), "used_mib": _mib(used) or 0})
    gpus = []
    for index, uuid, total, free in _csv_rows(gpu_csv, 4):
        if None in (_mib(index), _mib(total), _mib(free)):
            continue
        gpus.append({"index": int(index), "uuid": uuid, "total_mib": int(total), "free_mib": int(free),
                     "processes": processes.get(uuid, [])})
    return gpus


def gpu_pids(gpus):
    """Every pid that holds memory on one of the gpus, once each, sorted."""
    return sorted(set(process["pid"] for gpu in gpus for process in gpu["processes"]))


def container_id(cgroup_text):
    """The ID of the Docker container a process runs in, from its /proc/<pid>/cgroup; None outside Docker's containers.

    Each line is hierarchy-ID:controllers:path (cgroups(7)); cgroup v2 has the one line 0::path.
    """
    for line in (cgroup_text or "").splitlines():
        match = _DOCKER_CGROUP.search(line.split(":", 2)[-1])
        if match:
            return match.group(1) or match.group(2)
    return None


def containers_from_inspect(ids, stdout):
    """Per container ID the container's name and whether it runs, from what `docker inspect` of those IDs printed.

    Docker prints a JSON list of the containers it knows (and exits 1 when it knows not all): an ID missing from the
    list names a container that is gone, and so does not run; it keeps its short ID as its name. None when stdout is no
    such list (Docker missing, its daemon down): then nobody knows whether the containers run.
    """
    try:
        answer = json.loads(stdout or "")
    except ValueError:
        return None
    if not isinstance(answer, list):
        return None
    known = dict((item.get("Id"), item) for item in answer if isinstance(item, dict))
    containers = {}
    for container in ids:
        item = known.get(container)
        if item is None:
            containers[container] = {"container": container[:_SHORT_ID], "container_running": False}
            continue
        containers[container] = {"container": (item.get("Name") or container[:_SHORT_ID]).lstrip("/"),
                                 "container_running": bool((item.get("State") or {}).get("Running"))}
    return containers


def with_owners(gpus, names, container_ids, containers):
    """The gpus with each process's name, container and container_running, as check_gpu_memory reads them.

    names: pid -> its name (/proc/<pid>/comm) or None; container_ids: pid -> container_id() of its cgroup;
    containers: containers_from_inspect() of those IDs, or None when Docker did not answer. A container Docker did not
    tell about keeps its short ID and counts as running: only a container Docker says is gone makes an orphan to kill.
    """
    owned = []
    for gpu in gpus:
        processes = []
        for process in gpu["processes"]:
            container = container_ids.get(process["pid"])
            owner = {"container": None, "container_running": False}
            if container is not None:
                owner = (containers or {}).get(container) or {"container": container[:_SHORT_ID], "container_running": True}
            processes.append(dict(process, name=names.get(process["pid"]), **owner))
        owned.append(dict(gpu, processes=processes))
    return owned
