#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_lock
short_description: Keep two runs of the site play from changing one host at once
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Takes or releases a per-host lock file that names the run holding it. A run that finds the lock held by another run
    fails at once with one sentence naming that run, before it changes anything; two runs restarting the same replicas
    would otherwise fail each other with misleading errors.
  - The same run may take its lock again (each play of the site play takes it), and releases only its own.
  - The lock lives under V(/run), so a reboot clears it. A run killed on the controller cannot release it; the refusal says
    which file to remove once that run is gone.
  - Taking and releasing the lock is bookkeeping of the run, not a change of the host, so the module never reports
    C(changed); in check mode it only reads the lock.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the lock and refuses as a real run would; never writes it.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  run:
    description:
      - Who holds the lock. C(id) tells runs apart; C(started), C(user) and C(controller) are what the refusal of another
        run shows.
    type: dict
    required: true
  state:
    description: V(present) takes the lock, V(absent) releases it when this run holds it.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: The lock file.
    type: path
    default: /run/gpufleet/site.lock
"""

EXAMPLES = r"""
---
- name: Take the host's run lock
  gpufleet.vllm.run_lock:
    run: {id: "20261203T101500-4242", controller: deploy-1, user: ops, started: "2026-12-03T10:15:00Z"}
"""

RETURN = r"""
holder:
  description: The run that holds the lock after the module ran; empty when nobody does.
  returned: success
  type: dict
  sample: {id: "20261203T101500-4242", controller: deploy-1, user: ops, started: "2026-12-03T10:15:00Z"}
"""

import errno
import json
import os

from ansible.module_utils.basic import AnsibleModule


def read_holder(path):
    """The run recorded in the lock file; None when there is none. A file that is no record counts as another run's."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    return holder if isinstance(holder, dict) else {"id": None}


def refusal(holder, path):
    """The sentence for a lock another run holds."""
    seen = ", ".join("%s %s" % (word, holder[key]) for key, word in
                     (("started", "started"), ("user", "by"), ("controller", "on")) if holder.get(key))
    who = "run %s" % holder["id"] if holder.get("id") else "an unreadable lock"
    return ("This host is being changed by another run (%s%s); wait until it ends, or, if it no longer runs, remove %s "
            "on this host and run again." % (who, ", " + seen if seen else "", path))


def take(path, run):
    """Write the lock for run unless a file is already there; the holder found, which is run when it was taken."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as error:
        if error.errno != errno.EEXIST:
            raise
        # Another run took it between the read and the create.
        return read_holder(path)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(run, handle)
    return run


def main():
    module = AnsibleModule(
        argument_spec=dict(run=dict(type="dict", required=True),
                           state=dict(type="str", choices=["present", "absent"], default="present"),
                           path=dict(type="path", default="/run/gpufleet/site.lock")),
        supports_check_mode=True,
    )
    run, path = module.params["run"], module.params["path"]
    if not run.get("id"):
        module.fail_json(msg="run needs an id that tells this run from others; pass the run's id.")
    holder = read_holder(path)
    ours = holder is not None and holder.get("id") == run["id"]
    if module.params["state"] == "absent":
        if ours and not module.check_mode:
            os.remove(path)
            holder = None
        module.exit_json(changed=False, holder=holder or {})
    if holder is None and not module.check_mode:
        holder = take(path, run)
        ours = holder.get("id") == run["id"]
    if holder is not None and not ours:
        module.fail_json(msg=refusal(holder, path), holder=holder)
    module.exit_json(changed=False, holder=holder or {})


if __name__ == "__main__":
    main()
