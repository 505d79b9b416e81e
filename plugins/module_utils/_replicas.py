# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Which GPUs, or which CPU cores, each vLLM replica of a host gets: data in, placements out.

A replica is one vLLM server over a group of tensor_parallel_size GPUs; a router spreads the requests over the
replicas. A group never mixes GPU models, whose memory and speed differ, and never spans two boards of a multi-die
card such as the Tesla K80, whose dies talk through the board's own PCIe switch. Every refusal is one sentence naming
the value and what to do; the host plan names the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import dies_per_board

# vLLM's CPU backend binds its OpenMP threads to these cores (vllm-facts section 9: CPU backend).
CPU_BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"


class ReplicaError(ValueError):
    """Replicas that cannot be placed on this host; the text is one sentence naming the value and what to do."""


@dataclass(frozen=True)
class Placement:
    """Per replica its GPUs (device identifiers for Docker's --gpus device=...), its CPU cores and the environment it
    adds; and what the plan warns about."""

    replicas: Tuple[dict, ...]
    warnings: Tuple[str, ...]


@dataclass(frozen=True)
class _Gpu:
    """One entry of the gpufleet_gpus fact, as far as placing replicas goes."""

    index: int
    bus: str
    name: str
    model: str
    uuid: Optional[str]
    bridges: Optional[Tuple[str, ...]]
    dies_per_board: int

    @classmethod
    def from_fact(cls, index, fact):
        bridges = fact.get("pci_bridges")
        return cls(
            index=index,
            bus=fact.get("pci_bus_id") or "#%d" % index,
            name=fact.get("name") or "GPU",
            model=fact.get("pci_device_id") or fact.get("name") or "GPU",
            uuid=fact.get("uuid") or None,
            bridges=tuple(bridges) if bridges is not None else None,
            dies_per_board=dies_per_board(fact.get("pci_device_id")),
        )

    @property
    def label(self):
        return "GPU %d (%s at %s)" % (self.index, self.name, self.bus)

    @property
    def topology_key(self):
        # GPUs behind one PCIe switch share the start of their bridge chain: sorted by it, they stay neighbours.
        return (self.bridges or (), self.bus)

    @property
    def board(self):
        """The upstream port of the board's switch, the second to last bridge; None where the chain does not show one."""
        if self.bridges is None or len(self.bridges) < 2:
            return None
        return self.bridges[-2]


def in_bus_order(facts):
    """GPU facts in PCI bus order, which is how NVML numbers them."""
    return sorted(facts, key=lambda fact: fact.get("pci_bus_id") or "")


def _gpus(facts):
    return [_Gpu.from_fact(index, fact) for index, fact in enumerate(in_bus_order(facts))]


def _chunks(items, size):
    return [items[start:start + size] for start in range(0, len(items), size)]


def _pools(gpus):
    """The pools of GPUs that one group may draw from, in topology order, and one GPU of each multi-die model whose
    boards the topology does not show."""
    models = {}
    for gpu in sorted(gpus, key=lambda gpu: gpu.topology_key):
        models.setdefault(gpu.model, []).append(gpu)
    pools, unknown_boards = [], []
    for members in models.values():
        per_board = members[0].dies_per_board
        if per_board == 1:
            pools.append(members)
        elif all(gpu.board for gpu in members):
            boards = {}
            for gpu in members:
                boards.setdefault(gpu.board, []).append(gpu)
            # Never more dies than a board carries, even where more share one upstream port (a virtual machine's port).
            pools.extend(chunk for board in boards.values() for chunk in _chunks(board, per_board))
        else:
            # A board's switch gives its dies consecutive bus numbers, so bus order pairs them as the boards do.
            pools.extend(_chunks(sorted(members, key=lambda gpu: gpu.bus), per_board))
            unknown_boards.append(members[0])
    return sorted(pools, key=lambda pool: pool[0].topology_key), unknown_boards


def _largest(pools):
    return max([len(pool) for pool in pools] or [0])


def largest_group(facts):
    """The most GPUs of the gpufleet_gpus fact that one tensor-parallel group may join; 0 without GPUs."""
    return _largest(_pools(_gpus(facts))[0])


def tensor_parallel_refusal(facts, tensor_parallel_size):
    """Why the GPUs of the gpufleet_gpus fact form no group of tensor_parallel_size, in one sentence; None if they do."""
    gpus = _gpus(facts)
    size = tensor_parallel_size
    if size > len(gpus):
        return "tensor_parallel_size %d exceeds the %d GPU(s) on this host; set it to at most %d or auto." % (size, len(gpus), len(gpus))
    largest = _largest(_pools(gpus)[0])
    if size <= largest:
        return None
    models = [gpu.model for gpu in gpus]
    boards = [gpu for gpu in gpus if gpu.dies_per_board > 1 and models.count(gpu.model) >= size]
    if boards:
        return _board_refusal(size, boards[0])
    return _mixed_refusal(size, gpus, largest)


def _mixed_refusal(size, gpus, largest):
    names = []
    for gpu in gpus:
        if gpu.name not in names:
            names.append(gpu.name)
    remedy = "set it to 1 to serve one replica per GPU" if largest == 1 else "set it to at most %d, the most GPUs of one model here" % largest
    return "tensor_parallel_size %d would join different GPUs (%s) in one group, whose memory and speed differ; %s." % (
        size, " and ".join(names), remedy)


