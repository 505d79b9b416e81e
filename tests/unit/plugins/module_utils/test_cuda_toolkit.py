# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.filter.nvidia_cuda_toolkit_plan import nvidia_cuda_toolkit_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._cuda_toolkit import toolkit_plan


@pytest.mark.parametrize("platform, architectures, version, branch, package, repository", [
    ("el8", ["kepler"], None, "470", "cuda-toolkit-11-4", "rhel8"),
    ("el8", ["ampere"], None, None, "cuda-toolkit-12-8", "rhel8"),
    ("debian12", ["blackwell"], None, "570", "cuda-toolkit-12-8", "debian12"),
    ("ubuntu2404", ["hopper"], None, "580", "cuda-toolkit-12-8", "ubuntu2404"),
    ("ubuntu2404", [], None, None, "cuda-toolkit-12-8", "ubuntu2404"),
    ("el8", ["ampere"], "11.4", "470", "cuda-toolkit-11-4", "rhel8"),
])
def test_toolkit_plan(platform, architectures, version, branch, package, repository):
    plan = toolkit_plan(platform, architectures, version, branch)
    assert plan["error"] is None
    assert plan["package"] == package
    assert plan["cuda_repository"] == repository
    assert plan["prefix"] == "/usr/local/cuda-%s" % plan["version"]


@pytest.mark.parametrize("platform, architectures, version, branch, words", [
    ("el8", ["kepler"], "12.8", None, "CUDA 12.8 cannot build for Kepler GPUs"),
    ("debian12", ["kepler"], None, "470", "NVIDIA publishes CUDA 11.4 for rhel8 but not for Debian 12"),
    ("ubuntu2404", ["kepler"], None, None, "but not for Ubuntu 24.04"),
    ("debian12", ["ampere"], "12.8", "535", "CUDA 12.8 needs driver 570.26 or newer but the host's driver is of branch 535"),
    ("el8", ["ampere"], "13.0", None, "cuda_toolkit_version must be one of 11.4, 12.8, not 13.0"),
])
def test_toolkit_plan_refuses(platform, architectures, version, branch, words):
    assert words in toolkit_plan(platform, architectures, version, branch)["error"]


def test_filter_reads_facts_and_the_loaded_branch():
    gpu_host = {"architectures": ["blackwell"], "driver_branch": "570"}
    facts = {"distribution": "Debian", "distribution_major_version": "12", "architecture": "x86_64"}
    assert nvidia_cuda_toolkit_plan(gpu_host, facts)["package"] == "cuda-toolkit-12-8"
    assert "supports Rocky Linux 8, Ubuntu 24.04 and Debian 12, not Fedora 40" in nvidia_cuda_toolkit_plan(
        gpu_host, dict(facts, distribution="Fedora", distribution_major_version="40"))["error"]
