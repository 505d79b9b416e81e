#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: installed_packages
short_description: List the installed packages and their versions through dpkg-query or rpm
version_added: 1.1.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Reads the package database with C(dpkg-query) (Debian, Ubuntu) or C(rpm) (Enterprise Linux) and returns the installed packages
    with their versions.
  - Unlike M(ansible.builtin.package_facts) it needs no Python bindings of the package manager (C(python3-apt), C(python3-rpm)),
    which a bare Debian host lacks and Rocky Linux 8 has only for its platform Python 3.6. The roles of the collection read it
    before they change anything, so that a check run on a bare host can say what a real run installs.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  names:
    description: Only report these packages; empty reports every installed package.
    type: list
    elements: str
    default: []
seealso:
  - module: ansible.builtin.package_facts
"""

EXAMPLES = r"""
---
- name: Read the installed packages
  gpufleet.vllm.installed_packages:
  register: installed

- name: Say whether Docker is there
  ansible.builtin.debug:
    msg: "{{ 'docker.io' in installed.packages }}"
"""

RETURN = r"""
packages:
  description: Installed package name to version (with its epoch where the package has one).
  returned: success
  type: dict
  sample: {docker.io: "20.10.24+dfsg1-1+deb12u1", nvidia-tesla-470-kernel-dkms: "470.256.02-1~deb12u1"}
manager:
  description: The database that answered, C(dpkg) or C(rpm).
  returned: success
  type: str
  sample: dpkg
"""

from ansible.module_utils.basic import AnsibleModule

# dpkg keeps removed-but-configured packages in its database too: only "install ok installed" counts.
_DPKG = ["-W", "-f", "${Package}\t${Version}\t${Status}\n"]
_RPM = ["-qa", "--qf", "%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n"]


def parse_dpkg(text):
    packages = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[2].endswith(" installed") and " not-installed" not in fields[2]:
            packages[fields[0].split(":")[0]] = fields[1]
    return packages


def parse_rpm(text):
    packages = {}
    for line in text.splitlines():
        name, sep, version = line.partition("\t")
        if sep:
            # rpm's EPOCHNUM is 0 for packages without an epoch; dnf and the driver versions omit it then.
            packages[name] = version[2:] if version.startswith("0:") else version
    return packages


def main():
    module = AnsibleModule(argument_spec=dict(names=dict(type="list", elements="str", default=[])), supports_check_mode=True)
    dpkg_query = module.get_bin_path("dpkg-query")
    if dpkg_query:
        manager, argv, parse = "dpkg", [dpkg_query] + _DPKG, parse_dpkg
    else:
        rpm = module.get_bin_path("rpm")
        if not rpm:
            module.fail_json(msg="Neither dpkg-query nor rpm is on this host: the collection installs on Debian, Ubuntu and "
                                 "Enterprise Linux only.")
        manager, argv, parse = "rpm", [rpm] + _RPM, parse_rpm
    rc, stdout, stderr = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="%s could not list the installed packages (exit code %d): %s." % (manager, rc, stderr.strip()))
    packages = parse(stdout)
    if module.params["names"]:
        packages = dict((name, packages[name]) for name in module.params["names"] if name in packages)
    module.exit_json(changed=False, manager=manager, packages=packages)


if __name__ == "__main__":
    main()
