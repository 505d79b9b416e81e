#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_memory
short_description: Say what keeps the replicas of a service plan from the GPU memory they will ask for
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - The preflight before a replica of vLLM is (re)started. vLLM refuses to start with C(Free memory on device ... is less than
    desired GPU memory utilization) when something else holds GPU memory, and only once its image runs; this module says so
    before the old server is stopped.
  - Reads each GPU's total and free memory and the compute processes holding it, from NVML (through the Python module
    C(pynvml)) or, when NVML does not answer, from C(nvidia-smi); for each process its name (C(/proc/<pid>/comm)) and the
    Docker container it runs in (its cgroup, then one C(docker inspect) of all such containers for their names and whether
    they run).
  - Checks each replica's GPUs against the memory the replica will ask for, total memory times O(gpu_memory_utilization).
    The memory of the replica's own container counts as the replica's. A process whose container no longer runs (a vLLM
    engine core that outlived its server) is an orphan, returned in RV(orphans); another container of this deployment (a
    replica or a unit in O(retiring)) that holds memory a replica needs is returned in RV(stop_first); anything else in the
    way is a sentence in RV(problems) naming the process and its memory.
  - Only reads. It neither fails on RV(problems) nor kills or stops anything; the role acts on what it returns. It fails
    only on options it cannot check against, with one sentence.
  - Where neither NVML nor C(nvidia-smi) answers, for example before the driver is loaded, nothing is checked and
    RV(source) is V(none). That is safe, because no process can hold GPU memory without a loaded driver, and vLLM cannot
    start on a host whose driver answers neither.
  - A process whose container Docker does not tell about (Docker missing, its daemon down) is named by its container's short
    ID and taken for running, so it is never returned as an orphan; a sentence in RV(notes) says so.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  replicas:
    description:
      - The service replicas of the host's plan (C(service.replicas) of M(gpufleet.vllm.host_plan)); each one's C(unit), the
        name of its systemd unit and of its container, and C(gpus), its GPUs by UUID or by index, are read.
    type: list
    elements: dict
    required: true
  gpu_memory_utilization:
    description: The fraction of each GPU's memory a replica asks for, the plan's C(vllm.gpu_memory_utilization).
    type: float
    required: true
  retiring:
    description: Units of this deployment the plan no longer has, whose containers may still hold GPU memory.
    type: list
    elements: str
    default: []
  use_nvml:
    description:
      - Ask NVML through the Python module C(pynvml) when it can be imported.
    type: bool
    default: true
  use_nvidia_smi:
    description:
      - Run C(nvidia-smi) when NVML did not answer and the command exists.
    type: bool
    default: true
requirements:
  - nvidia-ml-py (optional; the Python module C(pynvml)) on the managed host, else C(nvidia-smi).
notes:
  - Process IDs are the host's; run the module on the host, not in a container of its own PID namespace, or processes are
    named V(null) and taken for foreign.
  - Graphics processes (an X server) hold GPU memory too but are no compute processes; a GPU short of memory that names no
    process says so in its sentence.
seealso:
  - module: gpufleet.vllm.host_plan
  - module: gpufleet.vllm.gpu_facts
"""

EXAMPLES = r"""
---
- name: Read what holds the memory of the replicas' GPUs
  gpufleet.vllm.gpu_memory:
    replicas: "{{ host_plan.plan.service.replicas }}"
    gpu_memory_utilization: "{{ host_plan.plan.vllm.gpu_memory_utilization }}"
  register: gpu_memory

- name: Refuse before the old servers are stopped
  ansible.builtin.fail:
    msg: "{{ gpu_memory.problems | join(' ') }}"
  when: gpu_memory.problems | length > 0

- name: Kill orphaned engine cores
  ansible.builtin.command: kill -9 {{ gpu_memory.orphans | join(' ') }}
  when: gpu_memory.orphans | length > 0
  changed_when: true
"""

RETURN = r"""
source:
  description: What answered, V(nvml), V(nvidia-smi), or V(none) where neither did and nothing was checked.
  returned: always
  type: str
  sample: nvml
gpus:
  description:
    - Per GPU its C(index), C(uuid), C(total_mib), C(free_mib) and C(processes), each with C(pid), C(used_mib), C(name)
      (V(null) where C(/proc) does not show the process), C(container) (its name, or its short ID where Docker does not
      know it; V(null) outside containers) and C(container_running). Empty where RV(source) is V(none).
  returned: always
  type: list
  elements: dict
  sample:
    - index: 0
      uuid: GPU-e9407cc8-faaf-db84-f3d6-f1a5c74161cd
      total_mib: 143771
      free_mib: 122057
      processes:
        - {pid: 471, used_mib: 21090, name: python3, container: null, container_running: false}
problems:
  description: One sentence per process (or GPU) that keeps a replica from the memory it asks for, and what to do; empty when
    all fit.
  returned: always
  type: list
  elements: str
  sample:
    - "GPU 0 (GPU-e9407cc8-faaf-db84-f3d6-f1a5c74161cd) can give vllm-tiny-0 only 119.2 GiB of its 140.4 GiB where it needs
      126.4 GiB (gpu_memory_utilization 0.90), because pid 471 (python3) holds 20.6 GiB; stop that process, or set
      gpu_memory_utilization to at most 0.84."
