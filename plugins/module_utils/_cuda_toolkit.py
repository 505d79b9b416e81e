# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PRIVATE to the collection: which CUDA toolkit a host gets from NVIDIA's repository.

Facts: gpu-driver-facts.md sections 2 and 3 (RN = CUDA release notes, MATRIX = NVIDIA's
toolkit/driver/architecture matrix). The cuda_toolkit role reaches this through the filter
gpufleet.vllm.nvidia_cuda_toolkit_plan.
"""

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import (
    PLATFORMS,
    DriverPlanError,
    platform_key,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    branch_max_cuda,
    cuda_min_driver,
    version_key,
)

# Toolkit -> NVIDIA repositories that publish it. CUDA 11.4 predates Debian 12 and Ubuntu 24.04,
# whose CUDA repositories start with later 12.x releases; rhel8 carries it.
TOOLKITS = {
    "11.4": ("rhel8",),
    "12.8": ("debian12", "ubuntu2404", "rhel8"),
}
# Kepler's last CUDA is 11.x: CUDA 12.0 removed sm_35/sm_37 (RN; MATRIX).
KEPLER_DEFAULT = "11.4"
DEFAULT = "12.8"


def toolkit_plan(platform, architectures, version=None, driver_branch=None):
    """Toolkit version, package and repository for a host; {"error": sentence} when none fits."""
    kepler = "kepler" in (architectures or [])
    chosen = str(version) if version not in (None, "") else (KEPLER_DEFAULT if kepler else DEFAULT)
    if chosen not in TOOLKITS:
        return {"error": "cuda_toolkit_version must be one of %s, not %s." % (", ".join(sorted(TOOLKITS)), chosen)}
    if kepler and version_key(chosen) >= (12,):
        return {"error": "CUDA %s cannot build for Kepler GPUs (CUDA 12 dropped sm_35 and sm_37): "
                         "set cuda_toolkit_version to 11.4 or leave it unset." % chosen}
    repository = PLATFORMS[platform]["cuda_repository"]
    if repository not in TOOLKITS[chosen]:
        sentence = ("NVIDIA publishes CUDA %s for %s but not for %s: build in the image instead, or use a host of "
                    "one of those distributions.")
        return {"error": sentence % (chosen, ", ".join(TOOLKITS[chosen]), PLATFORMS[platform]["label"])}
    if driver_branch and version_key(branch_max_cuda(driver_branch)) < version_key(chosen):
        sentence = ("CUDA %s needs driver %s or newer but the host's driver is of branch %s: install a newer driver "
                    "or set cuda_toolkit_version to %s.")
        return {"error": sentence % (chosen, cuda_min_driver(chosen), driver_branch, branch_max_cuda(driver_branch))}
    return {
        "error": None,
        "version": chosen,
        "package": "cuda-toolkit-%s" % chosen.replace(".", "-"),
        "cuda_repository": repository,
        "cuda_repository_key": PLATFORMS[platform]["cuda_repository_key"],
        "platform_label": PLATFORMS[platform]["label"],
        "family": PLATFORMS[platform]["family"],
        "prefix": "/usr/local/cuda-%s" % chosen,
    }


def plan_for_facts(facts, architectures, version=None, driver_branch=None):
    """toolkit_plan for gathered facts; unsupported distributions give {"error": sentence}."""
    try:
        platform = platform_key(facts.get("distribution"), facts.get("distribution_major_version"),
                                facts.get("architecture", "x86_64"))
    except DriverPlanError as exc:
        return {"error": str(exc).replace("nvidia_driver", "cuda_toolkit")}
    return toolkit_plan(platform, architectures, version, driver_branch)
