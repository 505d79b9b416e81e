# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replicas per host, case by case: which GPUs each tensor-parallel group joins, and which cores each CPU replica gets."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import merge_gpus, scan_sysfs
from ansible_collections.gpufleet.vllm.plugins.module_utils._replicas import (
    ReplicaError,
    cpu_replicas,
    gpu_replicas,
    largest_group,
    tensor_parallel_refusal,
)

K80_TP4 = ("tensor_parallel_size 4 would span 2 Tesla K80 boards, and groups across boards have halted machines that feed "
           "both boards from one CPU power cable (vllm37 README, Hardware safety); set it to at most 2, the dies of one board.")
K80_UNKNOWN_TOPOLOGY = ("sysfs shows no PCI topology for the Tesla K80 dies, so each group of 2 takes dies in bus order, "
                        "which is how a board's switch numbers them; gather facts on the host itself to place the groups by board.")


def groups(placement):
    return [replica["gpus"] for replica in placement.replicas]


def refused(function, *args):
    with pytest.raises(ReplicaError) as caught:
        function(*args)
    return str(caught.value)


def gpu(bus_id, device_id, name, bridges=None, uuid=None):
    """A gpufleet_gpus entry as far as placing replicas goes."""
    return {"pci_bus_id": bus_id, "pci_device_id": device_id, "name": name, "uuid": uuid, "pci_bridges": bridges}


@pytest.fixture
def k80x2(make_host):
    """Two K80 boards, four dies, as gpu_facts reads them from sysfs."""
    return merge_gpus(scan_sysfs(make_host("k80x2").root))


@pytest.fixture
def k80x2_flat(make_host):
    return merge_gpus(scan_sysfs(make_host("k80x2", flat=True).root))


def h100x8():
    """An HGX-like host: four root ports, each with a PCIe switch that carries two H100s."""
    facts = []
    for port, (switch, buses) in enumerate((("17", ("18", "19")), ("29", ("2a", "2b")), ("39", ("3a", "3b")), ("5c", ("5d", "5e")))):
        for downstream, bus in enumerate(buses):
            bridges = ["0000:00:%02x.0" % (port + 1), "0000:%s:00.0" % switch, "0000:%02x:%02x.0" % (int(switch, 16) + 1, downstream)]
            facts.append(gpu("0000:%s:00.0" % bus, "0x2330", "H100 SXM5 80GB", bridges, "GPU-h100-%d" % len(facts)))
    return facts


RTX5090_A40 = [gpu("0000:09:00.0", "0x2b85", "GeForce RTX 5090"), gpu("0000:17:00.0", "0x2235", "A40")]


# --------------------------------------------------------------------------------------------
# Tesla K80: two dies per board, groups never span boards


def test_k80_tp1_serves_one_replica_per_die(k80x2):
    placement = gpu_replicas(k80x2, 1)
    assert groups(placement) == [["0"], ["1"], ["2"], ["3"]]
    assert placement.warnings == ()


def test_k80_tp2_serves_one_replica_per_board(k80x2):
    placement = gpu_replicas(k80x2, 2)
    assert groups(placement) == [["0", "1"], ["2", "3"]]
    assert placement.warnings == ()


@pytest.mark.parametrize("size, words", [
    (4, K80_TP4),
    (3, "tensor_parallel_size 3 would span 2 Tesla K80 boards, and groups across boards have halted machines"),
])
def test_k80_groups_across_boards_are_refused(k80x2, size, words):
    assert refused(gpu_replicas, k80x2, size).startswith(words)
    assert tensor_parallel_refusal(k80x2, size).startswith(words)


def test_k80_board_is_found_by_the_switch_not_by_bus_order():
    # Board 1 shows one die only: bus order would pair it with board 2's first die.
    board_1 = ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]
    board_2 = ["0000:00:03.2", "0000:83:00.0"]
    facts = [gpu("0000:05:00.0", "0x102d", "Tesla K80", board_1),
             gpu("0000:85:00.0", "0x102d", "Tesla K80", board_2 + ["0000:84:08.0"]),
             gpu("0000:86:00.0", "0x102d", "Tesla K80", board_2 + ["0000:84:10.0"])]
    placement = gpu_replicas(facts, 2)
    assert groups(placement) == [["1", "2"]]
    assert placement.warnings == (
        "1 replica at tensor_parallel_size 2 uses 2 of the host's 3 GPUs; GPU 0 (Tesla K80 at 0000:05:00.0) serves none.",)


def test_k80_dies_behind_one_virtual_port_still_group_by_board():
    # A virtual machine may show all four dies behind one port: a group still takes no more dies than a board carries.
    facts = [gpu("0000:%02x:00.0" % bus, "0x102d", "Tesla K80", ["0000:00:1c.0", "0000:01:00.0", "0000:02:%02x.0" % bus])
             for bus in (5, 6, 7, 8)]
    assert largest_group(facts) == 2
    assert refused(gpu_replicas, facts, 4) == K80_TP4


