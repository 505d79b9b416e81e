# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""One plan per host, from the facts, before anything on the host changes.

plan_host() decides everything the roles apply: the driver (branch, flavor, source, packages), the
CUDA toolkit, the container runtime, the image (variant, recipe, build arguments, reference) and the
service (ports, arguments, environment, its replicas pinned to GPUs or CPU cores, the router in front
of them). Every refusal is one HostPlanError sentence that names the host, the value and what to do.
The roles decide nothing this plan covers.
"""

from __future__ import annotations

import difflib

from ansible_collections.gpufleet.vllm.plugins.module_utils import _replicas, _vllm_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._toolkit_floor import pin_refusal
from ansible_collections.gpufleet.vllm.plugins.module_utils._unit_names import deployment_name
from ansible_collections.gpufleet.vllm.plugins.module_utils._cuda_toolkit import toolkit_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import PROBE_COMMAND, plan_injection
from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import CUDA, plan as driver_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._fabric_manager import fabric_manager_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    branch_max_cuda,
    dies_per_board,
    driver_max_cuda,
    version_key,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    RecipeError,
    registry_host,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._platforms import (
    DEB_ARCH,
    PLATFORMS,
    cuda_repository,
    platform_key,
)

# What gpufleet_plan may override, and which part of the plan reads it.
VLLM_KEYS = ("model_config", "variant", "tensor_parallel_size", "dtype", "quantization", "enforce_eager", "max_model_len",
             "gpu_memory_utilization", "vllm_version", "registry")
DRIVER_KEYS = ("driver_branch", "kernel_module_flavor", "driver_source")
TOOLKIT_KEYS = ("cuda_toolkit", "cuda_toolkit_version")
RUNTIME_KEYS = ("container_toolkit_version",)
IMAGE_KEYS = ("build_args", "builder_image")
SERVICE_KEYS = ("replicas",)
PLAN_KEYS = VLLM_KEYS + DRIVER_KEYS + TOOLKIT_KEYS + RUNTIME_KEYS + IMAGE_KEYS + SERVICE_KEYS

# The router that spreads requests over a host's replicas: vllm-router 0.1.17 on PyPI (2026-11), and its own
# default port for Prometheus metrics.
ROUTER_VERSION = "0.1.17"
ROUTER_METRICS_PORT = 29000

# nvidia-smi in a CUDA base image proves the container runtime; the image must not need a newer
# driver than the host's (gpu-driver-facts.md 2-3), so each driver CUDA gets the newest base image it runs.
SMOKE_IMAGES = (
    ("11.4", "nvidia/cuda:11.4.3-base-ubuntu20.04"),
    ("12.8", "nvidia/cuda:12.8.1-base-ubuntu24.04"),
)
_TOOLKIT_NAMES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                  "libnvidia-container1")


class HostPlanError(ValueError):
    """A plan that cannot work on this host; the text is one sentence naming the host, the value and what to do."""


def check_overrides(overrides):
    """The gpufleet_plan mapping, refused when it is no mapping or holds a key the plan does not know."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ValueError("gpufleet_plan must be a mapping of plan overrides, not %s." % type(overrides).__name__)
    for key in sorted(overrides):
        if key not in PLAN_KEYS:
            close = difflib.get_close_matches(str(key), PLAN_KEYS, n=1)
            hint = "did you mean %s? " % close[0] if close else ""
            raise ValueError("gpufleet_plan has no key %r: %sthe keys are %s." % (key, hint, ", ".join(sorted(PLAN_KEYS))))
    return overrides


