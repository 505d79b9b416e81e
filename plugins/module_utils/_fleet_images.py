# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""The images of the whole play, once every host has its own plan.

A built image serves every host planned on its variant, so its CUDA architecture list is the union of
theirs; one build host makes each distinct image once, and the other hosts pull it from the registry
or receive a copy. plan_fleet() decides all of that from the host plans; the caller supplies the two
things that need the outside world: resolving a git ref to a commit, and hashing the build inputs.
"""

from __future__ import annotations

import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import version_key
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    PARALLELISM_BUILD_ARGS,
    build_reference,
    registry_host,
    split_reference,
)

# nvcc on vLLM's CUTLASS and Marlin kernels peaks at about 4 GiB per compile job (vllm-facts section 4:
# MAX_JOBS=8 needs a workstation, 7 GB runners run out of memory); the system keeps 2 GiB for itself.
GIB_PER_BUILD_JOB = 4
BUILD_RESERVED_GIB = 2
# Recipes that compile CUDA code and so take MAX_JOBS.
COMPILING_RECIPES = frozenset(("k80-builder", "k80", "cu128"))
# Expected minutes of a build: (fixed, per CUDA architecture), vllm-facts sections 3-4: the K80 builder ~120
# (GCC ~60, Python ~15, PyTorch ~30-45), cu128 ~5 plus ~10 per architecture; the K80 runtime compiles
# vLLM for one architecture (~30, with its requirements); cpu measured at ~8 on the build machines.
BUILD_MINUTES = {"k80-builder": (120, 0), "k80": (30, 0), "cu128": (5, 10), "cpu": (8, 0)}
# The compute capabilities each compiling variant can be built for: (lowest, highest or None).
ARCH_RANGE = {"k80": ("3.7", "3.7"), "cu128": ("7.0", None)}
K80_BUILDER_REPOSITORY = "gpufleet/vllm-k80-builder"
K80_BUILDER_TAG = "torch2.4.1-cuda11.4"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_ARCH = re.compile(r"^\d+\.\d+$")


class FleetPlanError(ValueError):
    """A fleet the images cannot be planned for; the text is one sentence naming the host and what to do."""


def arch_list(capabilities):
    """"8.6;12.0" from compute capabilities, distinct and lowest first."""
    return ";".join(sorted(set(str(cc) for cc in capabilities if cc), key=version_key))


def max_jobs(vcpus, memory_mib):
    """Parallel compile jobs a build host can run without running out of memory, at least 1."""
    by_memory = int((float(memory_mib or 0) / 1024 - BUILD_RESERVED_GIB) // GIB_PER_BUILD_JOB)
    return max(1, min(int(vcpus or 1), by_memory))


def build_minutes(recipe, arch_count):
    fixed, per_arch = BUILD_MINUTES[recipe]
    return fixed + per_arch * max(arch_count, 1)


def check_arch_list(host, variant, value):
    """Refuse an architecture list the variant cannot compile."""
    entries = [entry.strip() for entry in str(value).replace(" ", ";").split(";") if entry.strip()]
    low, high = ARCH_RANGE.get(variant, (None, None))
    for entry in entries:
        if not _ARCH.match(entry):
            raise FleetPlanError("%s: TORCH_CUDA_ARCH_LIST %s holds %r, which is no compute capability such as 8.6: "
                                 "fix gpufleet_plan.build_args." % (host, value, entry))
        too_low = low and version_key(entry) < version_key(low)
        if too_low or (high and version_key(entry) > version_key(high)):
            wanted = "exactly %s" % low if low == high else "%s or newer" % low
            raise FleetPlanError("%s: TORCH_CUDA_ARCH_LIST %s names %s, which variant %s cannot build for (it needs %s): "
                                 "drop it from gpufleet_plan.build_args." % (host, value, entry, variant, wanted))
    if not entries:
        raise FleetPlanError("%s: TORCH_CUDA_ARCH_LIST is empty for variant %s: leave it out of gpufleet_plan.build_args "
                             "to derive it from the GPUs." % (host, variant))


def plan_fleet(hosts, settings, resolve_commit, digest_of):
    """The plans of every host with their images named, and the builds the play makes, in build order.

    hosts: [(host, plan)] in play order. settings: builders (hosts of the build group, play order),
    source_dir (a vLLM tree on the controller or None).
    resolve_commit(repository, ref) returns a 40-hex commit or raises FleetPlanError;
    digest_of(build) returns the hex digest of a build's inputs. Returns (plans, builds).
    """
    plans = dict(hosts)
    arches = _fleet_arches(hosts)
    builds = {}
    for host, plan in hosts:
        image = plan["image"]
        if not image["build"]:
            continue
        args = _host_build_args(host, image, arches)
        key = (image["name"], tuple(sorted((k, v) for k, v in args.items() if k not in PARALLELISM_BUILD_ARGS)))
        if key not in builds:
            builds[key] = _new_build(host, image, args, settings, resolve_commit)
        builds[key]["hosts"].append(host)
    ordered = _assign_build_hosts(list(builds.values()), plans, settings.get("builders") or [])
    builder = None
    for build in ordered:
        if build["recipe"] == "k80":
            build["build_args"]["BUILDER_IMAGE"] = build["builder_image"] or builder["reference"]
        build["reference"] = build_reference(build["name"], digest_of(build))
        builder = build if build["recipe"] == "k80-builder" else builder
    return _apply(plans, ordered), _public(ordered)


def _fleet_arches(hosts):
    """Per image name, the union of the architecture lists the planner derived for hosts that set none."""
    arches = {}
    for dummy, plan in hosts:
        image = plan["image"]
        args = image["build_args"]
        if image["build"] and "TORCH_CUDA_ARCH_LIST" in args and "TORCH_CUDA_ARCH_LIST" not in image["overridden_build_args"]:
            arches.setdefault(image["name"], set()).update(args["TORCH_CUDA_ARCH_LIST"].split(";"))
    return dict((name, arch_list(values)) for name, values in arches.items())


def _host_build_args(host, image, arches):
    """The host's build arguments with the fleet's architecture list, unless the operator set one."""
    args = dict(image["build_args"])
    overridden = image["overridden_build_args"]
    if "TORCH_CUDA_ARCH_LIST" in args:
        if "TORCH_CUDA_ARCH_LIST" not in overridden:
            args["TORCH_CUDA_ARCH_LIST"] = arches[image["name"]]
        check_arch_list(host, image["variant"], args["TORCH_CUDA_ARCH_LIST"])
    return args


def _new_build(host, image, args, settings, resolve_commit):
    """A build of the image, named by its source: a K80 runtime by the commit its ref resolves to, a build
    from the controller's tree as "local"."""
    repository = split_reference(image["name"])[0]
    source = settings.get("source_dir") if image["recipe"] in ("k80", "cu128") else None
    ref = args.pop("VLLM_REF", None)
    name = image["name"]
    if source:
        name = "%s:local" % repository
    elif ref is not None:
        args["VLLM_COMMIT"] = ref if _COMMIT.match(ref) else _resolve(host, args["VLLM_REPO"], ref, resolve_commit)
        name = "%s:%s" % (repository, args["VLLM_COMMIT"][:12])
    return {"name": name, "recipe": image["recipe"], "variant": image["variant"], "build_args": args,
            "hosts": [], "registry": image["registry"], "builder_image": image.get("builder_image"), "source": source}


