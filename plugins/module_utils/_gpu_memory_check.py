# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Before the replicas start: does each of their GPUs have the memory vLLM will ask for, and what holds the rest.

vLLM refuses to start when a GPU's free memory is below its total memory times gpu_memory_utilization (vllm-facts
section 8), and only after the image has started and the weights have begun to load. Asking NVML first turns that into
one sentence per process in the way, before any replica is stopped.

What holds memory on a replica's GPU is one of four kinds:
- the replica's own container, which the rollout replaces: its memory is the replica's to take again;
- a process whose container no longer runs, such as a vLLM engine core that outlived its server (vllm issue #55510):
  an orphan, to be killed before the start;
- another container of this deployment (another replica, or a unit the plan retires): stopped first when the replica
  needs its memory, because the rollout would stop it only after this replica's start, or never;
- anything else: foreign, and a refusal when the replica would not fit beside it.

The containers of this deployment are named after their units (`docker run --name <unit>`), which is how they are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

_MIB_PER_GIB = 1024.0

# Below this, a lower gpu_memory_utilization leaves too little memory to be worth offering.
_LEAST_USEFUL_UTILIZATION = 0.1


@dataclass(frozen=True)
class MemoryCheck:
    """problems: one sentence per process (or GPU) that keeps a replica from its memory; empty when all fit.
    orphans: pids to kill before the replicas start. stop_first: units of this deployment to stop before the replicas
    start. notes: one sentence per orphan and per unit stopped first, for the operator."""

    problems: Tuple[str, ...]
    orphans: Tuple[int, ...]
    stop_first: Tuple[str, ...]
    notes: Tuple[str, ...]

    @property
    def ok(self):
        return not self.problems


@dataclass(frozen=True)
class _Process:
    pid: int
    used_mib: int
    name: str
    container: Optional[str]
    container_running: bool

    @classmethod
    def from_fact(cls, fact):
        container = fact.get("container") or None
        return cls(pid=int(fact["pid"]), used_mib=int(fact.get("used_mib") or 0), name=fact.get("name") or "?",
                   container=container, container_running=bool(container and fact.get("container_running", True)))

    @property
    def orphaned(self):
        return self.container is not None and not self.container_running

    @property
    def label(self):
        where = ", container %s" % self.container if self.container else ""
        return "pid %d (%s%s)" % (self.pid, self.name, where)


@dataclass(frozen=True)
class _Gpu:
    index: int
    uuid: Optional[str]
    total_mib: int
    free_mib: int
    processes: Tuple[_Process, ...]

    @classmethod
    def from_fact(cls, fact):
        return cls(index=int(fact["index"]), uuid=fact.get("uuid") or None, total_mib=int(fact["total_mib"]),
                   free_mib=int(fact["free_mib"]), processes=tuple(_Process.from_fact(process) for process in fact.get("processes") or ()))

    @property
    def label(self):
        return "GPU %d (%s)" % (self.index, self.uuid) if self.uuid else "GPU %d" % self.index


def _named(gpus, device):
    """The GPU a replica's device identifier names: a GPU or MIG UUID, or an index in a plan made before UUIDs were known.
    UUIDs first, because MIG instances share their parent GPU's index."""
    by_uuid = [gpu for gpu in gpus if gpu.uuid == device]
    by_index = [gpu for gpu in gpus if str(gpu.index) == device]
    return (by_uuid or by_index or [None])[0]


def _gib(mib):
    return "%.1f GiB" % (mib / _MIB_PER_GIB)


def _utilization(value):
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = 0.0
    if not 0 < fraction <= 1:
        raise ValueError("gpu_memory_utilization must be a fraction above 0 and at most 1, not %r; pass the plan's value." % (value,))
    return fraction


def check_gpu_memory(gpus, replicas, gpu_memory_utilization, retiring=()):
    """The MemoryCheck of the replicas on the GPUs NVML reports.

    gpus: per GPU (or MIG instance) index, uuid, total_mib, free_mib and processes, each with pid, used_mib, name,
    container (its name, or its ID when Docker no longer knows it; None outside containers) and container_running.
    replicas: the plan's service replicas (unit, gpus). retiring: units of this deployment the plan no longer wants.
    Raises ValueError for a gpu_memory_utilization that is no fraction.
    """
    utilization = _utilization(gpu_memory_utilization)
    known = [_Gpu.from_fact(fact) for fact in gpus]
    ours = set(replica["unit"] for replica in replicas) | set(retiring)
    found = _Findings()
    for replica in replicas:
        for device in replica["gpus"]:
            gpu = _named(known, str(device))
            if gpu is None:
                found.problems.append("Replica %s is planned on GPU %s, which NVML does not list on this host; gather facts "
                                      "again and plan anew." % (replica["unit"], device))
                continue
            _check_gpu(gpu, replica["unit"], ours, utilization, found)
    return found.result()


class _Findings:
    """What the GPUs show so far; a unit or pid found on two GPUs of a tensor-parallel group is listed once."""

    def __init__(self):
        self.problems, self.orphans, self.stop_first, self.notes = [], [], [], []

    def orphan(self, gpu, process, unit):
        if process.pid not in self.orphans:
            self.orphans.append(process.pid)
        self.notes.append("%s holds %s in pid %d (%s) of container %s, which no longer runs; it is killed before %s starts."
                          % (gpu.label, _gib(process.used_mib), process.pid, process.name, process.container, unit))

    def stop(self, gpu, process, unit):
        if process.container not in self.stop_first:
            self.stop_first.append(process.container)
        self.notes.append("%s of this deployment holds %s on %s, which %s needs; it is stopped before the replicas start."
                          % (process.container, _gib(process.used_mib), gpu.label, unit))

    def result(self):
        return MemoryCheck(tuple(self.problems), tuple(self.orphans), tuple(self.stop_first), tuple(self.notes))


def _check_gpu(gpu, unit, ours, utilization, found):
    """Add to found what the replica `unit` needs done on one of its GPUs.

    vLLM measures free memory after creating its own CUDA context, so a GPU a few hundred MiB above the mark may still
    fail at start. The check refuses only what cannot fit; vLLM's own message, which the journal shows, covers the rest.
    """
    needed = gpu.total_mib * utilization
    available = gpu.free_mib
    others, foreign = [], []
    for process in gpu.processes:
        if process.orphaned:
            found.orphan(gpu, process, unit)
            available += process.used_mib
        elif process.container == unit:
            available += process.used_mib
        elif process.container in ours:
            others.append(process)
        else:
            foreign.append(process)
    if available >= needed:
        return
    for process in others:
        found.stop(gpu, process, unit)
        available += process.used_mib
    if available < needed:
        found.problems.extend(_shortage(gpu, unit, utilization, available, foreign))


def _shortage(gpu, unit, utilization, available, foreign):
    """One sentence per foreign process on a GPU too full for the replica, or one for the GPU when NVML names none."""
    fits = int(available / gpu.total_mib * 100) / 100.0
    lower = ", or set gpu_memory_utilization to at most %.2f" % fits if fits >= _LEAST_USEFUL_UTILIZATION else ""
    head = "%s can give %s only %s of its %s where it needs %s (gpu_memory_utilization %.2f)" % (
        gpu.label, unit, _gib(available), _gib(gpu.total_mib), _gib(gpu.total_mib * utilization), utilization)
    if not foreign:
        return ["%s, and NVML names no process that holds the rest; find what uses the GPU with nvidia-smi%s." % (head, lower)]
    return ["%s, because %s holds %s; stop that process%s." % (head, process.label, _gib(process.used_mib), lower)
            for process in foreign]
