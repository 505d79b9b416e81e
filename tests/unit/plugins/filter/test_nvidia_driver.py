# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.gpufleet.vllm.plugins.filter.nvidia_driver import FilterModule

FILTERS = FilterModule().filters()
FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")


def test_the_module_offers_exactly_the_driver_filters():
    assert set(FILTERS) == {"nvidia_foreign_branch_packages", "nvidia_secure_boot_enabled", "nvidia_driver_version",
                            "nvidia_fabric_manager_packages"}


@pytest.mark.parametrize("name", sorted(FilterModule().filters()))
def test_each_filter_has_its_documentation(name):
    with open(os.path.join(FILTER_DIR, "%s.yml" % name)) as handle:
        documentation = yaml.safe_load(handle)
    assert documentation["DOCUMENTATION"]["name"] == name


def test_foreign_branch_filter_reads_apt_output():
    text = "Inst nvidia-headless-580-server (580.95.05-0ubuntu1 Ubuntu:24.04/noble-updates [amd64])\n"
    assert FILTERS["nvidia_foreign_branch_packages"](text, "565") == ["nvidia-headless-580-server 580.95.05-0ubuntu1"]


def test_foreign_branch_filter_reads_the_version_of_unbranched_packages():
    text = ("NOTE: This is only a simulation!\n"
            "Inst nvidia-kernel-open-dkms (580.65.06-1 cuda-debian12-x86_64:cuda-debian12-x86_64 [amd64])\n"
            "Inst nvidia-modprobe (580.65.06-1 cuda-debian12-x86_64:cuda-debian12-x86_64 [amd64])\n"
            "Inst libnvidia-container1 (1.17.8-1 nvidia-container-toolkit:1.17.8-1 [amd64])\n")
    assert FILTERS["nvidia_foreign_branch_packages"](text, "570") == ["nvidia-kernel-open-dkms 580.65.06-1"]
    assert FILTERS["nvidia_foreign_branch_packages"](text, 580) == []


def test_foreign_branch_filter_on_empty_output():
    assert FILTERS["nvidia_foreign_branch_packages"]("", "570") == []
    assert FILTERS["nvidia_foreign_branch_packages"](None, "570") == []


def test_secure_boot_filter_reads_slurped_content():
    assert FILTERS["nvidia_secure_boot_enabled"]("BgAAAAE=") is True   # 06 00 00 00 01
    assert FILTERS["nvidia_secure_boot_enabled"]("BgAAAAA=") is False
    assert FILTERS["nvidia_secure_boot_enabled"]("") is False
    assert FILTERS["nvidia_secure_boot_enabled"](None) is False


@pytest.mark.parametrize("package_version, driver_version", [
    ("470.256.02-1~deb12u1", "470.256.02"),
    ("3:570.195.03-1.el8", "570.195.03"),
    ("580.95.05-0ubuntu0.24.04.1", "580.95.05"),
    ("570.195.03-1", "570.195.03"),
    ("570.195.03", "570.195.03"),
    (None, None),
])
def test_driver_version_filter_strips_epoch_and_revision(package_version, driver_version):
    assert FILTERS["nvidia_driver_version"](package_version) == driver_version


@pytest.mark.parametrize("fabric_manager, driver_version, packages", [
    ({"family": "apt", "packages": ["nvidia-fabricmanager-570"]}, "570.195.03-1", ["nvidia-fabricmanager-570=570.195.03-*"]),
    ({"family": "apt", "packages": ["nvidia-fabricmanager"]}, "580.95.05", ["nvidia-fabricmanager=580.95.05-*"]),
    ({"family": "dnf", "packages": ["nvidia-fabric-manager"]}, "3:570.195.03-1.el8", ["nvidia-fabric-manager-570.195.03"]),
])
def test_fabric_manager_filter_pins_the_installed_driver_version(fabric_manager, driver_version, packages):
    assert FILTERS["nvidia_fabric_manager_packages"](fabric_manager, driver_version) == packages
