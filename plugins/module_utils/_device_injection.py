# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""How a replica's container gets its GPUs, so that a `systemctl daemon-reload` does not take them away.

Under Docker's systemd cgroup driver, GPUs that the nvidia runtime's hook attaches (`docker run --gpus`) are missing
from the device rules systemd keeps for the container's scope; a daemon-reload rewrites the cgroup from those rules and
the container loses its GPUs: nvidia-smi says "Failed to initialize NVML: Unknown Error" until the container is
recreated (NVIDIA/nvidia-container-toolkit#48, #1227). Two injections keep the rules, because Docker writes them itself:
CDI, where Docker adds the devices a CDI specification names, and the nvidia runtime with every device node also passed
with --device. Pure data and functions; the host plan picks the injection and the service role applies it.
"""

from __future__ import annotations

import json
import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import upstream_version
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import version_key
from ansible_collections.gpufleet.vllm.plugins.module_utils._replicas import in_bus_order

CDI = "cdi"
RUNTIME = "runtime"

# Docker Engine 25.0 added CDI devices behind "features": {"cdi": true} in daemon.json; 28.2 enables them by default
# (Docker 25.0 release notes, moby/moby#49963).
DOCKER_CDI_FIRST = "25.0"
DOCKER_CDI_BY_DEFAULT = "28.2"
# `nvidia-ctk cdi generate` exists from toolkit 1.12 but named the GPUs by index only; from 1.15 one specification names
# each GPU by index and by UUID (NVIDIA/nvidia-container-toolkit#314), and the plan names GPUs by UUID once the driver
# has told them.
TOOLKIT_CDI_BOTH_NAMES = "1.15"
CDI_GPU_KIND = "nvidia.com/gpu"

# The nodes every CUDA process opens besides its GPUs' own /dev/nvidia<minor>.
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
# Exists only where the nvidia-modeset module is loaded, which headless data-center hosts leave out (the H200 machine
# has none), and Docker refuses to start a container with a --device that does not exist.
OPTIONAL_CONTROL_NODES = ("/dev/nvidia-modeset",)
# The nvidia runtime mounts only the driver libraries these capabilities name; the default, utility, has no CUDA.
DRIVER_CAPABILITIES = "compute,utility"

# What nvidia-smi prints in a container whose device rules a reload dropped (NVIDIA/nvidia-container-toolkit#48).
LOST_GPUS_MESSAGE = "Failed to initialize NVML: Unknown Error"
# The probe each running replica's container gets after a reload: one "GPU <index>: <name> (UUID: ...)" line per GPU.
PROBE_COMMAND = ("nvidia-smi", "-L")
_LISTED_GPU = re.compile(r"^GPU \d+: ", re.M)
# `dockerd --version`: "Docker version 20.10.24+dfsg1, build 5d6db84".
_DOCKERD_VERSION = re.compile(r"^Docker version ([^\s,]+)")


class DeviceInjectionError(ValueError):
    """A replica's GPUs that the host's facts do not show; the text is one sentence."""


def _upstream(text):
    """The upstream part of a version as `docker version` or a package manager writes it; None for none."""
    return upstream_version(text) if text not in (None, "") else None


def engine_facts(dockerd_version_output, daemon_json_text):
    """What the choice reads from a host: {"docker_version": the installed engine's, or None, "cdi_enabled": bool}.

    dockerd_version_output: what `dockerd --version` printed, None where there is no dockerd; daemon_json_text: the
    content of /etc/docker/daemon.json, None where there is none. A daemon.json that is no JSON object enables nothing;
    the container_runtime role refuses it with its own sentence.
    """
    found = _DOCKERD_VERSION.match((dockerd_version_output or "").strip())
    try:
        daemon = json.loads(daemon_json_text) if daemon_json_text else {}
    except ValueError:
        daemon = {}
    features = daemon.get("features") if isinstance(daemon, dict) else None
    return {"docker_version": found.group(1) if found else None,
            "cdi_enabled": isinstance(features, dict) and features.get("cdi") is True}


def choose_injection(engine_version, toolkit_version=None, *, cdi_enabled=False):
    """The injection for a host's replicas: {"method": "cdi" or "runtime", "reason": one line for the plan summary}.

    engine_version: Docker Engine's version as `docker version` or the package manager writes it ("20.10.24+dfsg1",
    "5:28.3.2-1~debian.12~bookworm"); None while Docker is neither installed nor known as a package candidate.
    toolkit_version: nvidia-container-toolkit's ("1.17.8-1"); None for an unpinned toolkit, which is NVIDIA's current
    release. cdi_enabled: whether daemon.json sets features.cdi, which Docker 25.0 to 28.1 need for CDI devices.
    """
    engine, toolkit = _upstream(engine_version), _upstream(toolkit_version)
    # The reasons name the versions' ranges, not the engine's exact version: the plan of a bare host decides from the
    # version its package source installs, the next run's from the installed one, and both must read the same.
    if engine is None:
        return _runtime("Docker's version is not known before it is installed, and the nvidia runtime works with every "
                        "engine")
    if version_key(engine) < version_key(DOCKER_CDI_FIRST):
        return _runtime("Docker before %s has no CDI devices" % DOCKER_CDI_FIRST)
    if version_key(engine) < version_key(DOCKER_CDI_BY_DEFAULT) and not cdi_enabled:
        return _runtime("Docker before %s takes CDI devices only with features.cdi in daemon.json" % DOCKER_CDI_BY_DEFAULT)
    if toolkit is not None and version_key(toolkit) < version_key(TOOLKIT_CDI_BOTH_NAMES):
        return _runtime("nvidia-container-toolkit %s names GPUs by index only in its CDI specification (by UUID too from %s)"
                        % (toolkit, TOOLKIT_CDI_BOTH_NAMES))
    enabled = ("Docker %s or newer" % DOCKER_CDI_BY_DEFAULT if version_key(engine) >= version_key(DOCKER_CDI_BY_DEFAULT)
               else "features.cdi in daemon.json")
    return {"method": CDI, "reason": "GPUs injected as CDI devices, which %s enables, and whose device rules survive a "
            "systemd reload" % enabled}


def _runtime(why):
    return {"method": RUNTIME, "reason": "GPUs injected by the nvidia runtime with their device nodes passed to Docker, whose "
            "device rules survive a systemd reload: %s" % why}


def docker_device_args(method, gpu_facts, device_ids, present_nodes=None):
    """The `docker run` arguments that give one replica its GPUs; [] for a replica without GPU.

    gpu_facts: the gpufleet_gpus fact; device_ids: the replica's GPUs as the plan names them (UUIDs, or indices in PCI
    bus order while the driver has named none); present_nodes: the /dev/nvidia* paths that exist on the host, None
    where unknown, which leaves out the nodes only some hosts have.
    """
    device_ids = [str(device) for device in device_ids]
    if not device_ids:
        return []
    if method == CDI:
        return [arg for device in device_ids for arg in ("--device", "%s=%s" % (CDI_GPU_KIND, device))]
    minors = _minor_numbers(gpu_facts)
    for device in device_ids:
        if device not in minors:
            raise DeviceInjectionError(
                "The replica's GPU %s is none of this host's GPUs (%s): gather facts on the host again and plan anew."
                % (device, ", ".join(sorted(minors)) or "none"))
    nodes = ["/dev/nvidia%d" % minors[device] for device in device_ids] + list(CONTROL_NODES)
    nodes += [node for node in OPTIONAL_CONTROL_NODES if node in (present_nodes or ())]
    args = ["--runtime", "nvidia", "--env", "NVIDIA_VISIBLE_DEVICES=%s" % ",".join(device_ids),
            "--env", "NVIDIA_DRIVER_CAPABILITIES=%s" % DRIVER_CAPABILITIES]
    return args + [arg for node in nodes for arg in ("--device", node)]


def _minor_numbers(gpu_facts):
    """Each GPU's minor number by both names the plan may use for it, its UUID and its index in PCI bus order.

    Without the driver's answer the index stands in: the driver numbers the GPUs as it probes them, which is PCI bus
    order on the hosts seen so far (the H200 machine's one GPU is minor 0), though NVIDIA promises no order.
    """
    minors = {}
    for index, gpu in enumerate(in_bus_order(gpu_facts)):
        minor = gpu.get("minor_number")
        minor = index if minor is None else int(minor)
        minors[str(index)] = minor
        if gpu.get("uuid"):
            minors[gpu["uuid"]] = minor
    return minors


def plan_injection(gpu_facts, replica_gpus, *, engine_version, toolkit_version=None, cdi_enabled=False, present_nodes=None):
    """How the replicas of a host get their GPUs: {"method", "reason", "replica_args"}; raises DeviceInjectionError.

    replica_gpus: per replica the device ids the plan gave it; replica_args: per replica the `docker run` arguments,
    which replace `--gpus`. A host whose replicas have no GPU gets method and reason None. The other arguments are
    those of choose_injection() and docker_device_args().
    """
    if not any(replica_gpus):
        return {"method": None, "reason": None, "replica_args": [[] for dummy in replica_gpus]}
    chosen = choose_injection(engine_version, toolkit_version, cdi_enabled=cdi_enabled)
    chosen["replica_args"] = [docker_device_args(chosen["method"], gpu_facts, devices, present_nodes) for devices in replica_gpus]
    return chosen


def recovery_after_reload(probes):
    """Which replicas must be recreated after a systemd reload, from a GPU probe inside each running container.

    probes: per replica {"replica": its unit, "gpus": how many GPUs it was given, "rc": the exit status of
    `docker exec <unit> nvidia-smi -L`, "output": its stdout and stderr together}. Returns {"recreate": [...],
    "unknown": [...]}, each item {"replica", "reason"}: replicas whose containers lost GPUs (restarting the unit
    recreates the container), and replicas whose probe failed otherwise, which a new container is not known to help.
    """
    verdicts = {"recreate": [], "unknown": []}
    for probe in probes:
        verdict = _verdict(probe)
        if verdict is not None:
            verdicts[verdict[0]].append({"replica": probe["replica"], "reason": verdict[1]})
    return verdicts


def _verdict(probe):
    replica, output, expected = probe["replica"], probe.get("output") or "", int(probe["gpus"])
    if LOST_GPUS_MESSAGE in output:
        return ("recreate", "%s lost its GPUs: nvidia-smi in its container says \"%s\", as it does once a systemd reload "
                "has dropped the container's device rules; restart the unit to recreate the container."
                % (replica, LOST_GPUS_MESSAGE))
    if probe.get("rc") != 0:
        first = output.strip().splitlines()[0] if output.strip() else "no output"
        return ("unknown", "The GPU probe in %s failed with exit status %s (%s), which is not the reload's NVML error; "
                "look at `journalctl -u %s` before recreating it." % (replica, probe.get("rc"), first, replica))
    listed = len(_LISTED_GPU.findall(output))
    if listed < expected:
        return ("recreate", "%s sees %d of its %d GPUs; restart the unit to recreate the container with all of them."
                % (replica, listed, expected))
    return None
