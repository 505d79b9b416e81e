#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_args_check
short_description: Check with the image that vLLM accepts the server arguments, before any replica stops
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Runs the image once (C(docker run --rm --network none)) under the Python its ENTRYPOINT names, with a program that
    parses O(arguments) with vLLM's own server argument parser, and fails with one sentence naming the deployment, the
    image and vLLM's reason when vLLM rejects them. Nothing on the host changes.
  - Where the image cannot answer (no Python where its ENTRYPOINT says, a vLLM that keeps its parser elsewhere, an image
    that is not on the host), the module warns that the arguments were not checked and succeeds; a replica that then
    rejects them fails its start and is rolled back.
  - In check mode no container runs, and RV(checked) is false.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  image:
    description: The image the replicas will run; it must be on the host.
    type: str
    required: true
  arguments:
    description: The server arguments, exactly as the replicas' units pass them.
    type: list
    elements: str
    required: true
  program:
    description: The text of the check program (C(roles/vllm_service/files/vllm-check-args)), run with C(python -c).
    type: str
    required: true
  deployment:
    description: The deployment's name, for the messages.
    type: str
    required: true
  volumes:
    description:
      - Volumes (C(host path:container path)) the replicas mount, mounted read-only so that arguments naming a file in
        them (a chat template, a C(--config) file) find it.
    type: list
    elements: str
    default: []
requirements:
  - the C(docker) command line on the host
seealso:
  - module: gpufleet.vllm.port_preflight
"""

EXAMPLES = r"""
---
- name: Check that vLLM takes the arguments
  gpufleet.vllm.vllm_args_check:
    image: gpufleet/vllm-cpu:0.32.0-a13380092829
    deployment: tiny
    arguments: [--model, /models/tiny, --served-model-name, tiny, --host, 0.0.0.0, --port, "8000", --dtype, float32]
    program: "{{ lookup('ansible.builtin.file', 'vllm-check-args') }}"
  register: args_check

- name: Say whether they were checked
  ansible.builtin.debug:
    msg: "{{ args_check.checked }}"
"""

RETURN = r"""
checked:
  description: Whether vLLM in the image answered; false in check mode and wherever the module warned.
  returned: always
  type: bool
  sample: true
reason:
  description: vLLM's reason for a rejection, or why the arguments were not checked; empty when they were accepted.
  returned: always
  type: str
  sample: "unrecognized arguments: --definitely-not-a-flag"
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._server_args import (
    REJECTED,
    UNCHECKED,
    Outcome,
    check_command,
    entrypoint_python,
    not_in_check_mode,
    outcome,
    rejection,
    unchecked,
)


def run_check(module, docker):
    """The Outcome of parsing the arguments in the image."""
    params = module.params
    status, out, err = module.run_command([docker, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", params["image"]])
    if status != 0:
        return Outcome(UNCHECKED, "Docker could not inspect the image: %s" % (err or out).strip())
    entrypoint = json.loads(out)
    python = entrypoint_python(entrypoint)
    if python is None:
        return Outcome(UNCHECKED, "its entrypoint %s names no Python to run the check with" % json.dumps(entrypoint))
    return outcome(*module.run_command(check_command(docker, params["image"], python, params["program"], params["arguments"],
                                                     params["volumes"])))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            arguments=dict(type="list", elements="str", required=True),
            program=dict(type="str", required=True),
            deployment=dict(type="str", required=True),
            volumes=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    deployment, image = module.params["deployment"], module.params["image"]
    if module.check_mode:
        module.exit_json(changed=False, checked=False, reason=not_in_check_mode(deployment, image))
    docker = module.get_bin_path("docker")
    result = Outcome(UNCHECKED, "docker is not in PATH") if docker is None else run_check(module, docker)
    if result.verdict == REJECTED:
        module.fail_json(msg=rejection(deployment, image, result.reason), checked=True, reason=result.reason)
    if result.verdict == UNCHECKED:
        module.warn(unchecked(deployment, image, result.reason))
    module.exit_json(changed=False, checked=result.verdict != UNCHECKED, reason=result.reason)


if __name__ == "__main__":
    main()