def test_k80_with_unknown_topology_pairs_dies_in_bus_order_and_says_so(k80x2_flat):
    assert [fact["pci_bridges"] for fact in k80x2_flat] == [None] * 4
    assert groups(gpu_replicas(k80x2_flat, 1)) == [["0"], ["1"], ["2"], ["3"]]
    assert gpu_replicas(k80x2_flat, 1).warnings == ()
    placement = gpu_replicas(k80x2_flat, 2)
    assert groups(placement) == [["0", "1"], ["2", "3"]]
    assert placement.warnings == (K80_UNKNOWN_TOPOLOGY,)
    assert refused(gpu_replicas, k80x2_flat, 4) == K80_TP4


def test_k80_groups_name_the_uuids_once_the_driver_gave_them(k80x2):
    facts = [dict(fact, uuid="GPU-k80-%d" % index) for index, fact in enumerate(k80x2)]
    assert groups(gpu_replicas(facts, 2)) == [["GPU-k80-0", "GPU-k80-1"], ["GPU-k80-2", "GPU-k80-3"]]


def test_one_gpu_without_uuid_makes_every_group_use_indexes(k80x2):
    facts = [dict(fact, uuid="GPU-k80-%d" % index if index else None) for index, fact in enumerate(k80x2)]
    assert groups(gpu_replicas(facts, 2)) == [["0", "1"], ["2", "3"]]


def test_indexes_follow_pci_bus_order_whatever_the_order_of_the_facts(k80x2):
    assert groups(gpu_replicas(list(reversed(k80x2)), 1)) == [["0"], ["1"], ["2"], ["3"]]


# --------------------------------------------------------------------------------------------
# Single-die GPUs


@pytest.mark.parametrize("size, expected", [
    (1, [["GPU-h100-%d" % index] for index in range(8)]),
    (2, [["GPU-h100-0", "GPU-h100-1"], ["GPU-h100-2", "GPU-h100-3"], ["GPU-h100-4", "GPU-h100-5"], ["GPU-h100-6", "GPU-h100-7"]]),
    (4, [["GPU-h100-%d" % index for index in range(4)], ["GPU-h100-%d" % index for index in range(4, 8)]]),
    (8, [["GPU-h100-%d" % index for index in range(8)]]),
])
def test_h100x8_groups_keep_gpus_of_one_switch_together(size, expected):
    placement = gpu_replicas(h100x8(), size)
    assert groups(placement) == expected
    assert placement.warnings == ()


def test_single_die_gpus_are_ordered_by_their_switches_before_their_buses():
    # Bus 0x30 sits behind the first switch, bus 0x20 behind the second: TP 2 pairs each switch's GPUs.
    first, second = ["0000:00:01.0", "0000:10:00.0"], ["0000:00:02.0", "0000:1f:00.0"]
    facts = [gpu("0000:11:00.0", "0x2235", "A40", first + ["0000:11:00.0"]),
             gpu("0000:20:00.0", "0x2235", "A40", second + ["0000:1f:08.0"]),
             gpu("0000:21:00.0", "0x2235", "A40", second + ["0000:1f:10.0"]),
             gpu("0000:30:00.0", "0x2235", "A40", first + ["0000:11:08.0"])]
    assert groups(gpu_replicas(facts, 2)) == [["0", "3"], ["1", "2"]]


def test_mixed_host_serves_one_replica_per_gpu_at_tp1():
    placement = gpu_replicas(RTX5090_A40, 1)
    assert groups(placement) == [["0"], ["1"]]
    assert placement.warnings == ()


def test_mixed_group_is_refused():
    assert refused(gpu_replicas, RTX5090_A40, 2) == (
        "tensor_parallel_size 2 would join different GPUs (GeForce RTX 5090 and A40) in one group, whose memory and speed "
        "differ; set it to 1 to serve one replica per GPU.")


def test_mixed_host_groups_the_gpus_of_one_model_and_names_the_rest():
    facts = [gpu("0000:09:00.0", "0x2b85", "GeForce RTX 5090"), gpu("0000:17:00.0", "0x2235", "A40"),
             gpu("0000:18:00.0", "0x2235", "A40")]
    placement = gpu_replicas(facts, 2)
    assert groups(placement) == [["1", "2"]]
    assert placement.warnings == ("1 replica at tensor_parallel_size 2 uses 2 of the host's 3 GPUs; "
                                  "GPU 0 (GeForce RTX 5090 at 0000:09:00.0) serves none.",)
    assert refused(gpu_replicas, facts, 3) == (
        "tensor_parallel_size 3 would join different GPUs (GeForce RTX 5090 and A40) in one group, whose memory and speed "
        "differ; set it to at most 2, the most GPUs of one model here.")


