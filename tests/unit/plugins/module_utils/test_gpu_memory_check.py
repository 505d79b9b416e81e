# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The GPU memory preflight, case by case: a free GPU, a foreign process in the way, a replica's own memory, an orphaned
engine core, other units of the deployment, and GPUs named by index or as MIG instances."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_memory_check import check_gpu_memory

# NVML's total for an A40; at gpu_memory_utilization 0.9 vLLM asks for 41,461 MiB (40.5 GiB) of it.
A40_MIB = 46068
UUID0 = "GPU-5a1c0f3e-0000-4000-8000-000000000000"
UUID1 = "GPU-5a1c0f3e-0000-4000-8000-000000000001"


def process(pid, used_mib, name="python3", container=None, running=True):
    return {"pid": pid, "used_mib": used_mib, "name": name, "container": container, "container_running": running}


def gpu(index, free_mib, *processes, uuid=None, total_mib=A40_MIB):
    return {"index": index, "uuid": (UUID0, UUID1)[index] if uuid is None else uuid, "total_mib": total_mib, "free_mib": free_mib,
            "processes": list(processes)}


def replica(index, *gpus):
    return {"index": index, "unit": "vllm-tiny-%d" % index, "gpus": list(gpus) or [(UUID0, UUID1)[index]]}


TWO_REPLICAS = [replica(0), replica(1)]


def test_free_gpus_need_nothing():
    check = check_gpu_memory([gpu(0, 45500), gpu(1, 45500)], TWO_REPLICAS, 0.9)
    assert check.ok
    assert (check.problems, check.orphans, check.stop_first, check.notes) == ((), (), (), ())


def test_foreign_process_in_the_way_is_named_with_its_memory_and_what_to_do():
    jupyter = process(5151, 30720, "python3", "jupyter")
    check = check_gpu_memory([gpu(0, 45500), gpu(1, 15000, jupyter)], TWO_REPLICAS, 0.9)
    assert not check.ok
    assert check.problems == (
        "GPU 1 (%s) can give vllm-tiny-1 only 14.6 GiB of its 45.0 GiB where it needs 40.5 GiB (gpu_memory_utilization 0.90), "
        "because pid 5151 (python3, container jupyter) holds 30.0 GiB; stop that process, or set gpu_memory_utilization to at "
        "most 0.32." % UUID1,)


def test_each_foreign_process_on_a_full_gpu_gets_its_sentence():
    check = check_gpu_memory([gpu(0, 2000, process(700, 20480, "Xorg"), process(701, 22528, "blender"))], [replica(0)], 0.9)
    assert [problem.split("because ")[1].split(";")[0] for problem in check.problems] == [
        "pid 700 (Xorg) holds 20.0 GiB", "pid 701 (blender) holds 22.0 GiB"]
    # 2,000 MiB is too little to offer a lower gpu_memory_utilization for.
    assert all(problem.endswith("; stop that process.") for problem in check.problems)


def test_foreign_process_that_leaves_room_enough_is_no_problem():
    check = check_gpu_memory([gpu(0, 43000, process(700, 2048, "Xorg"))], [replica(0)], 0.9)
    assert check.ok


def test_shortage_without_a_named_process_points_at_nvidia_smi():
    check = check_gpu_memory([gpu(0, 30000)], [replica(0)], 0.9)
    assert check.problems == (
        "GPU 0 (%s) can give vllm-tiny-0 only 29.3 GiB of its 45.0 GiB where it needs 40.5 GiB (gpu_memory_utilization 0.90), "
        "and NVML names no process that holds the rest; find what uses the GPU with nvidia-smi, or set gpu_memory_utilization "
        "to at most 0.65." % UUID0,)


def test_replicas_own_memory_is_available_to_it():
    # The running replica holds the GPU; the rollout replaces it, so its memory is the new one's.
    check = check_gpu_memory([gpu(0, 4000, process(4100, 41500, "python3", "vllm-tiny-0"))], [replica(0)], 0.9)
    assert check.ok
    assert (check.orphans, check.stop_first) == ((), ())


def test_orphaned_engine_core_is_killed_not_refused():
    core = process(4242, 40960, "VLLM::EngineCore", "3f2a9c1b0d4e", running=False)
    check = check_gpu_memory([gpu(0, 5000, core)], [replica(0)], 0.9)
    assert check.ok
    assert check.orphans == (4242,)
    assert check.notes == (
        "GPU 0 (%s) holds 40.0 GiB in pid 4242 (VLLM::EngineCore) of container 3f2a9c1b0d4e, which no longer runs; it is "
        "killed before vllm-tiny-0 starts." % UUID0,)


def test_orphans_of_a_tensor_parallel_group_are_listed_once_per_pid():
    workers = [process(4300 + rank, 20480, "VLLM::Worker_TP%d" % rank, "3f2a9c1b0d4e", running=False) for rank in (0, 1)]
    check = check_gpu_memory([gpu(0, 25000, workers[0]), gpu(1, 25000, workers[1])], [replica(0, UUID0, UUID1)], 0.9)
    assert check.ok
    assert check.orphans == (4300, 4301)


