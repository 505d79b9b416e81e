#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_plan
short_description: Plan everything a host gets, from its facts, before anything on it changes
version_added: 1.1.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Computes, without changing anything, the whole plan of one host - the NVIDIA driver (branch, kernel module flavor, source,
    packages, whether a reboot is expected), the optional CUDA toolkit, the container runtime, the vLLM deployment (variant, dtype,
    tensor parallelism, memory), the image (variant, recipe, build arguments) and the service - its replicas, each pinned to a group
    of GPUs or to CPU cores, the router in front of them, ports, arguments and environment.
  - "Built images are named by M(gpufleet.vllm.fleet_plan) once every host is planned: their architecture list spans the fleet."
  - The roles of the collection apply this plan and decide nothing it covers, so the driver the image is chosen for is exactly
    the driver the nvidia_driver role installs, pins included.
  - "A replica is one vLLM server over C(tensor_parallel_size) GPUs. Its GPUs are of one model and, on boards that carry two dies
    (Tesla K80, Tesla M60), the dies of one board, found by the PCI topology of M(gpufleet.vllm.gpu_facts); they are named by UUID
    when the facts know every GPU's, else by index in PCI bus order. On the C(cpu) variant the replicas split the host's cores."
  - Refuses, with one sentence naming the host, the value and what to do, what cannot work - GPUs no single driver drives, a pin
    the GPUs cannot run, a model that does not fit, a tensor-parallel group across two K80 boards or of different GPUs, more
    replicas than the GPUs, cores or memory hold, a variant this release has no recipe for, an unknown key in O(plan), an
    unsupported distribution.
  - "Runs on the controller (C(delegate_to: localhost)), because the model directory and the image recipes live there."
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  host:
    description: The inventory name of the host, named in every refusal.
    type: str
    required: true
  gpus:
    description: The C(gpufleet_gpus) fact of M(gpufleet.vllm.gpu_facts) for the host.
    type: list
    elements: dict
    required: true
  gpu_host:
    description: The C(gpufleet_gpu_host) fact of M(gpufleet.vllm.gpu_facts) for the host.
    type: dict
    required: true
  system:
    description:
      - The host's C(distribution), C(distribution_version), C(architecture), C(kernel), C(processor_vcpus) and C(memtotal_mb)
        (which size the image builds the host may make) as Ansible gathers them, and
        C(virtualization_role) and C(virtualization_type), which tell a container (no kernel module can be loaded there).
    type: dict
    required: true
  container_engine:
    description:
      - The C(gpufleet_container_engine) fact of M(gpufleet.vllm.gpu_facts) - the installed Docker Engine's C(docker_version)
        and whether its C(daemon.json) enables CDI devices (C(cdi_enabled)).
      - They decide how the replicas' containers get their GPUs so that a C(systemctl daemon-reload) leaves them - CDI devices
        from Docker 28.2 (or 25.0 with C(features.cdi)), else the C(nvidia) runtime with every device node passed to Docker.
        Before Docker is installed the plan decides from the version the platform's package source installs.
    type: dict
    default: {}
  model:
    description: Hugging Face model id, or the absolute path of a model directory on the controller.
    type: str
    required: true
  plan:
    description:
      - Overrides of what the plan would choose (the inventory's C(gpufleet_plan)); a key outside this list is refused.
      - vLLM - C(model_config) (config.json as a mapping, for models outside the built-in table that are no local directory),
        C(variant), C(tensor_parallel_size), C(dtype), C(quantization), C(enforce_eager), C(max_model_len), C(gpu_memory_utilization),
        C(vllm_version), C(registry) (see M(gpufleet.vllm.vllm_plan)).
      - Driver - C(driver_branch) (for example V(580)), C(kernel_module_flavor) (V(open) or V(proprietary)), C(driver_source)
        (V(distribution) or V(cuda)).
      - CUDA toolkit on the host - C(cuda_toolkit) (V(true) installs it), C(cuda_toolkit_version).
      - Container runtime - C(container_toolkit_version) (install and hold this version of NVIDIA's container toolkit; Debian and
        Ubuntu; a version without the fixes of the toolkit's container-escape CVEs, below 1.19.1, is refused).
      - Image - C(build_args), merged over the build arguments the plan derives (for example C(TORCH_CUDA_ARCH_LIST) or
        C(MAX_JOBS)); C(builder_image), a K80 builder image built elsewhere (a registry reference) that the K80 runtime image is
        built on instead of building one.
      - Service - C(replicas), how many vLLM servers the host runs behind its router; by default as many as the GPUs form groups
        of C(tensor_parallel_size) (one per GPU at 1, one per K80 board at 2), and one on the C(cpu) variant, where each replica
        takes its share of the cores.
    type: dict
    default: {}
  cuda_repository_url:
    description: Base URL of NVIDIA's CUDA repositories or of a mirror with their layout; the driver and the toolkit both use it.
    type: str
    default: https://developer.download.nvidia.com/compute/cuda/repos
  recipes_dir:
    description: Directory on the controller holding one C(<variant>/Dockerfile) per image recipe of this release.
    type: path
    required: true
  registry_mirror:
    description:
      - A registry that mirrors Docker Hub for the fleet (V(mirror.example.com:5000)); prebuilt images are pulled through it.
    type: str
  service:
    description:
      - C(name) (replica units C(vllm-<name>-<index>), router unit C(vllm-<name>-router)), C(served_model_name), C(port) and
        C(bind_address) of the router (the replicas listen on the ports after C(port)), and C(router_metrics_port) (default
        V(29000)), where the router serves its Prometheus metrics.
    type: dict
    default: {}
seealso:
  - module: gpufleet.vllm.fleet_plan
  - module: gpufleet.vllm.gpu_facts
  - module: gpufleet.vllm.vllm_plan
"""

EXAMPLES = r"""
---
- name: Detect the GPUs
  gpufleet.vllm.gpu_facts:

- name: Plan the host
  gpufleet.vllm.host_plan:
    host: "{{ inventory_hostname }}"
    gpus: "{{ ansible_facts.gpufleet_gpus }}"
    gpu_host: "{{ ansible_facts.gpufleet_gpu_host }}"
    system: "{{ ansible_facts }}"
    container_engine: "{{ ansible_facts.gpufleet_container_engine }}"
    model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
    plan: {driver_branch: "580", max_model_len: 2048}
    recipes_dir: "{{ playbook_dir }}/../roles/vllm_image/files"
  delegate_to: localhost
  become: false
  register: host_plan
"""

RETURN = r"""
plan:
  description:
    - The host's plan. Keys C(platform), C(gpus), C(driver), C(toolkit), C(runtime), C(vllm) (the plan of M(gpufleet.vllm.vllm_plan)),
      C(image), C(service) and C(warnings).
    - C(driver.action) is C(none) (no GPU), C(keep) (the loaded driver suits the GPUs) or C(install); C(driver.cuda_version) is the
      CUDA version the image is chosen for.
    - C(driver.rolls) is true when the install replaces a driver the host has loaded (an upgrade, a branch or a flavor change), which
      the site play then changes in the host's batch of the serving play instead of on every host at once.
    - C(driver.fabric_manager) is null unless the host has NVSwitches; then it names the Fabric Manager C(packages) to install and
      C(hold), C(install) (pinned to the branch, or to C(version) where the driver is kept) and the C(service) to enable, which
      C(service.after_units) lists for the replicas to start after.
    - C(image.build) says whether the image is built or pulled; C(image.reference) is the exact image for pulled ones, and null
      for built ones until M(gpufleet.vllm.fleet_plan) names them.
    - C(runtime.gpu_injection) says how the replicas' containers get their GPUs, C(method) (V(cdi) or V(runtime); null without
      GPU replicas) and the one-line C(reason).
    - C(service.replicas) lists per replica C(index), C(name), C(unit), C(port), C(gpus) (its GPUs by UUID, or by index in PCI bus
      order before the driver names them; empty on the cpu variant), C(device_args) (the C(docker run) arguments that give the
      container those GPUs, empty without GPU), C(cpuset) (null on GPU hosts) and C(env) (added to C(service.env));
      C(service.router) names the router's C(unit), C(port), C(bind_address), C(metrics_port), vllm-router C(version), and
      the C(python), C(python_packages) and C(ca_bundle) its virtual environment is made with.
  returned: success
  type: dict
  sample:
    platform: {key: debian12, label: Debian 12, family: apt}
    driver: {action: install, branch: "470", flavor: proprietary, source: distribution, cuda_version: "11.4"}
    image: {variant: k80, build: true, name: "gpufleet/vllm-k80:0.10.1-k80", reference: null}
    runtime:
      gpu_injection:
        method: runtime
        reason: >-
          GPUs injected by the nvidia runtime with their device nodes passed to Docker, whose device rules survive a systemd
          reload: Docker before 25.0 has no CDI devices
    service:
      name: tiny
      port: 8000
      args: ["--dtype", "float32", "--tensor-parallel-size", "2"]
      replicas:
        - {index: 0, name: tiny-0, unit: vllm-tiny-0, port: 8001, gpus: ["0", "1"], cpuset: null, env: {},
           device_args: [--runtime, nvidia, --env, "NVIDIA_VISIBLE_DEVICES=0,1", --env, "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                         --device, /dev/nvidia0, --device, /dev/nvidia1, --device, /dev/nvidiactl, --device, /dev/nvidia-uvm,
                         --device, /dev/nvidia-uvm-tools]}
        - {index: 1, name: tiny-1, unit: vllm-tiny-1, port: 8002, gpus: ["2", "3"], cpuset: null, env: {},
           device_args: [--runtime, nvidia, --env, "NVIDIA_VISIBLE_DEVICES=2,3", --env, "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                         --device, /dev/nvidia2, --device, /dev/nvidia3, --device, /dev/nvidiactl, --device, /dev/nvidia-uvm,
                         --device, /dev/nvidia-uvm-tools]}
      router: {unit: vllm-tiny-router, port: 8000, bind_address: 0.0.0.0, metrics_port: 29000, version: 0.1.17,
               python: python3, python_packages: [python3-venv], ca_bundle: /etc/ssl/certs/ca-certificates.crt}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import (
    HostPlanError,
    plan_host,
)

_CONTAINER_TYPES = ("docker", "container", "podman", "lxc", "containerd")


def _facts(params):
    system = params["system"]
    return {
        "gpus": params["gpus"],
        "gpu_host": params["gpu_host"],
        "distribution": system.get("distribution"),
        "distribution_version": system.get("distribution_version"),
        "architecture": system.get("architecture"),
        "kernel": system.get("kernel"),
        "vcpus": system.get("processor_vcpus"),
        "memory_mib": system.get("memtotal_mb"),
        "in_container": system.get("virtualization_role") == "guest" and system.get("virtualization_type") in _CONTAINER_TYPES,
        "docker_version": params["container_engine"].get("docker_version"),
        "docker_cdi_enabled": params["container_engine"].get("cdi_enabled"),
    }


def _local_model_config(host, model, overrides):
    """The config.json of a model directory on the controller, unless the plan gives one."""
    path = os.path.join(model, "config.json")
    if "model_config" in overrides or not model.startswith("/"):
        return overrides
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise HostPlanError("%s: the model directory %s has no readable config.json (%s): give a model directory with one, "
                            "or a Hugging Face id." % (host, model, to_native(exc)))
    return dict(overrides, model_config=config)


def _recipes(host, recipes_dir):
    if not os.path.isdir(recipes_dir):
        raise HostPlanError("%s: recipes_dir %s is no directory on the controller: point it at the vllm_image role's files "
                            "directory." % (host, recipes_dir))
    return sorted(name for name in os.listdir(recipes_dir) if os.path.isfile(os.path.join(recipes_dir, name, "Dockerfile")))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            gpus=dict(type="list", elements="dict", required=True),
            gpu_host=dict(type="dict", required=True),
            system=dict(type="dict", required=True),
            container_engine=dict(type="dict", default={}),
            model=dict(type="str", required=True),
            plan=dict(type="dict", default={}),
            cuda_repository_url=dict(type="str", default="https://developer.download.nvidia.com/compute/cuda/repos"),
            recipes_dir=dict(type="path", required=True),
            registry_mirror=dict(type="str"),
            service=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        settings = {
            "model": params["model"],
            "overrides": _local_model_config(params["host"], params["model"], params["plan"]),
            "cuda_repository_url": params["cuda_repository_url"],
            "recipes": _recipes(params["host"], params["recipes_dir"]),
            "service": params["service"],
            "registry_mirror": params["registry_mirror"],
        }
        plan = plan_host(params["host"], _facts(params), settings)
    except HostPlanError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan["warnings"]:
        module.warn("%s: %s" % (params["host"], warning))
    module.exit_json(changed=False, plan=plan)


if __name__ == "__main__":
    main()
