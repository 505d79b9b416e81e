# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The images of a whole play: architecture lists spanning the fleet, build hosts, job counts, K80 stages.

Host plans come from the real planner (test_host_plan's helpers); only the git lookup and the hashing of
build inputs, which need the outside world, are replaced by the functions below.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._fleet_images import (
    FleetPlanError,
    arch_list,
    build_minutes,
    check_arch_list,
    max_jobs,
    plan_fleet,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import recipe_digest
from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import CU128_VLLM_VERSION, K80_REPO
from test_host_plan import A40, DEBIAN, K80, RTX5090, UBUNTU, plan_host, settings, facts

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RECIPE = (("Dockerfile", "a" * 64),)


def host_plan(host, devices, system=DEBIAN, overrides=None, vcpus=8, memory_mib=32768):
    return host, plan_host(host, facts(devices, system, vcpus=vcpus, memory_mib=memory_mib), settings(overrides))


def digest_of(build):
    return recipe_digest(RECIPE, build["build_args"])


def resolve(repository, ref):
    if ref == "missing":
        raise FleetPlanError("The git ref missing does not resolve in %s." % repository)
    return COMMIT


def fleet(hosts, builders=(), source_dir=None):
    return plan_fleet(list(hosts), {"builders": list(builders), "source_dir": source_dir}, resolve, digest_of)


@pytest.mark.parametrize("capabilities, expected", [
    (["12.0", "8.6"], "8.6;12.0"),
    (["8.6", "8.6", "12.0", "9.0"], "8.6;9.0;12.0"),
    (["3.7"], "3.7"),
    (["10.0", "9.0", None], "9.0;10.0"),
])
def test_arch_list_is_distinct_and_lowest_first(capabilities, expected):
    assert arch_list(capabilities) == expected


@pytest.mark.parametrize("vcpus, memory_mib, jobs", [
    (2, 24 * 1024, 2),       # our build machines: cores bound it
    (32, 24 * 1024, 5),      # many cores, little memory: (24 - 2) // 4
    (16, 128 * 1024, 16),
    (8, 4 * 1024, 1),        # never below one job
    (None, None, 1),
])
def test_max_jobs_follows_memory_and_cores(vcpus, memory_mib, jobs):
    assert max_jobs(vcpus, memory_mib) == jobs


def test_build_minutes_add_ten_per_cu128_architecture():
    assert build_minutes("cu128", 2) == 25
    assert build_minutes("k80-builder", 1) == 120


@pytest.mark.parametrize("variant, value, words", [
    ("cu128", "3.7;8.6", "names 3.7, which variant cu128 cannot build for (it needs 7.0 or newer)"),
    ("k80", "3.7;8.6", "names 8.6, which variant k80 cannot build for (it needs exactly 3.7)"),
    ("cu128", "sm_86", "holds 'sm_86', which is no compute capability such as 8.6"),
    ("cu128", ";", "TORCH_CUDA_ARCH_LIST is empty for variant cu128"),
])
def test_arch_lists_a_variant_cannot_build_are_refused_in_one_sentence(variant, value, words):
    with pytest.raises(FleetPlanError) as caught:
        check_arch_list("gpu-01", variant, value)
    assert str(caught.value).startswith("gpu-01: ")
    assert words in str(caught.value)


def test_mixed_cu128_fleet_builds_one_image_for_both_architectures():
    plans, builds = fleet([host_plan("a40-01", [A40], DEBIAN, {"variant": "cu128"}), host_plan("rtx-01", [RTX5090]),
                           host_plan("rtx-02", [RTX5090])])
    assert len(builds) == 1
    build = builds[0]
    assert build["build_args"]["TORCH_CUDA_ARCH_LIST"] == "8.6;12.0"
    assert (build["build_host"], build["hosts"]) == ("a40-01", ["a40-01", "rtx-01", "rtx-02"])
    assert re.match(r"^gpufleet/vllm-cu128:%s-[0-9a-f]{12}$" % re.escape(CU128_VLLM_VERSION), build["reference"])
    for host in ("a40-01", "rtx-01", "rtx-02"):
        assert plans[host]["image"]["reference"] == plans[host]["service"]["image"] == build["reference"]
    assert [plans[host]["image"]["transfer"] for host in ("a40-01", "rtx-01", "rtx-02")] == ["build", "copy", "copy"]
    assert [len(plans[host]["image"]["builds"]) for host in ("a40-01", "rtx-01", "rtx-02")] == [1, 0, 0]


def test_hosts_of_a_registry_pull_the_image_the_build_host_pushes():
    overrides = {"registry": "registry.example.com:5000"}
    plans, builds = fleet([host_plan("rtx-01", [RTX5090], overrides=overrides), host_plan("rtx-02", [RTX5090], overrides=overrides)])
    assert builds[0]["reference"].startswith("registry.example.com:5000/gpufleet/vllm-cu128:")
    assert [plans[host]["image"]["transfer"] for host in ("rtx-01", "rtx-02")] == ["build", "pull"]


def test_a_host_that_sets_its_arch_list_gets_its_own_image():
    plans, builds = fleet([host_plan("rtx-01", [RTX5090]), host_plan("rtx-02", [RTX5090], overrides={"build_args": {"TORCH_CUDA_ARCH_LIST": "9.0;12.0"}})])
    assert [build["build_args"]["TORCH_CUDA_ARCH_LIST"] for build in builds] == ["12.0", "9.0;12.0"]
    assert [build["build_host"] for build in builds] == ["rtx-01", "rtx-02"]


def test_an_arch_list_override_a_variant_cannot_build_is_refused():
    with pytest.raises(FleetPlanError) as caught:
        fleet([host_plan("rtx-01", [RTX5090], overrides={"build_args": {"TORCH_CUDA_ARCH_LIST": "3.7;12.0"}})])
    assert "rtx-01: TORCH_CUDA_ARCH_LIST 3.7;12.0 names 3.7, which variant cu128 cannot build for" in str(caught.value)


def test_max_jobs_follows_the_build_host_unless_set():
    dummy, builds = fleet([host_plan("rtx-01", [RTX5090], vcpus=32, memory_mib=24 * 1024)])
    assert builds[0]["build_args"]["MAX_JOBS"] == "5"
    dummy, builds = fleet([host_plan("rtx-01", [RTX5090], overrides={"build_args": {"MAX_JOBS": "2"}})])
    assert builds[0]["build_args"]["MAX_JOBS"] == "2"


def test_max_jobs_does_not_change_the_tag():
    dummy, few = fleet([host_plan("rtx-01", [RTX5090], vcpus=2)])
    dummy, many = fleet([host_plan("rtx-01", [RTX5090], vcpus=64, memory_mib=512 * 1024)])
    assert few[0]["build_args"]["MAX_JOBS"] != many[0]["build_args"]["MAX_JOBS"]
    assert few[0]["reference"] == many[0]["reference"]


def test_the_build_group_builds_even_an_image_it_does_not_run():
    hosts = [host_plan("builder", [], DEBIAN, {"variant": "cpu"}), host_plan("rtx-01", [RTX5090]), host_plan("rtx-02", [RTX5090])]
    plans, builds = fleet(hosts, builders=["builder"])
    assert [(build["recipe"], build["build_host"]) for build in builds] == [("cpu", "builder"), ("cu128", "builder")]
    assert [job["recipe"] for job in plans["builder"]["image"]["builds"]] == ["cpu", "cu128"]
    assert [plans[host]["image"]["transfer"] for host in ("rtx-01", "rtx-02")] == ["copy", "copy"]


def test_several_builders_take_turns_and_builders_outside_the_play_are_ignored():
    hosts = [host_plan("b1", [], DEBIAN, {"variant": "cpu"}), host_plan("b2", [], DEBIAN, {"variant": "cpu"}),
             host_plan("rtx-01", [RTX5090])]
    dummy, builds = fleet(hosts, builders=["gone", "b1", "b2"])
    assert [(build["recipe"], build["build_host"]) for build in builds] == [("cpu", "b1"), ("cu128", "b2")]


def test_k80_builds_its_builder_first_then_the_runtime_on_it_named_by_commit():
    plans, builds = fleet([host_plan("k80-01", [K80] * 4), host_plan("k80-02", [K80] * 4)])
    builder, runtime = builds
    assert (builder["recipe"], runtime["recipe"]) == ("k80-builder", "k80")
    assert builder["reference"].startswith("gpufleet/vllm-k80-builder:torch2.4.1-cuda11.4-")
    assert builder["build_args"]["TORCH_CUDA_ARCH_LIST"] == "3.7"
    assert runtime["build_args"]["BUILDER_IMAGE"] == builder["reference"]
    assert (runtime["build_args"]["VLLM_REPO"], runtime["build_args"]["VLLM_COMMIT"]) == (K80_REPO, COMMIT)
    assert "VLLM_REF" not in runtime["build_args"]
    assert runtime["reference"].startswith("gpufleet/vllm-k80:%s-" % COMMIT[:12])
    assert builder["build_host"] == runtime["build_host"] == "k80-01"
    assert [job["recipe"] for job in plans["k80-01"]["image"]["builds"]] == ["k80-builder", "k80"]
    assert plans["k80-02"]["image"]["transfer"] == "copy"


def test_a_new_builder_image_gives_a_new_runtime_tag():
    dummy, builds = fleet([host_plan("k80-01", [K80] * 4)])
    dummy, other = fleet([host_plan("k80-01", [K80] * 4, overrides={"builder_image": "registry.example.com/k80-builder:v2"})])
    assert [build["recipe"] for build in other] == ["k80"]
    assert other[0]["build_args"]["BUILDER_IMAGE"] == "registry.example.com/k80-builder:v2"
    assert other[0]["base_image"] == "registry.example.com/k80-builder:v2"
    assert other[0]["reference"] != builds[1]["reference"]


def test_a_commit_is_taken_as_it_is_and_a_ref_that_does_not_resolve_is_refused():
    dummy, builds = fleet([host_plan("k80-01", [K80] * 4, overrides={"vllm_version": "f" * 40})])
    assert builds[1]["build_args"]["VLLM_COMMIT"] == "f" * 40
    with pytest.raises(FleetPlanError) as caught:
        fleet([host_plan("k80-01", [K80] * 4, overrides={"vllm_version": "missing"})])
    assert "The git ref missing does not resolve" in str(caught.value)


def test_a_source_tree_names_the_image_local_and_needs_no_git():
    dummy, builds = fleet([host_plan("k80-01", [K80] * 4, overrides={"vllm_version": "missing"})], source_dir="/src/vllm37")
    runtime = builds[1]
    assert runtime["reference"].startswith("gpufleet/vllm-k80:local-")
    assert runtime["source"] == "/src/vllm37"
    assert "VLLM_COMMIT" not in runtime["build_args"] and builds[0]["source"] is None


def test_prebuilt_images_are_pulled_and_built_by_nobody():
    plans, builds = fleet([host_plan("a40-01", [A40], UBUNTU)])
    assert builds == []
    image = plans["a40-01"]["image"]
    assert (image["transfer"], image["build_host"], image["builds"]) == ("pull", None, [])


def test_the_same_inputs_give_the_same_reference_and_any_change_another():
    one = fleet([host_plan("rtx-01", [RTX5090])])[1][0]["reference"]
    assert fleet([host_plan("rtx-01", [RTX5090])])[1][0]["reference"] == one
    assert fleet([host_plan("rtx-01", [RTX5090], overrides={"vllm_version": "0.16.0"})])[1][0]["reference"] != one
    assert fleet([host_plan("rtx-01", [RTX5090]), host_plan("a40-01", [A40], DEBIAN, {"variant": "cu128"})])[1][0]["reference"] != one
