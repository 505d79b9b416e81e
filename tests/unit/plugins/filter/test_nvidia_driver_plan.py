# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.filter.nvidia_driver_plan import FilterModule

FILTERS = FilterModule().filters()

K80_HOST = {
    "gpu_count": 2, "compatible": True, "problems": [], "architectures": ["kepler"],
    "kernel_module_flavor": "proprietary", "driver_branch_min": None, "driver_branch_max": "470",
    "default_driver_branch": "470", "driver_loaded": False, "driver_version": None, "driver_branch": None,
    "loaded_kernel_module_flavor": None, "driver_fits_gpus": None,
}
DEBIAN_FACTS = {"distribution": "Debian", "distribution_major_version": "12", "architecture": "x86_64",
                "kernel": "6.1.0-40-amd64"}


def test_filter_reads_the_gathered_facts():
    result = FILTERS["nvidia_driver_plan"](K80_HOST, DEBIAN_FACTS)
    assert result["platform"] == "debian12"
    assert result["kernel_packages"] == ["linux-headers-6.1.0-40-amd64"]
    assert result["branch"] == "470"


def test_filter_passes_the_pins():
    result = FILTERS["nvidia_driver_plan"](K80_HOST, DEBIAN_FACTS, branch="535")
    assert result["error"].startswith("Driver branch 535 cannot drive")


def test_foreign_branch_filter_reads_apt_output():
    text = "Inst nvidia-headless-580-server (580.95.05-0ubuntu1 Ubuntu:24.04/noble-updates [amd64])\n"
    assert FILTERS["nvidia_foreign_branch_packages"](text, "565") == ["nvidia-headless-580-server 580.95.05-0ubuntu1"]


def test_secure_boot_filter_reads_slurped_content():
    assert FILTERS["nvidia_secure_boot_enabled"]("BgAAAAE=") is True   # 06 00 00 00 01
    assert FILTERS["nvidia_secure_boot_enabled"]("BgAAAAA=") is False
    assert FILTERS["nvidia_secure_boot_enabled"]("") is False
