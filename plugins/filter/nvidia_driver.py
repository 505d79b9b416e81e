# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import (
    foreign_branch_packages,
    parse_apt_simulation,
    secure_boot_enabled,
    upstream_version,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._fabric_manager import pinned_install


def nvidia_foreign_branch_packages(apt_simulation, branch):
    """Packages of another driver branch in `apt-get install --simulate` output."""
    return foreign_branch_packages(parse_apt_simulation(apt_simulation), branch)


def nvidia_secure_boot_enabled(efivar_base64):
    """Secure Boot state from the base64 content of the SecureBoot EFI variable (as slurp returns it)."""
    if not efivar_base64:
        return False
    return secure_boot_enabled(base64.b64decode(efivar_base64))


def nvidia_driver_version(package_version):
    """The driver version inside a package version, as the loaded module reports it."""
    return upstream_version(package_version)


def nvidia_fabric_manager_packages(fabric_manager, driver_version):
    """The package specifications that install the plan's Fabric Manager at exactly driver_version."""
    return pinned_install(fabric_manager, driver_version)


class FilterModule:
    def filters(self):
        return {
            "nvidia_foreign_branch_packages": nvidia_foreign_branch_packages,
            "nvidia_secure_boot_enabled": nvidia_secure_boot_enabled,
            "nvidia_driver_version": nvidia_driver_version,
            "nvidia_fabric_manager_packages": nvidia_fabric_manager_packages,
        }