def test_more_tp_than_gpus_is_refused():
    assert refused(gpu_replicas, RTX5090_A40, 4) == "tensor_parallel_size 4 exceeds the 2 GPU(s) on this host; set it to at most 2 or auto."


@pytest.mark.parametrize("facts, largest", [
    (h100x8(), 8),
    (RTX5090_A40, 1),
    ([], 0),
])
def test_largest_group(facts, largest):
    assert largest_group(facts) == largest


@pytest.mark.parametrize("host", ["k80x2", "k80x2_flat"])
def test_largest_group_of_k80_boards_is_one_board(request, host):
    assert largest_group(request.getfixturevalue(host)) == 2


# --------------------------------------------------------------------------------------------
# Replica counts


@pytest.mark.parametrize("replicas", [3, "3"])
def test_fewer_replicas_than_groups_leave_gpus_idle_with_a_warning(replicas):
    placement = gpu_replicas(h100x8(), 2, replicas)
    assert len(placement.replicas) == 3
    assert placement.warnings == (
        "3 replicas at tensor_parallel_size 2 use 6 of the host's 8 GPUs; GPU 6 (H100 SXM5 80GB at 0000:5d:00.0) and "
        "GPU 7 (H100 SXM5 80GB at 0000:5e:00.0) serve none.",)


def test_as_many_replicas_as_groups_is_the_default():
    assert gpu_replicas(h100x8(), 2, 4) == gpu_replicas(h100x8(), 2)


def test_more_replicas_than_groups_are_refused():
    assert refused(gpu_replicas, h100x8(), 2, 5) == (
        "replicas 5 needs 10 GPUs at tensor_parallel_size 2, but the host's 8 GPUs form only 4 such groups; "
        "set replicas to at most 4, or leave it unset.")


def test_more_k80_replicas_than_boards_are_refused(k80x2):
    assert refused(gpu_replicas, k80x2, 2, 3) == (
        "replicas 3 needs 6 GPUs at tensor_parallel_size 2, but the host's 4 GPUs form only 2 such groups; "
        "set replicas to at most 2, or leave it unset.")


@pytest.mark.parametrize("replicas, shown", [(0, "0"), (-1, "-1"), ("two", "'two'"), (True, "True"), (1.5, "1.5")])
def test_a_replica_count_that_is_no_positive_integer_is_refused(replicas, shown):
    expected = "replicas %s is not a positive integer; set it to 1 or more, or leave it unset." % shown
    assert refused(gpu_replicas, h100x8(), 1, replicas) == expected
    assert refused(cpu_replicas, 8, 32768, 4.5, replicas) == expected


# --------------------------------------------------------------------------------------------
# CPU replicas


def cpusets(placement):
    return [(replica["cpuset"], replica["env"], replica["gpus"]) for replica in placement.replicas]


def test_cpu_host_serves_one_replica_on_every_core_by_default():
    placement = cpu_replicas(8, 32768, 4.5)
    assert cpusets(placement) == [("0-7", {"VLLM_CPU_OMP_THREADS_BIND": "0-7"}, [])]
    assert placement.warnings == ()


def test_two_replicas_on_two_cores_take_one_core_each():
    assert cpusets(cpu_replicas(2, 24576, 4.5, 2)) == [
        ("0", {"VLLM_CPU_OMP_THREADS_BIND": "0"}, []), ("1", {"VLLM_CPU_OMP_THREADS_BIND": "1"}, [])]


def test_cores_that_do_not_divide_go_to_the_first_replicas():
    assert [replica["cpuset"] for replica in cpu_replicas(8, 32768, 4.5, 3).replicas] == ["0-2", "3-5", "6-7"]


def test_more_cpu_replicas_than_cores_are_refused():
    assert refused(cpu_replicas, 2, 24576, 4.5, 3) == "replicas 3 needs a CPU core each, but the host has 2; set replicas to at most 2."


def test_cpu_replicas_that_do_not_fit_the_memory_are_refused():
    assert refused(cpu_replicas, 8, 8192, 4.5, 2) == (
        "2 replicas need 9.0 GiB of memory (4.5 GiB of KV cache and weights per replica), but the host has 8.0 GiB; "
        "set replicas to at most 1.")


def test_a_cpu_replica_that_does_not_fit_the_memory_is_refused():
    assert refused(cpu_replicas, 8, 4096, 4.5) == (
        "1 replica needs 4.5 GiB of memory (4.5 GiB of KV cache and weights per replica), but the host has 4.0 GiB; "
        "serve a smaller model or use a host with more memory.")


@pytest.mark.parametrize("vcpus, memory_mib", [(None, 8192), (8, None)])
def test_cpu_replicas_without_the_host_facts_are_refused(vcpus, memory_mib):
    assert refused(cpu_replicas, vcpus, memory_mib, 4.5) == (
        "the cpu variant places its replicas by the host's processor_vcpus and memtotal_mb facts, which are missing; "
        "gather facts on the host before planning.")