def plan_host(host, facts, settings):
    """The whole plan of one host; raises HostPlanError.

    facts: gpus and gpu_host (gpu_facts), distribution, distribution_version, architecture, kernel,
    in_container, vcpus, memory_mib, docker_version (the installed engine's, None before Docker is installed) and
    docker_cdi_enabled (daemon.json sets features.cdi). settings: model, overrides (gpufleet_plan), cuda_repository_url, recipes
    (the variants this release has a recipe for), service (name, served_model_name, port, bind_address,
    router_metrics_port).
    """
    try:
        return _plan(facts, settings)
    except (ValueError, _vllm_plan.PlanError, RecipeError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise HostPlanError("%s: %s" % (host, message))


def _plan(facts, settings):
    overrides = check_overrides(settings.get("overrides"))
    platform = platform_key(facts.get("distribution"), facts.get("distribution_version"), facts.get("architecture"))
    gpu_host = facts.get("gpu_host") or {}
    driver = _driver_section(gpu_host, platform, facts, overrides, settings)
    vllm = _vllm_section(facts, settings, overrides, driver)
    image = _image_section(vllm, overrides, settings)
    placement = _placement(facts, vllm, overrides.get("replicas"))
    injection = _injection(platform, facts, overrides, placement)
    return {
        "platform": {"key": platform, "label": PLATFORMS[platform]["label"], "family": PLATFORMS[platform]["family"],
                     "vcpus": facts.get("vcpus"), "memory_mib": facts.get("memory_mib")},
        "gpus": [_gpu_summary(gpu) for gpu in facts.get("gpus") or []],
        "driver": driver,
        "toolkit": _toolkit_section(platform, facts, driver, overrides, settings),
        "runtime": dict(_runtime_section(platform, facts, driver, overrides),
                        gpu_injection={"method": injection["method"], "reason": injection["reason"]}),
        "vllm": vllm,
        "image": image,
        "service": _service_section(vllm, image, settings, placement, router_python=PLATFORMS[platform]["router_python"],
                                    driver=driver, device_args=injection["replica_args"]),
        "warnings": list(vllm["warnings"]) + list(placement.warnings),
    }


def _gpu_summary(gpu):
    return dict((key, gpu.get(key)) for key in ("pci_bus_id", "pci_device_id", "name", "compute_capability", "memory_mib", "uuid",
                                                "pci_bridges"))


def _driver_section(gpu_host, platform, facts, overrides, settings):
    """The driver the host gets, and the CUDA version it offers, which the image is chosen for."""
    for name, allowed in (("kernel_module_flavor", ("open", "proprietary")), ("driver_source", ("distribution", CUDA))):
        if overrides.get(name) not in (None, "") and overrides[name] not in allowed:
            raise ValueError("%s %r is none of %s: set one of them or leave it unset."
                             % (name, overrides[name], ", ".join(allowed)))
    driver = driver_plan(gpu_host, platform, kernel=facts.get("kernel"), branch=overrides.get("driver_branch"),
                         flavor=overrides.get("kernel_module_flavor"), source=overrides.get("driver_source"))
    driver["cuda_version"] = _driver_cuda(gpu_host, driver)
    driver["cuda_repository"] = None
    if driver.get("source") == CUDA:
        driver["cuda_repository"] = cuda_repository(platform, facts.get("architecture"), settings["cuda_repository_url"])
    # A container shares its host's kernel: no module is built, loaded or booted into there, so it
    # gets neither kernel headers nor an initramfs, and the driver is never loaded to be verified.
    driver["loadable"] = driver["action"] == "install" and not facts.get("in_container")
    if facts.get("in_container") and driver["action"] == "install":
        driver.update(kernel_packages=[], initramfs_command=None)
    # NVSwitches: Fabric Manager at exactly the driver's version, or a FabricManagerError (a ValueError) for the plan.
    driver["fabric_manager"] = fabric_manager_plan(gpu_host, platform, driver)
    return driver


def _driver_cuda(gpu_host, driver):
    if driver["action"] == "keep":
        return gpu_host.get("cuda_driver_version") or driver_max_cuda(gpu_host.get("driver_version"))
    if driver["action"] == "install":
        return branch_max_cuda(driver["branch"])
    return None


def _vllm_section(facts, settings, overrides, driver):
    options = dict((key, overrides[key]) for key in VLLM_KEYS if overrides.get(key) not in (None, ""))
    if driver["cuda_version"]:
        options["driver_cuda_version"] = driver["cuda_version"]
        options["driver_cuda_source"] = "%s driver of branch %s" % (
            "loaded" if driver["action"] == "keep" else "planned", driver["branch"])
    return _vllm_plan.plan_deployment(gpus=facts.get("gpus") or [], gpu_host=facts.get("gpu_host") or {},
                                      model=settings["model"], **options)


def _toolkit_section(platform, facts, driver, overrides, settings):
    if not _flag(overrides, "cuda_toolkit"):
        return {"enabled": False}
    if driver["action"] == "none":
        raise ValueError("cuda_toolkit is true but the host has no NVIDIA GPU, so no driver runs CUDA there: "
                         "set cuda_toolkit to false for it.")
    architectures = (facts.get("gpu_host") or {}).get("architectures")
    toolkit = toolkit_plan(platform, architectures, driver["branch"], overrides.get("cuda_toolkit_version"))
    toolkit.update(enabled=True, family=PLATFORMS[platform]["family"],
                   cuda_repository=cuda_repository(platform, facts.get("architecture"), settings["cuda_repository_url"]))
    return toolkit


def _flag(overrides, key):
    """A yes/no override as YAML or a string from the command line gives it."""
    value = overrides.get(key, False)
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "yes", "on", "1"):
        return True
    if str(value).strip().lower() in ("false", "no", "off", "0", ""):
        return False
    raise ValueError("%s must be true or false, not %r." % (key, value))


