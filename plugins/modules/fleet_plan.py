#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_plan
short_description: Name the images of the whole play and choose the hosts that build them, once every host is planned
version_added: 1.2.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Takes the plans of every host of the play (from M(gpufleet.vllm.host_plan)) and completes their image part, without changing
    anything.
  - "The C(TORCH_CUDA_ARCH_LIST) of a built image is the union of the compute capabilities of every host planned on it, so one
    C(cu128) image serves the A40s and the RTX 5090s of a mixed fleet (V(8.6;12.0)) and no architecture nobody has is compiled.
    C(MAX_JOBS) follows the build host's memory and cores (C(platform) of its plan): one job per 4 GiB beyond 2 GiB, at most one per core. Either is kept
    when the host's C(gpufleet_plan.build_args) sets it."
  - Each distinct image is built by one host, the first of O(builders) (taking turns when there are several images) or else the
    first host that needs it; the others pull it from the registry the image names, or get a copy from the build host.
  - "The K80 runtime image is built on a builder image (CUDA 11.4, GCC 10, Python 3.10, PyTorch for sm_37) that is built first,
    once, on the same host, unless C(gpufleet_plan.builder_image) names one built elsewhere. Its vLLM source is the git ref of the
    plan resolved to a commit (with C(git ls-remote) on the controller), so the tag names the source, or O(source_dir)."
  - Hashes the recipes, the wheelhouse, the CA certificates and the source tree on the controller, so every plan names the exact
    image (content-addressed tag) before any host builds it.
  - "Runs once, on the controller (C(run_once: true), C(delegate_to: localhost))."
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  plans:
    description: The plan of every host of the play, by inventory name, as M(gpufleet.vllm.host_plan) returned it.
    type: dict
    required: true
  hosts:
    description: The hosts of the play in play order; the first host that needs an image builds it when O(builders) has none.
    type: list
    elements: str
    required: true
  builders:
    description: Hosts that build images for the fleet (an inventory group); they need Docker, not a GPU.
    type: list
    elements: str
    default: []
  recipes_dir:
    description: Directory on the controller holding one C(<recipe>/Dockerfile) per image recipe of this release.
    type: path
    required: true
  wheelhouse:
    description: Directory on the controller whose C(*.whl) files the image build offers pip first; they count for the image tag.
    type: path
  ca_certificates:
    description: Extra CA certificate files on the controller that the image trusts; they count for the image tag.
    type: list
    elements: path
    default: []
  pip_extra_index_urls:
    description: Package indexes the build searches besides PyPI; counted for the image tag without their credentials.
    type: list
    elements: str
    default: []
  source_dir:
    description:
      - A vLLM source tree on the controller that the C(k80) and C(cu128) images are built from instead of a git checkout; its
        files count for the image tag, whose version part is then V(local).
    type: path
  digest_cache:
    description:
      - A file on the controller that remembers the sha256 of each hashed build input with its size, modification time and change
        time, so that a run reads again only the files that changed since (a wheelhouse is often hundreds of MiB).
      - Created when missing; a cache that cannot be read is ignored and one that cannot be written only gives a warning.
      - It is written in check mode too, as it changes nothing on the hosts. Unset, every input is hashed on every run.
    type: path
    version_added: 1.2.0
requirements:
  - C(git) on the controller, to resolve the git ref of a K80 image to a commit.
seealso:
  - module: gpufleet.vllm.host_plan
  - module: gpufleet.vllm.vllm_image
"""

EXAMPLES = r"""
---
- name: Name the fleet's images and choose their build hosts
  gpufleet.vllm.fleet_plan:
    plans: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['host_plan', 'plan']))) }}"
    hosts: "{{ ansible_play_hosts }}"
    builders: "{{ groups['vllm_image_builders'] | default([]) }}"
    recipes_dir: "{{ playbook_dir }}/../roles/vllm_image/files"
  run_once: true
  delegate_to: localhost
  become: false
  register: fleet
"""

RETURN = r"""
plans:
  description:
    - The plans of O(plans) with C(image.reference) set for built images, C(image.build_args) with the fleet's architecture list and
      the build host's job count, C(image.build_host), C(image.transfer) (V(build), V(pull) from the registry, V(copy) from the build
      host) and C(image.builds), the builds that host makes for the fleet, in order.
  returned: success
  type: dict