def _board_refusal(size, gpu):
    boards = -(-size // gpu.dies_per_board)
    # vllm-facts section 3 (V37 README, "Hardware safety"): keep TP at 1 (one die) or 2 (one board).
    return ("tensor_parallel_size %d would span %d %s boards, and groups across boards have halted machines that feed both "
            "boards from one CPU power cable (vllm37 README, Hardware safety); set it to at most %d, the dies of one board."
            % (size, boards, gpu.name, gpu.dies_per_board))


def _counted(count, noun):
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def _verb(count, verb):
    return verb + "s" if count == 1 else verb


def _requested(replicas):
    """The replicas override as a count; None when unset."""
    if replicas in (None, ""):
        return None
    if isinstance(replicas, str) and replicas.strip().isdigit():
        replicas = int(replicas.strip())
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ReplicaError("replicas %r is not a positive integer; set it to 1 or more, or leave it unset." % (replicas,))
    return replicas


def _device_ids(gpus):
    """What Docker's --gpus device=... names each GPU by: its UUID, which stays with the GPU whatever the enumeration,
    when every GPU's is known. Before the driver runs (the first plan of a bare host) none is, and the index is all
    there is: NVML numbers the GPUs in PCI bus order in practice, though it promises no order, hence UUIDs first."""
    if all(gpu.uuid for gpu in gpus):
        return dict((gpu.index, gpu.uuid) for gpu in gpus)
    return dict((gpu.index, str(gpu.index)) for gpu in gpus)


def gpu_replicas(facts, tensor_parallel_size, replicas=None):
    """The Placement of the replicas on the GPUs of the gpufleet_gpus fact; raises ReplicaError.

    replicas: the count asked for, or None for as many groups as the GPUs form.
    """
    refusal = tensor_parallel_refusal(facts, tensor_parallel_size)
    if refusal:
        raise ReplicaError(refusal)
    gpus = _gpus(facts)
    pools, unknown_boards = _pools(gpus)
    size = tensor_parallel_size
    groups = [group for pool in pools for group in _chunks(pool, size) if len(group) == size]
    count = _requested(replicas) or len(groups)
    if count > len(groups):
        raise ReplicaError(
            "replicas %d needs %d GPUs at tensor_parallel_size %d, but the host's %s %s only %s; set replicas to at most %d, "
            "or leave it unset." % (count, count * size, size, _counted(len(gpus), "GPU"), _verb(len(gpus), "form"),
                                    _counted(len(groups), "such group"), len(groups)))
    chosen = groups[:count]
    device_ids = _device_ids(gpus)
    placed = tuple({"gpus": [device_ids[gpu.index] for gpu in group], "cpuset": None, "env": {}} for group in chosen)
    warnings = [_unknown_board_warning(gpu, size) for gpu in unknown_boards if size > 1]
    warnings += _left_over_warnings(gpus, chosen, size)
    return Placement(placed, tuple(warnings))


def _unknown_board_warning(gpu, size):
    return ("sysfs shows no PCI topology for the %s dies, so each group of %d takes dies in bus order, which is how a board's "
            "switch numbers them; gather facts on the host itself to place the groups by board." % (gpu.name, size))


def _left_over_warnings(gpus, chosen, size):
    used = set(gpu.index for group in chosen for gpu in group)
    idle = [gpu.label for gpu in gpus if gpu.index not in used]
    if not idle:
        return []
    return ["%s at tensor_parallel_size %d %s %d of the host's %d GPUs; %s %s none."
            % (_counted(len(chosen), "replica"), size, _verb(len(chosen), "use"), len(used), len(gpus), " and ".join(idle),
               _verb(len(idle), "serve"))]


def cpu_replicas(vcpus, memory_mib, replica_gib, replicas=None):
    """The Placement of the replicas on a host's CPU cores; raises ReplicaError.

    vcpus and memory_mib: the host's processor_vcpus and memtotal_mb; replica_gib: the memory one replica takes
    (its KV cache and weights); replicas: the count asked for, or None for one.
    """
    if not vcpus or not memory_mib:
        raise ReplicaError("the cpu variant places its replicas by the host's processor_vcpus and memtotal_mb facts, which "
                           "are missing; gather facts on the host before planning.")
    count = _requested(replicas) or 1
    if count > vcpus:
        raise ReplicaError("replicas %d needs a CPU core each, but the host has %d; set replicas to at most %d." % (count, vcpus, vcpus))
    _check_memory(count, memory_mib, replica_gib)
    placed = tuple({"gpus": [], "cpuset": cores, "env": {CPU_BIND_ENV: cores}} for cores in _core_sets(vcpus, count))
    return Placement(placed, ())


def _check_memory(count, memory_mib, replica_gib):
    memory_gib = memory_mib / 1024.0
    if count * replica_gib <= memory_gib:
        return
    fitting = int(memory_gib // replica_gib)
    remedy = "set replicas to at most %d" % fitting if fitting else "serve a smaller model or use a host with more memory"
    raise ReplicaError("%s %s %.1f GiB of memory (%.1f GiB of KV cache and weights per replica), but the host has %.1f GiB; %s."
                       % (_counted(count, "replica"), _verb(count, "need"), count * replica_gib, replica_gib, memory_gib, remedy))


def _core_sets(vcpus, count):
    """count contiguous, disjoint sets of the cores 0 to vcpus - 1, as cpuset lists them ("0-3", "4").

    Where count does not divide vcpus the first replicas take one core more: every core serves, and no two replicas
    differ by more than one core (8 cores, 3 replicas: 0-2, 3-5, 6-7).
    """
    base, extra = divmod(vcpus, count)
    sets, first = [], 0
    for index in range(count):
        last = first + base + (1 if index < extra else 0) - 1
        sets.append(str(first) if first == last else "%d-%d" % (first, last))
        first = last + 1
    return sets
