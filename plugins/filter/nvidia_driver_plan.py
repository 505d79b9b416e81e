# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import (
    foreign_branch_packages,
    parse_apt_simulation,
    plan,
    secure_boot_enabled,
)


def nvidia_driver_plan(gpu_host, facts, branch=None, flavor=None, source=None):
    """The nvidia_driver role's decisions for a host; see nvidia_driver_plan.yml."""
    return plan(
        gpu_host,
        facts.get("distribution"),
        facts.get("distribution_major_version"),
        architecture=facts.get("architecture", "x86_64"),
        kernel=facts.get("kernel"),
        branch=branch,
        flavor=flavor,
        source=source,
    )


def nvidia_foreign_branch_packages(apt_simulation, branch):
    """Packages of another driver branch in `apt-get install --simulate` output."""
    return foreign_branch_packages(parse_apt_simulation(apt_simulation), branch)


def nvidia_secure_boot_enabled(efivar_base64):
    """Secure Boot state from the base64 content of the SecureBoot EFI variable (as slurp returns it)."""
    if not efivar_base64:
        return False
    return secure_boot_enabled(base64.b64decode(efivar_base64))


class FilterModule:
    def filters(self):
        return {
            "nvidia_driver_plan": nvidia_driver_plan,
            "nvidia_foreign_branch_packages": nvidia_foreign_branch_packages,
            "nvidia_secure_boot_enabled": nvidia_secure_boot_enabled,
        }
