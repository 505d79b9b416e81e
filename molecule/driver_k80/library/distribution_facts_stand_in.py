# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test double: overrides the distribution facts of a Debian sandbox host.

Rocky Linux 8 and Ubuntu 24.04 cannot be booted on the build machines, so the check-mode runs of
the nvidia_driver role for them run on a Debian 12 sandbox host whose gathered distribution facts
this module replaces (a module's ansible_facts are merged into the host's facts).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DISTRIBUTIONS = {
    "Rocky": {"distribution": "Rocky", "distribution_major_version": "8", "distribution_version": "8.10",
              "distribution_release": "Green Obsidian", "os_family": "RedHat", "pkg_mgr": "dnf"},
    "Ubuntu": {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04",
               "distribution_release": "noble", "os_family": "Debian", "pkg_mgr": "apt"},
}


def main():
    module = AnsibleModule(argument_spec={"distribution": {"type": "str", "required": True,
                                                           "choices": sorted(DISTRIBUTIONS)}},
                           supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=DISTRIBUTIONS[module.params["distribution"]])


if __name__ == "__main__":
    main()