def _resolve(host, repository, ref, resolve_commit):
    try:
        return resolve_commit(repository, ref)
    except FleetPlanError as exc:
        raise FleetPlanError("%s: %s" % (host, exc))


def _assign_build_hosts(builds, plans, builder_group):
    """Each build to a host of the build group (taking turns), else to its first host. A K80 runtime is built on the
    host that builds its builder image, which goes first and is built once for every runtime on it."""
    builders = [host for host in builder_group if host in plans]
    ordered = []
    k80_builder = None
    for index, build in enumerate(builds):
        build["build_host"] = builders[index % len(builders)] if builders else build["hosts"][0]
        if build["recipe"] == "k80" and not build["builder_image"]:
            if k80_builder is None:
                k80_builder = _k80_builder(build)
                _set_max_jobs(k80_builder, plans)
                ordered.append(k80_builder)
            build["build_host"] = k80_builder["build_host"]
        _set_max_jobs(build, plans)
        ordered.append(build)
    return ordered


def _set_max_jobs(build, plans):
    if build["recipe"] in COMPILING_RECIPES and "MAX_JOBS" not in build["build_args"]:
        platform = plans[build["build_host"]]["platform"]
        build["build_args"]["MAX_JOBS"] = str(max_jobs(platform.get("vcpus"), platform.get("memory_mib")))


def _k80_builder(runtime):
    """The builder stage of the K80 runtime builds: the same architectures, on the same build host, to the same registry."""
    repository = K80_BUILDER_REPOSITORY
    if runtime["registry"]:
        repository = "%s/%s" % (runtime["registry"], repository)
    return {"name": "%s:%s" % (repository, K80_BUILDER_TAG), "recipe": "k80-builder", "variant": "k80",
            "build_args": {"TORCH_CUDA_ARCH_LIST": runtime["build_args"]["TORCH_CUDA_ARCH_LIST"]},
            "hosts": [], "registry": runtime["registry"], "builder_image": None, "source": None,
            "build_host": runtime["build_host"]}


def _apply(plans, builds):
    for build in builds:
        build["minutes"] = build_minutes(build["recipe"], len(build["build_args"].get("TORCH_CUDA_ARCH_LIST", "").split(";")))
        build_host_plan = plans.get(build["build_host"])
        if build_host_plan is not None:
            build_host_plan["image"].setdefault("builds", []).append(_job(build))
        for host in build["hosts"]:
            image = plans[host]["image"]
            image.update(reference=build["reference"], build_args=dict(build["build_args"]), build_host=build["build_host"],
                         transfer=_transfer(host, build))
            plans[host]["service"]["image"] = build["reference"]
    for plan in plans.values():
        plan["image"].setdefault("builds", [])
        if not plan["image"]["build"]:
            plan["image"].update(build_host=None, transfer="pull")
    return plans


def _transfer(host, build):
    """How the image reaches a host: it is built there, pulled from the registry, or copied from the build host."""
    if host == build["build_host"]:
        return "build"
    return "pull" if registry_host(split_reference(build["reference"])[0]) else "copy"


def _job(build):
    return {"reference": build["reference"], "name": build["name"], "recipe": build["recipe"], "variant": build["variant"],
            "build_args": dict(build["build_args"]), "minutes": build["minutes"], "source": build["source"],
            "hosts": list(build["hosts"]), "base_image": build["builder_image"]}


def _public(builds):
    return [dict(_job(build), build_host=build["build_host"]) for build in builds]