def _runtime_section(platform, facts, driver, overrides):
    """Docker Engine and its SDK on every host; NVIDIA's container toolkit where there are GPUs."""
    data = PLATFORMS[platform]
    nvidia = driver["action"] != "none"
    version = str(overrides.get("container_toolkit_version") or "")
    if version and not data["toolkit_pinning"]:
        raise ValueError("container_toolkit_version %s can be pinned on Debian and Ubuntu only, not on %s: "
                         "leave it unset for this host." % (version, data["label"]))
    refusal = pin_refusal(version)
    if refusal:
        raise ValueError(refusal)
    packages = ["%s=%s" % (name, version) for name in _TOOLKIT_NAMES] if version else ["nvidia-container-toolkit"]
    return {
        "install": data["family"],
        "docker_packages": list(data["docker_packages"]),
        "docker_sdk": data["docker_sdk"],
        "nvidia": nvidia,
        "toolkit_version": version,
        "toolkit_packages": packages if nvidia else [],
        "toolkit_hold": list(_TOOLKIT_NAMES) if nvidia and version else [],
        "deb_arch": DEB_ARCH.get(facts.get("architecture")),
        "smoke_image": _smoke_image(driver["cuda_version"]) if nvidia else None,
    }


def _injection(platform, facts, overrides, placement):
    """How the replicas get their GPUs, so that a systemd reload leaves them: decided from the installed Docker where
    there is one, else from the one the platform installs, so that the plan before and after Docker's install agree."""
    return plan_injection(facts.get("gpus") or [], [placed["gpus"] for placed in placement.replicas],
                          engine_version=facts.get("docker_version") or PLATFORMS[platform]["docker_engine"]["version"],
                          toolkit_version=overrides.get("container_toolkit_version") or None,
                          cdi_enabled=bool(facts.get("docker_cdi_enabled")))


def _smoke_image(driver_cuda):
    fitting = [image for cuda, image in SMOKE_IMAGES if version_key(cuda) <= version_key(driver_cuda)]
    return fitting[-1] if fitting else None


def _image_section(vllm, overrides, settings):
    variant = vllm["variant"]
    build = bool(vllm["build"])
    if build and variant not in settings.get("recipes", ()):
        raise ValueError("the plan builds variant %s, but this release of gpufleet.vllm has no recipe for it "
                         "(roles/vllm_image/files/%s/Dockerfile; it ships %s): set gpufleet_plan.variant to one of those, "
                         "or leave this host out." % (variant, variant, ", ".join(settings.get("recipes") or ["none"])))
    if overrides.get("builder_image") and variant != "k80":
        raise ValueError("gpufleet_plan.builder_image names the K80 builder image, but this host is planned on variant %s: "
                         "leave builder_image unset for it." % variant)
    name = vllm["image"] if build else _mirrored(vllm["image"], settings.get("registry_mirror"))
    return {
        "variant": variant,
        "vllm_version": vllm["vllm_version"],
        "cuda_version": vllm["cuda_version"],
        "build": build,
        "recipe": variant if build else None,
        "name": name,
        "build_args": _build_args(vllm, overrides.get("build_args")) if build else {},
        "overridden_build_args": sorted(str(key) for key in overrides.get("build_args") or {}) if build else [],
        "builder_image": overrides.get("builder_image") or None,
        "registry": registry_host(name.rsplit(":", 1)[0]),
        # Set for built images by the fleet plan, once every host's architectures are known.
        "reference": None if build else name,
    }


