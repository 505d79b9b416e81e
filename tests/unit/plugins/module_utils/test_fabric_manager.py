# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fabric Manager for NVSwitch hosts, case by case: which package, from where, pinned to which version, and when the
planned driver has none to pair with."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_detect as detect
from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import plan as driver_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._fabric_manager import (
    FabricManagerError,
    fabric_manager_plan,
    pinned_install,
)

HGX = {"nvswitch_count": 4, "driver_version": None}


def installing(branch, flavor="open", source="cuda"):
    """The part of a driver plan that installs branch and flavor from source."""
    return {"action": "install", "branch": branch, "flavor": flavor, "source": source}


def keeping(branch, flavor="open"):
    """The part of a driver plan that keeps the loaded driver: it names no source."""
    return {"action": "keep", "branch": branch, "flavor": flavor}


def refused(gpu_host, platform, driver):
    with pytest.raises(FabricManagerError) as caught:
        fabric_manager_plan(gpu_host, platform, driver)
    return str(caught.value)


@pytest.mark.parametrize("gpu_host, driver", [
    ({"nvswitch_count": 0}, installing("580")),
    # Facts gathered before this release have no count.
    ({"gpu_count": 8}, installing("580")),
    (None, installing("580")),
    (HGX, {"action": "none", "branch": None, "flavor": None}),
])
def test_no_nvswitch_or_no_driver_needs_no_fabric_manager(gpu_host, driver):
    assert fabric_manager_plan(gpu_host, "ubuntu2404", driver) is None


def test_debian_from_nvidias_repository_before_580_names_the_branch():
    assert fabric_manager_plan(HGX, "debian12", installing("570")) == {
        "packages": ["nvidia-fabricmanager-570"],
        "version": None,
        "install": ["nvidia-fabricmanager-570=570.*"],
        "hold": ["nvidia-fabricmanager-570"],
        "service": "nvidia-fabricmanager.service",
        "source": "cuda",
        "family": "apt",
        "apt_component": None,
        "reason": "4 NVSwitches: Fabric Manager nvidia-fabricmanager-570 at the driver's version",
    }


@pytest.mark.parametrize("platform", ["debian12", "ubuntu2404"])
def test_nvidias_apt_repository_from_580_drops_the_branch_from_the_name(platform):
    planned = fabric_manager_plan(HGX, platform, installing("580"))
    assert (planned["packages"], planned["install"], planned["hold"]) == (
        ["nvidia-fabricmanager"], ["nvidia-fabricmanager=580.*"], ["nvidia-fabricmanager"])


def test_ubuntu_archive_keeps_the_branch_in_the_name_and_needs_multiverse():
    planned = fabric_manager_plan(HGX, "ubuntu2404", installing("580", source="distribution"))
    assert (planned["packages"], planned["install"], planned["source"], planned["apt_component"]) == (
        ["nvidia-fabricmanager-580"], ["nvidia-fabricmanager-580=580.*"], "distribution", "multiverse")


def test_a_kept_driver_pins_its_own_version_from_where_the_collection_installs_it():
    # Ubuntu installs from Canonical's archive unless told otherwise, whose revisions read -0ubuntu0.24.04.1.
    planned = fabric_manager_plan({"nvswitch_count": 4, "driver_version": "580.95.05"}, "ubuntu2404", keeping("580"))
    assert (planned["version"], planned["install"], planned["source"]) == (
        "580.95.05", ["nvidia-fabricmanager-580=580.95.05-*"], "distribution")


@pytest.mark.parametrize("driver, gpu_host, packages, install", [
    (installing("570"), HGX, ["nvidia-fabric-manager"], ["nvidia-fabric-manager-570.*"]),
    (installing("580"), HGX, ["nvidia-fabricmanager"], ["nvidia-fabricmanager-580.*"]),
    (keeping("580"), {"nvswitch_count": 6, "driver_version": "580.159.04"}, ["nvidia-fabricmanager"],
     ["nvidia-fabricmanager-580.159.04"]),
])
def test_rocky_from_the_cuda_rpm_repository(driver, gpu_host, packages, install):
    planned = fabric_manager_plan(gpu_host, "el8", driver)
    assert (planned["packages"], planned["install"], planned["hold"], planned["family"], planned["source"]) == (
        packages, install, packages, "dnf", "cuda")


def test_debians_archive_has_no_fabric_manager():
    assert refused(HGX, "debian12", installing("535", flavor="proprietary", source="distribution")) == (
        "The GPUs behind this host's 4 NVSwitches need NVIDIA Fabric Manager at the driver's version, which Debian 12's "
        "archive does not carry: set gpufleet_plan.driver_source to cuda so that both come from NVIDIA's CUDA repository.")
    # A kept driver of a branch Debian carries counts as Debian's.
    assert refused({"nvswitch_count": 1, "driver_version": "535.261.03"}, "debian12", keeping("535", flavor="proprietary")
                   ).startswith("The GPUs behind this host's 1 NVSwitch need NVIDIA Fabric Manager")


def test_ubuntus_470_fabric_manager_is_a_transitional_package():
    assert refused({"nvswitch_count": 6}, "ubuntu2404", installing("470", flavor="proprietary", source="distribution")) == (
        "The GPUs behind this host's 6 NVSwitches need NVIDIA Fabric Manager at the driver's version, but Ubuntu 24.04's "
        "nvidia-fabricmanager-470 only installs a newer branch's: set gpufleet_plan.driver_branch to 535 or newer.")


def test_a_host_without_nvswitch_is_never_refused():
    assert fabric_manager_plan({"nvswitch_count": 0}, "debian12", installing("470", flavor="proprietary", source="distribution")) is None


@pytest.mark.parametrize("platform, driver, driver_version, install", [
    ("debian12", installing("570"), "570.195.03", ["nvidia-fabricmanager-570=570.195.03-*"]),
    # As installed_packages reads the driver's package version.
    ("ubuntu2404", installing("580"), "580.95.05-1ubuntu1", ["nvidia-fabricmanager=580.95.05-*"]),
    ("el8", installing("570"), "3:570.195.03-1.el8", ["nvidia-fabric-manager-570.195.03"]),
])
def test_pinned_install_once_the_driver_is_in(platform, driver, driver_version, install):
    assert pinned_install(fabric_manager_plan(HGX, platform, driver), driver_version) == install


def test_from_the_facts_of_an_hgx_board_through_the_driver_plan(make_host):
    tree = make_host("hgx_h100")
    host = detect.build_facts(detect.scan_sysfs(tree.root), nvswitches=detect.scan_nvswitches(tree.root))["gpufleet_gpu_host"]
    driver = driver_plan(host, "el8", kernel="4.18.0-553.el8_10.x86_64")
    planned = fabric_manager_plan(host, "el8", driver)
    assert (driver["branch"], driver["flavor"], planned["packages"], planned["install"]) == (
        "570", "open", ["nvidia-fabric-manager"], ["nvidia-fabric-manager-570.*"])