builds:
  description: Every build of the play, in build order, with its build host, the hosts it serves and its expected minutes.
  returned: success
  type: list
  elements: dict
  sample:
    - reference: gpufleet/vllm-cu128:0.15.1-3f9c2a7d41be
      recipe: cu128
      build_host: gpu-01
      hosts: [gpu-01, gpu-02]
      build_args: {TORCH_CUDA_ARCH_LIST: "8.6;12.0", VLLM_VERSION: 0.15.1, MAX_JOBS: "5"}
      minutes: 25
summaries:
  description: One line per host saying what it gets - GPUs, driver, image and how it arrives, dtype, tensor parallelism, memory.
  returned: success
  type: dict
  sample: {gpu-01: "gpu-01: 1 x NVIDIA GeForce RTX 5090 (12.0) on Ubuntu 24.04; driver 570 open from ..."}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.gpufleet.vllm.plugins.module_utils._digest_cache import DigestCache
from ansible_collections.gpufleet.vllm.plugins.module_utils._fleet_images import FleetPlanError, plan_fleet
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import summary
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    recipe_digest,
    scan_source,
    scan_tree,
    scan_wheelhouse,
)


def _commit_resolver(module):
    def resolve(repository, ref):
        rc, out, err = module.run_command(["git", "ls-remote", "--", repository, ref], environ_update={"GIT_TERMINAL_PROMPT": "0"})
        if rc != 0:
            detail = ((err or out).strip().splitlines() or ["git ls-remote exited with %d" % rc])[0]
            raise FleetPlanError("The vLLM repository %s cannot be read from the controller (%s): check the URL and the network, "
                                 "or set gpufleet_plan.vllm_version to a commit." % (repository, detail))
        commits = [line.split()[0] for line in out.splitlines() if line.strip()]
        if not commits:
            raise FleetPlanError("The git ref %s does not resolve in %s: set gpufleet_plan.vllm_version to a branch, tag or commit "
                                 "that exists there." % (ref, repository))
        return commits[0]
    return resolve


def _digester(params, cache):
    """digest_of(build) over what the vllm_image module hashes on the build host: the same inputs, the same tag."""
    wheels = scan_wheelhouse(params["wheelhouse"], cache.sha256) if params["wheelhouse"] else []
    certs = [cache.sha256(path) for path in params["ca_certificates"]]
    pip_urls = " ".join(str(url) for url in params["pip_extra_index_urls"])

    def digest_of(build):
        build_args = dict(build["build_args"])
        if pip_urls:
            build_args["PIP_EXTRA_INDEX_URL"] = pip_urls
        recipe = scan_tree(os.path.join(params["recipes_dir"], build["recipe"]), cache.sha256)
        source = scan_source(build["source"], cache.sha256) if build["source"] else ()
        return recipe_digest(recipe, build_args, wheels, certs, source_files=source)
    return digest_of


def _save_cache(module, cache):
    try:
        cache.save()
    except (IOError, OSError) as exc:
        module.warn("Cannot write the digest cache %s (%s): the next run hashes the build inputs again." % (cache.path, to_native(exc)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plans=dict(type="dict", required=True),
            hosts=dict(type="list", elements="str", required=True),
            builders=dict(type="list", elements="str", default=[]),
            recipes_dir=dict(type="path", required=True),
            wheelhouse=dict(type="path"),
            ca_certificates=dict(type="list", elements="path", default=[]),
            pip_extra_index_urls=dict(type="list", elements="str", default=[], no_log=True),
            source_dir=dict(type="path"),
            digest_cache=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["source_dir"] and not os.path.isdir(params["source_dir"]):
        module.fail_json(msg="vllm_image_source_dir %s is no directory on the controller: point it at a vLLM source tree, or leave "
                             "it unset to build from git." % params["source_dir"])
    hosts = [(host, params["plans"][host]) for host in params["hosts"] if host in params["plans"]]
    settings = {"builders": params["builders"], "source_dir": params["source_dir"]}
    cache = DigestCache(params["digest_cache"])
    try:
        plans, builds = plan_fleet(hosts, settings, _commit_resolver(module), _digester(params, cache))
    except FleetPlanError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg="Cannot read the image's build inputs on the controller (%s): check vllm_image_wheelhouse, "
                             "vllm_image_ca_certificates and vllm_image_source_dir." % to_native(exc))
    _save_cache(module, cache)
    summaries = dict((host, summary(host, plan)) for host, plan in plans.items())
    module.exit_json(changed=False, plans=plans, builds=builds, summaries=summaries)


if __name__ == "__main__":
    main()
