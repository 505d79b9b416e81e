#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: el_packages
short_description: Install packages and module streams on Enterprise Linux 8 through the dnf command line
version_added: 1.0.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Enables a dnf module stream, installs one of its profiles, installs packages and version-locks them on an Enterprise Linux 8
    host (Rocky Linux, AlmaLinux, RHEL 8), by running the C(dnf) and C(rpm) commands.
  - Exists because M(ansible.builtin.dnf) of ansible-core 2.19 and 2.20 cannot run on Enterprise Linux 8 when the host's Ansible
    interpreter is not the platform Python 3.6, the only one with the C(dnf) Python bindings. This module needs no bindings, so it
    runs under any Python 3.8 or newer on the host.
  - Finds out what is done already from dnf's own files and the rpm database, without running dnf, so that check mode reports exactly
    the commands a real run would run.
  - "The stream: when the module state file (in O(modules_dir)) shows no stream of the module enabled, the module runs
    C(dnf module enable), after C(dnf module reset) when the module is disabled. When the state file does not list O(module_profile)
    among the stream's installed profiles, it runs C(dnf module install NAME:STREAM/PROFILE)."
  - "A switch: when another stream of the module is enabled, the module removes the locks of the installed packages of O(name), then
    runs C(dnf module switch-to --allowerasing NAME:STREAM/PROFILE), which replaces the old stream's packages by the new stream's and
    installs the profile (the switch NVIDIA's driver installation guide gives for Enterprise Linux 8)."
  - The packages of O(name) that rpm does not know as installed are installed with C(dnf install). Outside a stream switch, installed
    packages are never upgraded or downgraded, and nothing is removed.
  - With O(versionlock=true) every package of O(name) that is not covered by an entry of O(versionlock_list) yet, or whose lock a stream
    switch removed, is locked to its installed version with C(dnf versionlock add).
  - Fails with one sentence, holding dnf's error output, when a command fails.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the module state file, the versionlock list and the rpm database, and returns the commands a real run would run in
        RV(actions) without running dnf.
      - Packages that dnf would pull in as dependencies are not predicted.
  diff_mode:
    support: full
    details:
      - The diff shows the enabled stream, its installed profiles, which packages of O(name) are installed and which are locked, before
        and after the run (in check mode, as predicted).
  idempotent:
    support: full
    details:
      - A second run finds the stream enabled with its profile in dnf's state file, the packages installed and locked, and runs nothing.
      - The module trusts dnf's state file for the profile; packages of a profile removed by hand afterwards are not reinstalled unless
        they are also listed in O(name).
options:
  name:
    description:
      - Packages that must be installed, by their rpm names (no versions, architectures, globs, groups or file names).
      - Installed packages are left at their version.
    type: list
    elements: str
    default: []
  module_stream:
    description:
      - A dnf module stream, as C(NAME:STREAM), that must be enabled, for example V(nvidia-driver:570-open) or V(nvidia-driver:470-dkms).
      - When not set, only the packages of O(name) are handled.
    type: str
  module_profile:
    description:
      - The profile of O(module_stream) to install, for example V(default), V(ks) or V(fm).
      - An empty string only enables the stream, so that the packages of O(name) come from it.
      - Ignored without O(module_stream).
    type: str
    default: default
  versionlock:
    description:
      - Lock every package of O(name) to its installed version with C(dnf versionlock add), unless O(versionlock_list) covers it already.
      - Needs the dnf versionlock plugin (package C(python3-dnf-plugin-versionlock)) on the host.
      - Packages a profile installs are only locked when they are listed in O(name).
    type: bool
    default: false
  modules_dir:
    description:
      - Directory where dnf keeps its module state files, one C(NAME.module) per module.
      - Set it only to inspect another root; dnf itself always uses its own directory.
    type: path
    default: /etc/dnf/modules.d
  versionlock_list:
    description:
      - The list file where the dnf versionlock plugin keeps its locks. A missing file means no locks.
      - Set it only to inspect another root or when the plugin's C(locklist) setting points elsewhere.
    type: path
    default: /etc/dnf/plugins/versionlock.list
requirements:
  - dnf 4 and rpm on the managed host (Enterprise Linux 8).
  - The dnf versionlock plugin (C(python3-dnf-plugin-versionlock)) on the managed host when O(versionlock=true).
notes:
  - A stream switch removes only the locks of packages listed in O(name); a lock the operator wrote as a glob stays, and keeps dnf from
    replacing the packages it covers.
  - A dnf too old to know C(module switch-to) fails a stream switch with its own message; update dnf first.
  - Does not refresh repository metadata by itself; dnf does when its cache has expired.
seealso:
  - module: ansible.builtin.dnf
    description: The dnf module of ansible-core, which needs the C(dnf) Python bindings on the host.
  - name: NVIDIA driver installation guide, Red Hat Enterprise Linux 8
    description: The nvidia-driver module streams and profiles.
    link: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/
"""

EXAMPLES = r"""
---
- name: Install DKMS and the kernel headers
  gpufleet.vllm.el_packages:
    name:
      - dkms
      - kernel-devel
      - python3-dnf-plugin-versionlock

- name: Install the open NVIDIA driver of branch 570 from its locked stream and lock its packages
  gpufleet.vllm.el_packages:
    module_stream: nvidia-driver:570-open
    module_profile: default
    name:
      - nvidia-driver
      - nvidia-driver-cuda
      - kmod-nvidia-open-dkms
    versionlock: true
  register: driver_packages

- name: Show what was run and the installed driver version
  ansible.builtin.debug:
    msg: "{{ driver_packages.actions }} -> {{ driver_packages.installed['nvidia-driver'] }}"

- name: Only enable the stream of the Tesla K80 driver, then install one package from it
  gpufleet.vllm.el_packages:
    module_stream: nvidia-driver:470-dkms
    module_profile: ""
    name:
      - nvidia-driver
"""

RETURN = r"""
actions:
  description: The dnf commands run (in check mode, that a real run would run), in order.
  returned: always
  type: list
  elements: str
  sample:
    - dnf -y module enable nvidia-driver:570-open
    - dnf -y module install nvidia-driver:570-open/default
    - dnf -y install kmod-nvidia-open-dkms
    - dnf versionlock add nvidia-driver kmod-nvidia-open-dkms
installed:
  description:
    - The installed version (C(EPOCH:VERSION-RELEASE)) of each package of O(name) that is installed after the run; in check mode,
      of those installed now.
    - A package installed in several versions (such as C(kernel-devel)) gets them all, separated by C(, ).
  returned: always
  type: dict
  sample:
    nvidia-driver: "3:570.195.03-1.el8"
    kmod-nvidia-open-dkms: "3:570.195.03-1.el8"
    dkms: "0:3.2.1-1.el8"
"""

import collections
import errno
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._dnf_state import (
    ENABLED,
    RPM_QUERYFORMAT,
    DnfStateError,
    commands,
    is_locked,
    parse_module_state,
    parse_rpm_query,
    parse_versionlock_list,
    plan_changes,
    split_module_stream,
)


def _read(module, path):
    """Text of a dnf state file; empty when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            return ""
        module.fail_json(msg="Cannot read %s: %s." % (path, error.strerror or error))
    return ""


def _one_line(text):
    return " ".join(line.strip() for line in (text or "").splitlines() if line.strip())


def _query_rpm(module, names):
    """(installed, missing) for the wanted names, installed in the order of names."""
    if not names:
        return {}, []
    rpm = module.get_bin_path("rpm", required=True)
    argv = [rpm, "-q", "--queryformat", RPM_QUERYFORMAT] + list(names)
    # rpm exits with the number of names it did not find; only output that answers every name counts.
    rc, stdout, stderr = module.run_command(argv, environ_update={"LC_ALL": "C"})
    found, not_found = parse_rpm_query("%s\n%s" % (stdout, stderr))
    installed = {}
    missing = []
    for name in names:
        if name in found:
            installed[name] = found[name]
        elif name in not_found:
            missing.append(name)
        else:
            module.fail_json(
                msg="rpm -q gave no answer for %s (exit code %d): %s." % (name, rc, _one_line(stderr) or _one_line(stdout) or "no output"),
                rc=rc, stdout=stdout, stderr=stderr)
    return installed, missing


def _state(module, stream_name):
    if not stream_name:
        return None
    return parse_module_state(_read(module, os.path.join(module.params["modules_dir"], stream_name + ".module")))


# What dnf's files and the rpm database say about the stream's module and the packages of O(name).
HostState = collections.namedtuple("HostState", "stream_state locked installed missing")


def _read_host(module, module_name, names):
    stream_state = _state(module, module_name)
    locked = parse_versionlock_list(_read(module, module.params["versionlock_list"]))
    installed, missing = _query_rpm(module, names)
    return HostState(stream_state, locked, installed, missing)


def _view(host, names):
    """The diff's picture of the host: stream, profiles, installed and locked names of O(name)."""
    stream_state = host.stream_state
    enabled = bool(stream_state) and stream_state["state"] == ENABLED and stream_state["stream"]
    return {
        "stream": "%s:%s" % (stream_state["name"], stream_state["stream"]) if enabled else None,
        "profiles": sorted(stream_state["profiles"]) if enabled else [],
        "installed": sorted(host.installed),
        "locked": sorted(name for name in names if is_locked(name, host.locked)),
    }


def _predicted(before, actions):
    after = dict(before, installed=list(before["installed"]), locked=list(before["locked"]), profiles=list(before["profiles"]))
    for action in actions:
        if action["action"] == "reset_stream":
            after["stream"], after["profiles"] = None, []
        elif action["action"] == "switch_stream":
            stream, dummy, profile = action["args"][0].partition("/")
            after["stream"], after["profiles"] = stream, [profile] if profile else []
        elif action["action"] == "versionlock_delete":
            after["locked"] = sorted(set(after["locked"]) - set(action["args"]))
        elif action["action"] == "enable_stream":
            after["stream"] = action["args"][0]
        elif action["action"] == "install_profile":
            stream, profile = action["args"][0].rsplit("/", 1)
            after["stream"] = stream
            after["profiles"] = sorted(set(after["profiles"]) | {profile})
        elif action["action"] == "install":
            after["installed"] = sorted(set(after["installed"]) | set(action["args"]))
        elif action["action"] == "versionlock":
            after["locked"] = sorted(set(after["locked"]) | set(action["args"]))
    return after


def _failure(argv, rc, stdout, stderr):
    shown = " ".join(["dnf"] + argv[1:])
    detail = _one_line(stderr) or _one_line(stdout) or "no output"
    message = "%s failed with exit code %d: %s" % (shown, rc, detail)
    if argv[1:2] == ["versionlock"] and "no such command" in detail.lower():
        message += " (install python3-dnf-plugin-versionlock first)"
    return message if message.endswith(".") else message + "."


def _package_names(module):
    """The names of O(name), stripped, in order and without repeats."""
    names = []
    for given in module.params["name"]:
        name = (given or "").strip()
        # A leading "-" would reach rpm and dnf as an option.
        if not name or name.startswith("-") or any(char.isspace() for char in name):
            module.fail_json(msg="name holds %r, which is not a package name." % (given,))
        if name not in names:
            names.append(name)
    return names


def _module_name(module):
    """The dnf module of O(module_stream), or None when no stream is wanted."""
    if not module.params["module_stream"]:
        return None
    try:
        return split_module_stream(module.params["module_stream"])[0]
    except DnfStateError as error:
        module.fail_json(msg=str(error))
    return None


def _plan(module, module_name, host):
    params = module.params
    return plan_changes(
        stream_state=host.stream_state,
        wanted_stream=params["module_stream"] if module_name else None,
        wanted_profile=params["module_profile"] if module_name else None,
        installed=host.installed,
        missing=host.missing,
        locked=host.locked,
        lock=params["versionlock"],
    )


def _run_dnf(module, actions, result):
    dnf = module.get_bin_path("dnf", required=True)
    for done, argv in enumerate(commands(actions, dnf=dnf)):
        rc, stdout, stderr = module.run_command(argv)
        if rc != 0:
            # dnf transactions are atomic: only the commands before the failed one changed the host.
            result["changed"] = done > 0
            module.fail_json(msg=_failure(argv, rc, stdout, stderr), rc=rc, stdout=stdout, stderr=stderr, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", default=[]),
            module_stream=dict(type="str"),
            module_profile=dict(type="str", default="default"),
            versionlock=dict(type="bool", default=False),
            modules_dir=dict(type="path", default="/etc/dnf/modules.d"),
            versionlock_list=dict(type="path", default="/etc/dnf/plugins/versionlock.list"),
        ),
        supports_check_mode=True,
    )
    names = _package_names(module)
    module_name = _module_name(module)

    host = _read_host(module, module_name, names)
    actions = _plan(module, module_name, host)
    before = _view(host, names)
    result = {"changed": bool(actions), "actions": [" ".join(argv) for argv in commands(actions)], "installed": host.installed}
    if module.check_mode or not actions:
        if module._diff:
            result["diff"] = {"before": before, "after": _predicted(before, actions)}
        module.exit_json(**result)

    _run_dnf(module, actions, result)
    host = _read_host(module, module_name, names)
    result["installed"] = host.installed
    if module._diff:
        result["diff"] = {"before": before, "after": _view(host, names)}
    if host.missing:
        module.fail_json(msg="dnf reported success, but rpm does not know %s as installed." % ", ".join(host.missing), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