orphans:
  description: Pids on the replicas' GPUs whose container no longer runs, to kill before the replicas start.
  returned: always
  type: list
  elements: int
  sample: [4242]
stop_first:
  description: Units of this deployment whose containers hold memory a replica needs, to stop before the replicas start.
  returned: always
  type: list
  elements: str
  sample: [vllm-tiny-1]
notes:
  description: One sentence per orphan and per unit to stop first, and where nothing or not all could be read, why.
  returned: always
  type: list
  elements: str
  sample:
    - "vllm-tiny-1 of this deployment holds 30.0 GiB on GPU 1 (GPU-5a1c0f3e-0000-4000-8000-000000000001), which vllm-tiny-0
      needs; it is stopped before the replicas start."
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_memory_check import check_gpu_memory
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_processes import (
    DOCKER_INSPECT_ARGS,
    NVIDIA_SMI_APP_ARGS,
    NVIDIA_SMI_GPU_ARGS,
    container_id,
    containers_from_inspect,
    gpu_pids,
    parse_nvidia_smi_memory,
    query_nvml_memory,
    with_owners,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_files import read_text

try:
    import pynvml
except ImportError:
    pynvml = None

# A constant so that tests point it at a fake tree.
PROC = "/proc"


def _first_line(text):
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else "no output"


def _nvidia_smi(module):
    """(gpus, None) as nvidia-smi gives them, or (None, why it did not)."""
    if not module.params["use_nvidia_smi"]:
        return None, "not asked"
    binary = module.get_bin_path("nvidia-smi")
    if not binary:
        return None, "not found in PATH"
    outputs = []
    for args in (NVIDIA_SMI_GPU_ARGS, NVIDIA_SMI_APP_ARGS):
        rc, stdout, stderr = module.run_command([binary] + list(args))
        if rc != 0:
            return None, "exited with %d: %s" % (rc, _first_line(stderr or stdout))
        outputs.append(stdout)
    return parse_nvidia_smi_memory(*outputs), None


def _gather(module):
    """(source, gpus, notes): the GPUs' memory and processes from NVML, else from nvidia-smi."""
    nvml_error = "not asked"
    if module.params["use_nvml"]:
        gpus, nvml_error = query_nvml_memory(pynvml)
        if gpus is not None:
            return "nvml", gpus, []
    gpus, smi_error = _nvidia_smi(module)
    if gpus is not None:
        return "nvidia-smi", gpus, []
    return "none", [], ["Neither NVML (%s) nor nvidia-smi (%s) answered, so no GPU memory was checked." % (nvml_error, smi_error)]


def _inspect(module, ids):
    """(containers_from_inspect() of one docker inspect of the container ids, notes); containers None where Docker did
    not answer."""
    if not ids:
        return {}, []
    binary = module.get_bin_path("docker")
    stdout, why = "", "docker is not in PATH"
    if binary:
        rc, stdout, stderr = module.run_command([binary] + list(DOCKER_INSPECT_ARGS) + ids)
        why = "docker inspect exited with %d: %s" % (rc, _first_line(stderr or stdout))
    containers = containers_from_inspect(ids, stdout)
    if containers is not None:
        return containers, []
    return None, ["Docker did not answer (%s), so containers %s are named by their IDs and taken for running; no process of "
                  "theirs is returned as an orphan." % (why, ", ".join(container[:12] for container in ids))]


def _owners(module, gpus):
    """(gpus with each process's name and container, notes)."""
    pids = gpu_pids(gpus)
    names = dict((pid, (read_text(os.path.join(PROC, str(pid), "comm")) or "").strip() or None) for pid in pids)
    container_ids = dict((pid, container_id(read_text(os.path.join(PROC, str(pid), "cgroup")))) for pid in pids)
    containers, notes = _inspect(module, sorted(set(container for container in container_ids.values() if container)))
    return with_owners(gpus, names, container_ids, containers), notes


def _replica_refusal(replicas):
    """One sentence for the first replica without a unit and a list of GPUs; None when each has both."""
    for position, replica in enumerate(replicas):
        if not (isinstance(replica.get("unit"), str) and replica["unit"] and isinstance(replica.get("gpus"), list)):
            return ("replicas[%d] needs unit (its unit name) and gpus (a list of GPU UUIDs or indexes), as the plan's "
                    "service.replicas gives them; it has the keys %s." % (position, ", ".join(sorted(replica)) or "none"))
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            replicas=dict(type="list", elements="dict", required=True),
            gpu_memory_utilization=dict(type="float", required=True),
            retiring=dict(type="list", elements="str", default=[]),
            use_nvml=dict(type="bool", default=True),
            use_nvidia_smi=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    refusal = _replica_refusal(params["replicas"])
    if refusal:
        module.fail_json(msg=refusal)
    source, gpus, notes = _gather(module)
    if gpus:
        gpus, docker_notes = _owners(module, gpus)
        notes.extend(docker_notes)
    # With source none no replica is checked, but gpu_memory_utilization still is.
    replicas = params["replicas"] if source != "none" else []
    try:
        check = check_gpu_memory(gpus, replicas, params["gpu_memory_utilization"], params["retiring"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, source=source, gpus=gpus, problems=list(check.problems), orphans=list(check.orphans),
                     stop_first=list(check.stop_first), notes=notes + list(check.notes))


if __name__ == "__main__":
    main()