def _mirrored(image, mirror):
    """A Docker Hub image through the fleet's own registry mirror, when there is one."""
    if not mirror or registry_host(image.rsplit(":", 1)[0]):
        return image
    return "%s/%s" % (str(mirror).strip().rstrip("/"), image)


def _build_args(vllm, extra):
    """The derived build arguments with the operator's merged over them; the vLLM version stays the plan's,
    because the image tag names it."""
    if extra is not None and not isinstance(extra, dict):
        raise ValueError("gpufleet_plan.build_args must be a mapping of Docker build arguments, not %s." % type(extra).__name__)
    build_args = dict(vllm["build_args"])
    for key, value in (extra or {}).items():
        if key in ("VLLM_VERSION", "VLLM_REF") and key in build_args:
            raise ValueError("gpufleet_plan.build_args sets %s, which the image tag names: set gpufleet_plan.vllm_version "
                             "instead." % key)
        build_args[str(key)] = "" if value is None else str(value)
    return build_args


def _placement(facts, vllm, replicas):
    """Which GPUs or CPU cores each replica gets."""
    if vllm["variant"] == "cpu":
        memory = vllm["memory"]
        # Each replica holds its own copy of the weights and its own KV cache (VLLM_CPU_KVCACHE_SPACE).
        replica_gib = memory["kv_cache_gib_per_gpu"] + memory["weights_gib_per_gpu"]
        return _replicas.cpu_replicas(facts.get("vcpus"), facts.get("memory_mib"), replica_gib, replicas)
    return _replicas.gpu_replicas(facts.get("gpus") or [], vllm["tensor_parallel_size"], replicas)


def _service_section(vllm, image, settings, placement, *, router_python, driver, device_args):
    service = settings.get("service") or {}
    name = deployment_name(service.get("name"), service.get("served_model_name"))
    bind = service.get("bind_address") or "0.0.0.0"
    port = int(service.get("port") or 8000)
    model = settings["model"]
    local = str(model).startswith("/")
    replicas = [_replica(name, port, index, placed, device_args[index]) for index, placed in enumerate(placement.replicas)]
    router = {"unit": "vllm-%s-router" % name, "port": port, "bind_address": bind,
              "metrics_port": int(service.get("router_metrics_port") or ROUTER_METRICS_PORT), "version": ROUTER_VERSION,
              "python": router_python["interpreter"], "python_packages": list(router_python["packages"]),
              "ca_bundle": router_python["ca_bundle"]}
    _check_ports(router, replicas)
    return {
        "name": name,
        "served_model_name": service.get("served_model_name") or "vllm",
        "port": port,
        "bind_address": bind,
        # A server bound to every address answers on loopback; one bound to a LAN address only there.
        "probe_address": "127.0.0.1" if bind in ("0.0.0.0", "::") else bind,
        "image": image["reference"],
        "model": "/models/%s" % name if local else model,
        "model_source": model if local else None,
        "variant": vllm["variant"],
        "args": list(vllm["args"]),
        "env": dict(vllm["env"]),
        # The share of each GPU a replica takes, which the role checks is free before a replica starts.
        "gpu_memory_utilization": vllm["gpu_memory_utilization"],
        "replicas": replicas,
        "router": router,
        # Units the replicas start after (and want): CUDA on NVSwitch GPUs fails with error 802 until Fabric Manager runs.
        "after_units": [driver["fabric_manager"]["service"]] if driver.get("fabric_manager") else [],
    }


def _replica(service_name, port, index, placed, device_args):
    """One replica: the router's port is the service's, the replicas' the ports after it; device_args give it its GPUs,
    and gpu_probe is what its running container is asked after a systemd reload (none for a CPU replica)."""
    name = "%s-%d" % (service_name, index)
    return {"index": index, "name": name, "unit": "vllm-%s" % name, "port": port + 1 + index,
            "gpus": list(placed["gpus"]), "device_args": list(device_args),
            "gpu_probe": list(PROBE_COMMAND) if placed["gpus"] else [], "cpuset": placed["cpuset"], "env": dict(placed["env"])}


def _check_ports(router, replicas):
    taken = dict((replica["port"], "replica %d" % replica["index"]) for replica in replicas)
    taken[router["port"]] = "the router"
    if router["metrics_port"] in taken:
        raise ValueError("router_metrics_port %d is also the port of %s: set router_metrics_port, or port (the replicas take "
                         "the ports after it), so that they differ." % (router["metrics_port"], taken[router["metrics_port"]]))


