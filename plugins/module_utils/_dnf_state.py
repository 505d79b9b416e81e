# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What dnf 4 has done on an Enterprise Linux 8 host, read from its own files, and the dnf command
lines that bring the host to a wanted state. Pure functions: the module el_packages reads the files
and runs the commands.

Sources: libdnf ModulePackageContainer (module state files /etc/dnf/modules.d/<name>.module, INI
with name, stream, profiles joined by commas, state enabled|disabled|empty); dnf-plugins-core
plugins/versionlock.py (versionlock.list: one spec per line written as NAME-[EPOCH:]VERSION-RELEASE.*,
"#" comments, "!" for excludes); rpm query.c (rpm -q prints "package X is not installed" for each
missing name); dnf module command ("switching enabled streams is not allowed", reset first:
rpm-software-management/dnf PR #1321); NVIDIA driver installation guide, "Switching between Driver
Module Flavors" (EL8: dnf module switch-to nvidia-driver:<stream> --allowerasing).
"""

from __future__ import annotations

import fnmatch
import re

ENABLED = "enabled"
DISABLED = "disabled"

# The query el_packages gives rpm; parse_rpm_query reads its answer.
RPM_QUERYFORMAT = "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"

_NOT_INSTALLED = re.compile(r"^package (\S+) is not installed$")
_INSTALLED = re.compile(r"^(\S+) (\d+:\S+-\S+)$")
# VERSION of a lock spec: optional EPOCH: then a version starting with a digit.
_LOCK_VERSION = re.compile(r"^(\d+:)?\d")
_LEADING_EPOCH = re.compile(r"^\d+:")


class DnfStateError(ValueError):
    """A wanted state that dnf cannot be asked for (bad module stream spec)."""


def split_module_stream(spec):
    """("nvidia-driver", "570-open") for "nvidia-driver:570-open"; DnfStateError for anything else."""
    parts = (spec or "").split(":")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip() or "/" in spec or " " in spec:
        raise DnfStateError(
            "module_stream %r is not of the form NAME:STREAM (for example nvidia-driver:570-open)." % (spec,))
    return parts[0], parts[1]


def parse_module_state(text):
    """Read a dnf module state file; dict {name, stream, profiles, state} or None for an empty file.

    Only the first section counts (dnf writes one per file). Older dnf releases wrote
    "enabled=1|0" instead of "state"; that is read as enabled/disabled.
    """
    section = None
    values = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            if section is not None:
                break
            section = line[1:-1].strip()
            continue
        if section is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip().lower()] = value.strip()
    if section is None and not values:
        return None
    state = values.get("state")
    if state is None and "enabled" in values:
        state = ENABLED if values["enabled"].lower() in ("1", "true", "yes") else DISABLED
    profiles = [profile.strip() for profile in values.get("profiles", "").split(",") if profile.strip()]
    return {
        "name": values.get("name") or section or "",
        "stream": values.get("stream", ""),
        "profiles": profiles,
        "state": (state or "").lower(),
    }


def parse_rpm_query(text):
    """(installed, missing) from rpm -q --queryformat RPM_QUERYFORMAT output (stdout and stderr together).

    installed maps NAME to "EPOCH:VERSION-RELEASE"; a name installed in several versions (kernel-devel)
    gets them all, joined by ", ", in rpm's order. missing lists the names rpm reported as not
    installed, in rpm's order. Other lines (warnings) are ignored.
    """
    installed = {}
    missing = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        match = _NOT_INSTALLED.match(line)
        if match:
            if match.group(1) not in missing:
                missing.append(match.group(1))
            continue
        match = _INSTALLED.match(line)
        if match:
            name, evr = match.groups()
            if name in installed:
                if evr not in installed[name].split(", "):
                    installed[name] = "%s, %s" % (installed[name], evr)
            else:
                installed[name] = evr
    return installed, missing


def lock_spec_name(spec):
    """Package name of one versionlock.list spec, or None for an exclude ("!...")."""
    spec = spec.strip()
    if not spec or spec.startswith("!"):
        return None
    # yum-era form EPOCH:NAME-VERSION-RELEASE.ARCH
    if _LEADING_EPOCH.match(spec):
        spec = _LEADING_EPOCH.sub("", spec, count=1)
    parts = spec.rsplit("-", 2)
    if len(parts) == 3 and parts[0] and _LOCK_VERSION.match(parts[1]):
        return parts[0]
    # A bare name (or name glob) locks every installed version of it.
    return spec


def parse_versionlock_list(text):
    """Set of the package names (or name globs) locked by a versionlock.list text."""
    names = set()
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = lock_spec_name(line)
        if name:
            names.add(name)
    return names


def is_locked(name, locked):
    """Whether a lock entry (exact name or name glob) covers the package name."""
    if name in locked:
        return True
    return any(fnmatch.fnmatchcase(name, entry) for entry in locked if any(char in entry for char in "*?["))


def _stream_done(stream_state, stream):
    return bool(stream_state) and stream_state["state"] == ENABLED and stream_state["stream"] == stream


def plan_changes(*, stream_state, wanted_stream, wanted_profile, installed, missing, locked, lock):
    """Ordered list of actions {"action", "args"} that bring the host to the wanted state.

    stream_state: parse_module_state() of the module's state file (None when absent).
    wanted_stream: "NAME:STREAM" or None for plain packages only.
    wanted_profile: profile to install from the stream; empty or None to only enable the stream.
    installed: dict NAME -> version of the wanted names rpm found; missing: the wanted names it did not.
    locked: parse_versionlock_list(); lock: whether every wanted name must end up version-locked.

    Another stream of the module already enabled means a switch: its installed packages belong to
    the old stream, so they are unlocked and replaced by "dnf module switch-to --allowerasing",
    which also installs the wanted profile, and locked again at their new versions.
    """
    actions = []
    unlocked = []
    if wanted_stream:
        module_name, stream = split_module_stream(wanted_stream)
        target = "%s:%s" % (module_name, stream)
        profiles = []
        if _stream_done(stream_state, stream):
            profiles = stream_state["profiles"]
        elif stream_state and stream_state["state"] == ENABLED and stream_state["stream"]:
            # Locks hold the old stream's versions and would keep dnf from replacing them.
            unlocked = [name for name in installed if is_locked(name, locked)]
            if unlocked:
                actions.append({"action": "versionlock_delete", "args": unlocked})
            actions.append({"action": "switch_stream", "args": ["%s/%s" % (target, wanted_profile) if wanted_profile else target]})
            profiles = [wanted_profile] if wanted_profile else []
        else:
            # dnf refuses to enable a disabled module's stream without a reset (dnf PR #1321).
            if stream_state and stream_state["state"] == DISABLED:
                actions.append({"action": "reset_stream", "args": [module_name]})
            actions.append({"action": "enable_stream", "args": [target]})
        if wanted_profile and wanted_profile not in profiles:
            actions.append({"action": "install_profile", "args": ["%s/%s" % (target, wanted_profile)]})
    if missing:
        actions.append({"action": "install", "args": list(missing)})
    if lock:
        wanted = list(installed) + [name for name in missing if name not in installed]
        to_lock = [name for name in wanted if name in unlocked or not is_locked(name, locked)]
        if to_lock:
            actions.append({"action": "versionlock", "args": to_lock})
    return actions


_COMMANDS = {
    "reset_stream": ["dnf", "-y", "module", "reset"],
    "switch_stream": ["dnf", "-y", "module", "switch-to", "--allowerasing"],
    "enable_stream": ["dnf", "-y", "module", "enable"],
    "install_profile": ["dnf", "-y", "module", "install"],
    "install": ["dnf", "-y", "install"],
    "versionlock": ["dnf", "versionlock", "add"],
    "versionlock_delete": ["dnf", "versionlock", "delete"],
}


def commands(actions, dnf="dnf"):
    """argv lists for the actions of plan_changes(); dnf replaces the program name (a full path)."""
    result = []
    for action in actions:
        argv = list(_COMMANDS[action["action"]]) + list(action["args"])
        argv[0] = dnf
        result.append(argv)
    return result
