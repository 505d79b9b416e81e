#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: applied_state
short_description: Tell whether a host still holds what the last complete run of the site play applied
version_added: 1.3.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - With O(state=present), at the end of a complete run, records on the host the digests of the run's inputs and what the
    run left there; the sha256 of every file the roles manage, the units that are active and the image each vLLM
    container runs. The record holds digests only, and is readable by root alone.
  - With O(state=checked), early in a run, compares the record with the inputs of this run and with what the host holds
    now, and says in one line why the host is unchanged, or the first difference (a changed input, a changed, new or
    missing file, a unit not active, a container on another image, a package no longer held).
  - A host that differs, or a run given a O(refusal), loses its record, so that a run that fails half-way never leaves a
    record saying it succeeded.
  - Reading and writing the record is bookkeeping of the run, not a change of the host, so the module never reports
    C(changed).
extends_documentation_fragment:
  - gpufleet.vllm._attributes
attributes:
  check_mode:
    support: full
    details:
      - Compares as a real run would; never writes or removes the record.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description: V(checked) compares the record with the host and the run; V(present) records what the host holds now.
    type: str
    choices: [checked, present]
    default: checked
  inputs:
    description:
      - Digests of the run's inputs for this host, keyed C(plan), C(variables), C(serving) and C(collection).
      - Ignored when O(refusal) is set.
    type: dict
    default: {}
  run:
    description: The run, by C(id) and C(started), that the record names.
    type: dict
    default: {}
  refusal:
    description: Why this run may not skip any stage (a limited run, a full run asked for); the record is then removed.
    type: str
    default: ""
  held_packages:
    description: Packages that must stay held (C(apt-mark hold)); the record notes those that are.
    type: list
    elements: str
    default: []
  path:
    description: The record.
    type: path
    default: /etc/gpufleet/applied-state.json
"""

EXAMPLES = r"""
---
- name: Compare the host with the last complete run
  gpufleet.vllm.applied_state:
    inputs: {plan: 3f1c..., variables: 9a0e..., serving: 77b2..., collection: 04d1...}
    run: {id: "20261203T101500Z-4242", started: "2026-12-03T10:15:00"}
  register: applied

- name: Show why the host is left alone or not
  ansible.builtin.debug:
    msg: "{{ applied.reason }}"
"""

RETURN = r"""
unchanged:
  description: Whether the host holds what the recorded run left and this run's inputs are the recorded ones.
  returned: success
  type: bool
  sample: true
reason:
  description: One line saying why the host is unchanged, or its first difference.
  returned: success
  type: str
  sample: "unchanged since run 20261203T101500Z-4242 of 2026-12-03T10:15:00: nothing to do"
"""

import glob
import hashlib
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._applied_state import (
    MANAGED_FILES, MANAGED_UNITS, held_packages, new_record, observation, verdict)

DPKG_STATUS = "/var/lib/dpkg/status"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def managed_files(record_path):
    paths = {path for pattern in MANAGED_FILES for path in glob.glob(pattern) if os.path.isfile(path)}
    return {path: sha256_of(path) for path in sorted(paths - {record_path})}


def active_units(module):
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return []
    dummy, out, dummy_err = module.run_command(
        [systemctl, "list-units", "--state=active", "--plain", "--no-legend", "--full", "--"] + list(MANAGED_UNITS))
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def vllm_containers(module):
    """{container name: image ID} of the running vLLM containers; none where Docker does not answer."""
    docker = module.get_bin_path("docker")
    if not docker:
        return {}
    rc, out, dummy = module.run_command([docker, "ps", "--quiet", "--no-trunc", "--filter", "name=^vllm-"])
    ids = out.split()
    if rc != 0 or not ids:
        return {}
    rc, out, dummy = module.run_command([docker, "inspect", "--format", "{{.Name}} {{.Image}}"] + ids)
    pairs = [line.split() for line in out.splitlines() if len(line.split()) == 2] if rc == 0 else []
    return {name.lstrip("/"): image for name, image in pairs}


def held(module):
    packages = module.params["held_packages"]
    if not packages or not os.path.exists(DPKG_STATUS):
        return []
    with open(DPKG_STATUS, encoding="utf-8", errors="replace") as handle:
        return held_packages(handle.read(), set(packages))


def observe(module):
    path = module.params["path"]
    return observation(managed_files(path), active_units(module), vllm_containers(module), held(module))


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path, record):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".applied-state.")
    with os.fdopen(descriptor, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def remove_record(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check(module):
    params = module.params
    record = read_record(params["path"])
    observed = None if params["refusal"] else observe(module)
    unchanged, reason = verdict(record, params["inputs"], observed, params["refusal"])
    if not unchanged and record is not None and not module.check_mode:
        remove_record(params["path"])
    module.exit_json(changed=False, unchanged=unchanged, reason=reason)


def record(module):
    params = module.params
    if not module.check_mode:
        write_record(params["path"], new_record(params["run"], params["inputs"], observe(module)))
    module.exit_json(changed=False, unchanged=True, reason="recorded run %s" % params["run"].get("id"))


def main():
    module = AnsibleModule(
        argument_spec=dict(state=dict(type="str", choices=["checked", "present"], default="checked"),
                           inputs=dict(type="dict", default={}),
                           run=dict(type="dict", default={}),
                           refusal=dict(type="str", default=""),
                           held_packages=dict(type="list", elements="str", default=[]),
                           path=dict(type="path", default="/etc/gpufleet/applied-state.json")),
        supports_check_mode=True,
    )
    if module.params["state"] == "present":
        record(module)
    check(module)


if __name__ == "__main__":
    main()