def summary(host, plan):
    """One line per host: what it gets, for the operator to read before anything changes."""
    gpus = plan["gpus"]
    counts = {}
    for gpu in gpus:
        label = "%s (%s)" % (gpu["name"], gpu["compute_capability"] or "?")
        counts[label] = counts.get(label, 0) + 1
    driver = plan["driver"]
    vllm = plan["vllm"]
    memory = vllm["memory"]
    parts = [
        "%s on %s" % (", ".join("%d x %s" % (n, label) for label, n in sorted(counts.items())) or "no GPU",
                      plan["platform"]["label"]),
        _driver_words(driver),
        _image_words(plan["image"]),
        _build_words(plan["image"]["builds"]),
        "%s, max_model_len %s" % (vllm["dtype"], vllm["max_model_len"]),
        _replica_words(plan),
        "%s KV tokens per %s" % (memory["kv_cache_tokens_per_gpu"], "GPU" if gpus and vllm["variant"] != "cpu" else "replica"),
    ]
    if memory.get("budget_gib_per_gpu") is not None:
        parts.append("%.2f GiB budget per GPU, %.2f GiB weights, %.2f GiB peak" % (
            memory["budget_gib_per_gpu"], memory["weights_gib_per_gpu"], memory["peak_gib_per_gpu"]))
    return "%s: %s" % (host, "; ".join(part for part in parts if part))


def _replica_words(plan):
    service = plan["service"]
    replicas = service["replicas"]
    if plan["vllm"]["variant"] == "cpu":
        where = "on cores %s" % _listed([replica["cpuset"] for replica in replicas])
    else:
        where = _gpu_words(plan, replicas)
    return "%d replica%s %s behind the router on port %d" % (len(replicas), "" if len(replicas) == 1 else "s", where, service["port"])


def _gpu_words(plan, replicas):
    """"(TP 2, one per Tesla K80 board) on GPUs 0+1 and 2+3": GPUs by their index, which reads shorter than a UUID."""
    numbered = {}
    for index, gpu in enumerate(_replicas.in_bus_order(plan["gpus"])):
        numbered[str(index)] = numbered[gpu["uuid"] or str(index)] = (index, gpu)
    groups = [[numbered[device] for device in replica["gpus"]] for replica in replicas]
    size = plan["vllm"]["tensor_parallel_size"]
    boards = size > 1 and all(dies_per_board(gpu["pci_device_id"]) == size for group in groups for dummy, gpu in group)
    return "(TP %d%s) on GPU%s %s" % (size, ", one per %s board" % groups[0][0][1]["name"] if boards else "",
                                      "" if len(replicas) == size == 1 else "s",
                                      _listed(["+".join(str(index) for index, dummy in group) for group in groups]))


def _listed(words):
    return words[0] if len(words) == 1 else "%s and %s" % (", ".join(words[:-1]), words[-1])


def _image_words(image):
    words = "image %s %s" % (image["variant"], image["reference"] or image["name"])
    if not image["build"]:
        return words + " (pulled)"
    args = image["build_args"]
    how = {"build": "built here", "pull": "pulled from the registry after %s builds it",
           "copy": "copied from %s, which builds it"}[image["transfer"]]
    details = ["%s %s" % (name, args[name]) for name in ("TORCH_CUDA_ARCH_LIST", "MAX_JOBS") if name in args]
    return "%s (%s%s)" % (words, how.replace("%s", str(image["build_host"])), "".join(", " + part for part in details))


def _build_words(builds):
    if not builds:
        return None
    references = ", ".join(job["reference"] for job in builds)
    return "builds %s for the fleet (about %d min)" % (references, sum(job["minutes"] for job in builds))


def _driver_words(driver):
    if driver["action"] == "none":
        return "no driver"
    if driver["action"] == "keep":
        return "loaded driver of branch %s kept (CUDA %s)" % (driver["branch"], driver["cuda_version"])
    origin = "NVIDIA's CUDA repository" if driver["source"] == CUDA else "the distribution"
    return "driver %s %s from %s (CUDA %s)" % (driver["branch"], driver["flavor"], origin, driver["cuda_version"])
