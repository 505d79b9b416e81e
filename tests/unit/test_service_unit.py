# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The replica unit (roles/vllm_service/templates/vllm.service.j2) rendered from real host plans: how its `docker run`
gives the container its GPUs. Rendered with Jinja2 as the template module sets it up (trim_blocks), with the collection's
filters and plain stand-ins for Ansible's three the unit uses (importing Ansible's templating here would change how
other tests' modules report warnings); the unit itself runs only in the molecule scenarios, which have no GPU."""

from __future__ import annotations

import os
import re
import shlex

import jinja2
import pytest

from ansible_collections.gpufleet.vllm.plugins.filter.service_limits import FilterModule as CollectionFilters
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import merge_gpus, summarize_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import plan_host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "roles", "vllm_service", "templates", "vllm.service.j2")

K80 = "0x102d"
H100 = "0x2330"
DEBIAN = {"distribution": "Debian", "distribution_version": "12.7", "kernel": "6.1.0-40-amd64"}
ROCKY = {"distribution": "Rocky", "distribution_version": "8.10", "kernel": "4.18.0-553.el8_10.x86_64"}
# What the role's defaults and vars give the template, as far as the unit's text goes.
ROLE_VARS = {
    "ansible_managed": "Ansible managed", "_vllm_service_timeout_start_sec": 660, "_vllm_service_timeout_stop_sec": 45,
    "vllm_service_restart_sec": 10, "vllm_service_shm_size": "", "_vllm_service_env_file": "/etc/gpufleet/secrets/vllm-tiny.env",
    "_vllm_service_hf_cache": "/var/lib/gpufleet/huggingface", "vllm_service_data_dir": "/var/lib/gpufleet",
    "_vllm_service_local_model": False, "_vllm_service_model_dir": "/var/lib/gpufleet/models/tiny", "vllm_service_extra_args": [],
    "_vllm_service_wait_ready": "/usr/local/libexec/gpufleet/vllm-wait-ready", "vllm_service_start_timeout": 600,
    "vllm_service_stop_timeout": 30,
}


def render(service, replica):
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters.update(comment=lambda text: "# %s" % text, combine=lambda first, second: dict(first, **second),
                               bool=bool)
    environment.filters.update(("gpufleet.vllm." + name, function) for name, function in CollectionFilters().filters().items())
    with open(TEMPLATE, encoding="utf-8") as handle:
        template = environment.from_string(handle.read())
    return template.render(dict(ROLE_VARS, vllm_service_plan=service, _vllm_service_replica=replica))


def exec_start(unit):
    """The ExecStart command line of a rendered unit as its words."""
    return shlex.split(re.search(r"^ExecStart=(.*)$", unit.replace("\\\n", " "), re.M).group(1))


def docker_run_options(words):
    """The options of `docker run` before the image, as (flag, value) pairs; --rm and --init take no value."""
    options, index = [], words.index("run") + 1
    while words[index].startswith("--"):
        if words[index] in ("--rm", "--init"):
            index += 1
            continue
        options.append((words[index], words[index + 1]))
        index += 2
    return options


def service_of(device_ids, system, overrides=None, vcpus=8):
    gpus = merge_gpus([{"pci_bus_id": "0000:%02x:00.0" % (5 + index), "pci_device_id": device_id}
                       for index, device_id in enumerate(device_ids)])
    facts = dict(system, gpus=gpus, gpu_host=summarize_host(gpus), architecture="x86_64", in_container=False, vcpus=vcpus,
                 memory_mib=65536)
    settings = {"model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "overrides": overrides or {}, "cuda_repository_url": "https://cuda",
                "recipes": ["cpu", "cu128", "k80"], "service": {"name": "tiny"}, "registry_mirror": None}
    service = plan_host("gpu-01", facts, settings)["service"]
    # The fleet plan names built images; the unit only needs a name.
    return dict(service, image=service["image"] or "gpufleet/vllm-%s:test" % service["variant"])


def gpu_options(options):
    return [(flag, value) for flag, value in options if flag in ("--gpus", "--runtime", "--device")
            or (flag == "--env" and value.split("=")[0] in ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"))]


def test_a_k80_replica_gets_the_nvidia_runtime_and_its_device_nodes():
    service = service_of([K80] * 4, DEBIAN)
    options = docker_run_options(exec_start(render(service, service["replicas"][2])))
    assert gpu_options(options) == [
        ("--runtime", "nvidia"), ("--env", "NVIDIA_VISIBLE_DEVICES=2"), ("--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"),
        ("--device", "/dev/nvidia2"), ("--device", "/dev/nvidiactl"), ("--device", "/dev/nvidia-uvm"),
        ("--device", "/dev/nvidia-uvm-tools")]


def test_an_h100_tp2_replica_gets_its_two_gpus_as_cdi_devices():
    service = service_of([H100] * 2, ROCKY, {"tensor_parallel_size": 2})
    assert len(service["replicas"]) == 1
    options = docker_run_options(exec_start(render(service, service["replicas"][0])))
    assert gpu_options(options) == [("--device", "nvidia.com/gpu=0"), ("--device", "nvidia.com/gpu=1")]


@pytest.mark.parametrize("system", [DEBIAN, ROCKY])
def test_no_replica_asks_for_gpus_with_gpus_flag(system):
    service = service_of([H100] * 2, system)
    for replica in service["replicas"]:
        assert "--gpus" not in exec_start(render(service, replica))


def test_a_cpu_replica_renders_without_device_arguments():
    service = service_of([], DEBIAN, {"replicas": 2}, vcpus=2)
    unit = render(service, service["replicas"][1])
    # Exactly as before the GPU injection moved into the plan.
    start = unit[unit.index("ExecStart="):unit.index("ExecStartPost=")]
    assert start == (
        "ExecStart=/usr/bin/docker run --rm --init --name vllm-tiny-1 \\\n"
        "    --ipc host \\\n"
        "    --cpuset-cpus 1 \\\n"
        "    --publish 0.0.0.0:8002:8000 \\\n"
        "    --env-file /etc/gpufleet/secrets/vllm-tiny.env \\\n"
        "%s"
        "    --volume /var/lib/gpufleet/huggingface:/root/.cache/huggingface \\\n"
        "    --volume /var/lib/gpufleet/vllm-cache/tiny-1:/root/.cache/vllm \\\n"
        "    gpufleet/vllm-cpu:test \\\n"
        "    --model TinyLlama/TinyLlama-1.1B-Chat-v1.0 \\\n"
        "    --served-model-name vllm \\\n"
        "    --host 0.0.0.0 --port 8000%s\n" % (
            "".join("    --env %s=%s \\\n" % item for item in sorted(dict(service["env"], **service["replicas"][1]["env"]).items())),
            "".join(" " + arg for arg in service["args"])))
    assert not [flag for flag, dummy in docker_run_options(exec_start(unit)) if flag in ("--gpus", "--runtime", "--device")]