def test_orphan_is_killed_even_when_a_foreign_process_still_blocks():
    core = process(4242, 10240, "VLLM::EngineCore", "3f2a9c1b0d4e", running=False)
    check = check_gpu_memory([gpu(0, 5000, core, process(5151, 30720, "python3", "jupyter"))], [replica(0)], 0.9)
    assert check.orphans == (4242,)
    assert len(check.problems) == 1 and "pid 5151 (python3, container jupyter) holds 30.0 GiB" in check.problems[0]


def test_another_replica_on_the_gpu_is_stopped_first_when_its_memory_is_needed():
    # Tensor parallel 1 -> 2: replica 0 now takes GPU 1 too, which old replica 1 holds until it is retired.
    old_replica_1 = process(4400, 30720, "python3", "vllm-tiny-1")
    check = check_gpu_memory([gpu(0, 45500), gpu(1, 15000, old_replica_1)], [replica(0, UUID0, UUID1)], 0.9,
                             retiring=["vllm-tiny-1"])
    assert check.ok
    assert check.stop_first == ("vllm-tiny-1",)
    assert check.notes == ("vllm-tiny-1 of this deployment holds 30.0 GiB on GPU 1 (%s), which vllm-tiny-0 needs; it is "
                           "stopped before the replicas start." % UUID1,)


def test_another_replica_that_leaves_room_enough_keeps_running():
    small = process(4400, 2048, "python3", "vllm-tiny-1")
    check = check_gpu_memory([gpu(0, 43000, small)], [replica(0), replica(1, UUID0)], 0.9)
    assert check.ok
    assert check.stop_first == ()


def test_unit_of_an_earlier_release_on_every_gpu_is_stopped_first_once():
    legacy = [process(3900 + index, 41000, "python3", "vllm-tiny") for index in (0, 1)]
    check = check_gpu_memory([gpu(0, 4500, legacy[0]), gpu(1, 4500, legacy[1])], TWO_REPLICAS, 0.9, retiring=["vllm-tiny"])
    assert check.ok
    assert check.stop_first == ("vllm-tiny",)
    assert len(check.notes) == 2


def test_container_of_another_deployment_is_foreign():
    other = process(6000, 41000, "python3", "vllm-llama-0")
    check = check_gpu_memory([gpu(0, 4500, other)], [replica(0)], 0.9)
    assert len(check.problems) == 1 and "pid 6000 (python3, container vllm-llama-0) holds 40.0 GiB" in check.problems[0]


def test_plan_made_before_uuids_names_gpus_by_index():
    jupyter = process(5151, 30720, "python3", "jupyter")
    check = check_gpu_memory([gpu(0, 45500), gpu(1, 15000, jupyter, uuid="")], [replica(0, "0"), replica(1, "1")], 0.9)
    assert check.problems[0].startswith("GPU 1 can give vllm-tiny-1 only 14.6 GiB")


def test_mig_instances_are_told_apart_by_uuid_not_by_their_parents_index():
    # Two 20 GB instances of GPU 0: NVML numbers MIG devices within their parent, so the index does not tell them apart.
    instances = [gpu(0, 19000, uuid="MIG-aaaa", total_mib=19968),
                 gpu(0, 2000, process(5151, 17408, "python3"), uuid="MIG-bbbb", total_mib=19968)]
    check = check_gpu_memory(instances, [replica(0, "MIG-aaaa"), replica(1, "MIG-bbbb")], 0.9)
    assert len(check.problems) == 1
    assert check.problems[0].startswith("GPU 0 (MIG-bbbb) can give vllm-tiny-1 only 2.0 GiB of its 19.5 GiB")


def test_gpu_the_plan_names_but_nvml_does_not_list_is_a_problem():
    check = check_gpu_memory([gpu(0, 45500)], [replica(0), replica(1)], 0.9)
    assert check.problems == ("Replica vllm-tiny-1 is planned on GPU %s, which NVML does not list on this host; gather facts "
                              "again and plan anew." % UUID1,)


def test_process_without_a_reported_size_counts_as_holding_nothing():
    check = check_gpu_memory([gpu(0, 30000, process(700, None, "python3"))], [replica(0)], 0.9)
    assert "pid 700 (python3) holds 0.0 GiB" in check.problems[0]


@pytest.mark.parametrize("utilization", [0, 1.5, None, "most"])
def test_utilization_that_is_no_fraction_is_refused(utilization):
    with pytest.raises(ValueError) as caught:
        check_gpu_memory([gpu(0, 45500)], [replica(0)], utilization)
    assert str(caught.value) == ("gpu_memory_utilization must be a fraction above 0 and at most 1, not %r; pass the plan's value."
                                 % (utilization,))
