# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PRIVATE to the collection: which CUDA toolkit a host gets from NVIDIA's repository.

Facts: gpu-driver-facts.md sections 2 and 3 (RN = CUDA release notes, MATRIX = NVIDIA's
toolkit/driver/architecture matrix). The host plan (_host_plan) calls this; the cuda_toolkit role
applies the result.
"""

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    branch_max_cuda,
    cuda_min_driver,
    version_key,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._platforms import PLATFORMS

# Toolkit -> NVIDIA repositories that publish it. CUDA 11.4 predates Debian 12 and Ubuntu 24.04,
# whose CUDA repositories start with later 12.x releases; rhel8 carries it.
TOOLKITS = {
    "11.4": ("rhel8",),
    "12.8": ("debian12", "ubuntu2404", "rhel8"),
}


class ToolkitPlanError(ValueError):
    """A toolkit the GPUs, the driver or the distribution cannot serve; the text is one sentence."""


def _newest_for_driver(driver_branch):
    """The newest toolkit of TOOLKITS that a driver of this branch runs (470 -> 11.4, 570 -> 12.8)."""
    limit = version_key(branch_max_cuda(driver_branch))
    fitting = [version for version in TOOLKITS if version_key(version) <= limit]
    return max(fitting, key=version_key) if fitting else None


def toolkit_plan(platform, architectures, driver_branch, version=None):
    """Toolkit version, package and install prefix for a host; raises ToolkitPlanError with one sentence.

    driver_branch: the branch the host's driver plan settles on; without a version the toolkit is
    the newest that branch runs.
    """
    chosen = str(version) if version not in (None, "") else _newest_for_driver(driver_branch)
    if chosen not in TOOLKITS:
        raise ToolkitPlanError("cuda_toolkit_version %s is not one the collection installs: use one of %s."
                               % (chosen, ", ".join(sorted(TOOLKITS))))
    if "kepler" in (architectures or []) and version_key(chosen) >= (12,):
        raise ToolkitPlanError("cuda_toolkit_version %s cannot build for Kepler GPUs (CUDA 12 dropped sm_35 and sm_37): "
                               "set it to 11.4 or leave it unset." % chosen)
    repository = PLATFORMS[platform]["cuda_repository"]
    if repository not in TOOLKITS[chosen]:
        raise ToolkitPlanError("NVIDIA publishes CUDA %s for %s but not for %s: build in the image instead, or use a host of "
                               "one of those distributions." % (chosen, ", ".join(TOOLKITS[chosen]), PLATFORMS[platform]["label"]))
    if version_key(branch_max_cuda(driver_branch)) < version_key(chosen):
        raise ToolkitPlanError("cuda_toolkit_version %s needs driver %s or newer but the host's driver is of branch %s: "
                               "pin a newer driver_branch or set cuda_toolkit_version to %s."
                               % (chosen, cuda_min_driver(chosen), driver_branch, _newest_for_driver(driver_branch)))
    return {
        "version": chosen,
        "package": "cuda-toolkit-%s" % chosen.replace(".", "-"),
        "prefix": "/usr/local/cuda-%s" % chosen,
    }
