# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""NVIDIA Fabric Manager for hosts whose GPUs hang off NVSwitches (HGX A100, HGX H100/H200).

Without Fabric Manager running at exactly the driver's version, CUDA on such GPUs fails with error 802, "system not yet
initialized"; a Fabric Manager of another version refuses to start. It comes from where the driver came from, pinned to
the driver's version. Sources: Canonical's noble archive (packages.ubuntu.com: nvidia-fabricmanager-<branch>, 470 a
transitional package to 535), NVIDIA's CUDA apt repository (NVIDIA/gpu-driver-container install scripts:
nvidia-fabricmanager-<branch>=<version>-1 before 580, nvidia-fabricmanager=<version>-1 from 580), NVIDIA's CUDA rpm
repositories (nvidia-fabric-manager-<version> before 580, nvidia-fabricmanager-<version> from 580, as an Amazon Linux
2023 GPU image build installs them; NVIDIA/yum-packaging-fabric-manager), and the service every one of them installs,
nvidia-fabricmanager.service. Debian's archive has no Fabric Manager.
"""

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import (
    CUDA,
    DISTRIBUTION,
    driver_install,
    upstream_version,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import version_key
from ansible_collections.gpufleet.vllm.plugins.module_utils._platforms import PLATFORMS

SERVICE = "nvidia-fabricmanager.service"
# NVIDIA dropped the branch from its package names, and on rpm the dash inside "fabric-manager", with R580.
UNVERSIONED_NAME_FROM_BRANCH = "580"
# Canonical keeps the branch in the name on every branch; nvidia-fabricmanager-470 on noble is only a transitional
# package that installs the 535 one.
UBUNTU_TRANSITIONAL_BRANCHES = ("470",)


class FabricManagerError(ValueError):
    """NVSwitches whose Fabric Manager the planned driver cannot be paired with; the text is one sentence."""


def fabric_manager_plan(gpu_host, platform, driver):
    """What the host needs for its NVSwitches, or None where it has none (or no GPU).

    gpu_host: the gpufleet_gpu_host fact (nvswitch_count; driver_version where the driver is kept); driver: the driver
    plan (action, branch, flavor, source). Returns {"packages", "version", "install", "hold", "service", "source",
    "family", "apt_component", "reason"}: version is the driver's where known (a kept driver) and None where the
    driver is still to be installed, in which case install pins only the branch and the role pins the exact version
    with pinned_install() once the driver is in. Raises FabricManagerError.
    """
    count = int((gpu_host or {}).get("nvswitch_count") or 0)
    if not count or driver.get("action") not in ("install", "keep"):
        return None
    branch = str(driver["branch"])
    source = driver.get("source") or driver_install(platform, branch, driver["flavor"])["source"]
    _check_available(platform, branch, source, count)
    family = PLATFORMS[platform]["family"]
    packages = [_package_name(family, branch, source)]
    version = gpu_host.get("driver_version") if driver["action"] == "keep" else None
    return {
        "packages": packages,
        "version": version,
        "install": _install_specs(family, packages, version or "%s.*" % branch),
        "hold": list(packages),
        "service": SERVICE,
        "source": source,
        "family": family,
        "apt_component": "multiverse" if platform == "ubuntu2404" and source == DISTRIBUTION else None,
        "reason": "%s: Fabric Manager %s at the driver's version" % (_switches(count), " ".join(packages)),
    }


def pinned_install(fabric_manager, driver_version):
    """The package specifications that install Fabric Manager at exactly driver_version ("570.195.03", or a package
    version such as "570.195.03-1" of the driver)."""
    return _install_specs(fabric_manager["family"], fabric_manager["packages"], upstream_version(driver_version))


def _install_specs(family, packages, version):
    # The Debian revision differs by source and release ("-1", "-1ubuntu1", "-0ubuntu0.24.04.1"): the upstream version
    # is what must match, so apt gets a pattern for the rest; dnf matches name-version without the release.
    if family == "dnf":
        return ["%s-%s" % (name, version) for name in packages]
    if version.endswith("*"):
        return ["%s=%s" % (name, version) for name in packages]
    return ["%s=%s-*" % (name, version) for name in packages]


def _package_name(family, branch, source):
    unversioned = source == CUDA and version_key(branch) >= version_key(UNVERSIONED_NAME_FROM_BRANCH)
    if family == "dnf":
        return "nvidia-fabricmanager" if unversioned else "nvidia-fabric-manager"
    return "nvidia-fabricmanager" if unversioned else "nvidia-fabricmanager-%s" % branch


def _switches(count):
    return "%d NVSwitch%s" % (count, "" if count == 1 else "es")


def _check_available(platform, branch, source, count):
    label = PLATFORMS[platform]["label"]
    if source == DISTRIBUTION and platform == "debian12":
        raise FabricManagerError(
            "The GPUs behind this host's %s need NVIDIA Fabric Manager at the driver's version, which %s's archive does "
            "not carry: set gpufleet_plan.driver_source to cuda so that both come from NVIDIA's CUDA repository."
            % (_switches(count), label))
    if source == DISTRIBUTION and platform == "ubuntu2404" and branch in UBUNTU_TRANSITIONAL_BRANCHES:
        raise FabricManagerError(
            "The GPUs behind this host's %s need NVIDIA Fabric Manager at the driver's version, but %s's "
            "nvidia-fabricmanager-%s only installs a newer branch's: set gpufleet_plan.driver_branch to 535 or newer."
            % (_switches(count), label, branch))
