#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: port_preflight
short_description: Refuse a service plan whose ports another program listens on
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Checks, before anything on the host changes, that every port the host's service plan listens on (the router's, its
    metrics port and each replica's) is free, or held by this deployment itself.
  - This deployment's own are the processes of its systemd units (the plan's and every unit file marked with its
    C(X-GpufleetDeployment) key) and the Docker proxy of the ports its containers publish, so a re-run or an update of a
    serving host passes.
  - Fails with one sentence per port in the way, naming the process and a port to set instead; nothing on the host changes.
  - Reads the listening sockets with C(ss) (package C(iproute2), C(iproute) on Rocky Linux); without it the ports are not
    checked and the module warns.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  service:
    description:
      - The C(service) section of the host's plan (see M(gpufleet.vllm.host_plan)); C(name), C(bind_address), C(router) and
        C(replicas) are read.
    type: dict
    required: true
  unit_dir:
    description: Where the deployment's unit files are.
    type: path
    default: /etc/systemd/system
seealso:
  - module: gpufleet.vllm.host_plan
"""

EXAMPLES = r"""
---
- name: Check that the planned ports are free or this deployment's
  gpufleet.vllm.port_preflight:
    service: "{{ host_plan.plan.service }}"
"""

RETURN = r"""
checked:
  description: Whether the ports were checked; false where C(ss) is missing.
  returned: always
  type: bool
  sample: true
ports:
  description: The ports the plan listens on.
  returned: always
  type: list
  elements: int
  sample: [8000, 8001, 8002, 29000]
conflicts:
  description: One sentence per port another program holds; the module fails when there is any.
  returned: failure
  type: list
  elements: str
  sample:
    - "Port 8000, which the router needs on 0.0.0.0, is taken by python3 (pid 4242) on 0.0.0.0:8000; stop it, or set port to
      8003 (the router takes port and the replicas the ports after it)."
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._host_files import read_text
from ansible_collections.gpufleet.vllm.plugins.module_utils._port_check import (
    port_conflicts,
    published_ports,
    unit_of_cgroup,
)


def deployment_units(service, unit_dir):
    """The unit names of this deployment: the plan's, those its unit files claim, and the single unit of releases
    before replicas."""
    name = service["name"]
    units = {service["router"]["unit"], "vllm-%s" % name}
    units.update(replica["unit"] for replica in service["replicas"])
    marker = re.compile(r"^X-GpufleetDeployment=%s$" % re.escape(name), re.MULTILINE)
    for entry in _listing(unit_dir):
        if entry.startswith("vllm-") and entry.endswith(".service"):
            if marker.search(read_text(os.path.join(unit_dir, entry)) or ""):
                units.add(entry[:-len(".service")])
    return units


def unit_pids(units, proc="/proc"):
    """The processes that run in any of the units, from each process's cgroup."""
    pids = []
    for entry in _listing(proc):
        if entry.isdigit() and unit_of_cgroup(read_text(os.path.join(proc, entry, "cgroup")) or "") in units:
            pids.append(int(entry))
    return pids


def _listing(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def container_ports(module, units):
    """The host ports the deployment's containers publish; none where Docker is missing or does not answer."""
    docker = module.get_bin_path("docker")
    if docker is None:
        return []
    rc, out, dummy = module.run_command([docker, "ps", "--format", "{{.Names}}\t{{.Ports}}"])
    return published_ports(out, units) if rc == 0 else []


def main():
    module = AnsibleModule(
        argument_spec=dict(service=dict(type="dict", required=True), unit_dir=dict(type="path", default="/etc/systemd/system")),
        supports_check_mode=True,
    )
    service = module.params["service"]
    router = service["router"]
    ports = sorted(set(port for port in (router["port"], router.get("metrics_port")) if port)
                   | set(replica["port"] for replica in service["replicas"]))
    ss = module.get_bin_path("ss")
    if ss is None:
        module.warn("ss is missing on this host, so the ports the plan listens on were not checked; install iproute2 "
                    "(iproute on Rocky Linux) to have them checked before anything stops.")
        module.exit_json(changed=False, checked=False, ports=ports)
    dummy, listening, dummy = module.run_command([ss, "-Hltnp"], check_rc=True)
    units = deployment_units(service, module.params["unit_dir"])
    try:
        conflicts = port_conflicts(service, listening, unit_pids(units), container_ports(module, units))
    except ValueError as error:
        module.fail_json(msg=str(error))
    if conflicts:
        module.fail_json(msg=" ".join(conflicts), conflicts=conflicts, checked=True, ports=ports)
    module.exit_json(changed=False, checked=True, ports=ports)


if __name__ == "__main__":
    main()
