# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._dnf_state import (
    DnfStateError,
    commands,
    is_locked,
    parse_module_state,
    parse_rpm_query,
    parse_versionlock_list,
    plan_changes,
    split_module_stream,
)

# Module state files as libdnf writes them to /etc/dnf/modules.d/nvidia-driver.module.
ENABLED_570_OPEN = "[nvidia-driver]\nname=nvidia-driver\nstream=570-open\nprofiles=default\nstate=enabled\n"
ENABLED_570_OPEN_NO_PROFILE = "[nvidia-driver]\nname=nvidia-driver\nstream=570-open\nprofiles=\nstate=enabled\n"
ENABLED_470_DKMS = "[nvidia-driver]\nname=nvidia-driver\nstream=470-dkms\nprofiles=default,fm\nstate=enabled\n"
DISABLED = "[nvidia-driver]\nname=nvidia-driver\nstream=\nprofiles=\nstate=disabled\n"
RESET = "[nvidia-driver]\nname=nvidia-driver\nstream=\nprofiles=\nstate=\n"


@pytest.mark.parametrize("text, expected", [
    (ENABLED_570_OPEN, {"name": "nvidia-driver", "stream": "570-open", "profiles": ["default"], "state": "enabled"}),
    (ENABLED_570_OPEN_NO_PROFILE, {"name": "nvidia-driver", "stream": "570-open", "profiles": [], "state": "enabled"}),
    (ENABLED_470_DKMS, {"name": "nvidia-driver", "stream": "470-dkms", "profiles": ["default", "fm"], "state": "enabled"}),
    (DISABLED, {"name": "nvidia-driver", "stream": "", "profiles": [], "state": "disabled"}),
    (RESET, {"name": "nvidia-driver", "stream": "", "profiles": [], "state": ""}),
    # Spaces around "=" and ", " between profiles, as a hand-edited file may have them.
    ("# kept by dnf\n[nvidia-driver]\nname = nvidia-driver\nstream = 580-open\nprofiles = default, src\nstate = enabled\n",
     {"name": "nvidia-driver", "stream": "580-open", "profiles": ["default", "src"], "state": "enabled"}),
    # Older dnf wrote enabled=1 instead of state.
    ("[nodejs]\nname=nodejs\nstream=10\nprofiles=\nenabled=1\n", {"name": "nodejs", "stream": "10", "profiles": [], "state": "enabled"}),
    ("", None),
    ("\n\n", None),
])
def test_parse_module_state(text, expected):
    assert parse_module_state(text) == expected


def test_parse_module_state_reads_only_the_first_section():
    text = ENABLED_570_OPEN + "[other]\nname=other\nstream=1\nstate=disabled\n"
    assert parse_module_state(text)["stream"] == "570-open"


@pytest.mark.parametrize("spec, expected", [
    ("nvidia-driver:570-open", ("nvidia-driver", "570-open")),
    ("nvidia-driver:470-dkms", ("nvidia-driver", "470-dkms")),
])
def test_split_module_stream(spec, expected):
    assert split_module_stream(spec) == expected


@pytest.mark.parametrize("spec", ["nvidia-driver", "nvidia-driver:", ":570-open", "nvidia-driver:570-open/default",
                                  "nvidia-driver:570-open:8100", "nvidia driver:570", ""])
def test_split_module_stream_rejects(spec):
    with pytest.raises(DnfStateError, match="NAME:STREAM"):
        split_module_stream(spec)


@pytest.mark.parametrize("text, installed, missing", [
    ("nvidia-driver 3:570.195.03-1.el8\ndkms 0:3.2.1-1.el8\n",
     {"nvidia-driver": "3:570.195.03-1.el8", "dkms": "0:3.2.1-1.el8"}, []),
    ("nvidia-driver 3:570.195.03-1.el8\npackage kmod-nvidia-open-dkms is not installed\ndkms 0:3.2.1-1.el8\n"
     "package python3-dnf-plugin-versionlock is not installed\n",
     {"nvidia-driver": "3:570.195.03-1.el8", "dkms": "0:3.2.1-1.el8"},
     ["kmod-nvidia-open-dkms", "python3-dnf-plugin-versionlock"]),
    ("package nvidia-driver is not installed\npackage dkms is not installed\n", {}, ["nvidia-driver", "dkms"]),
    # Two kernels' headers installed side by side.
    ("kernel-devel 0:4.18.0-553.el8_10\nkernel-devel 0:4.18.0-553.5.1.el8_10\n",
     {"kernel-devel": "0:4.18.0-553.el8_10, 0:4.18.0-553.5.1.el8_10"}, []),
    # Warnings on stderr are not answers.
    ("warning: Found bdb Packages database while attempting sqlite backend: using bdb backend.\n"
     "package dkms is not installed\n", {}, ["dkms"]),
    ("", {}, []),
])
def test_parse_rpm_query(text, installed, missing):
    assert parse_rpm_query(text) == (installed, missing)


@pytest.mark.parametrize("text, expected", [
    # dnf versionlock add writes NAME-EPOCH:VERSION-RELEASE.* under a comment line.
    ("\n# Added lock on Mon Mar  2 10:00:00 2026\nnvidia-driver-3:570.195.03-1.el8.*\nkmod-nvidia-open-dkms-3:570.195.03-1.el8.*\n",
     {"nvidia-driver", "kmod-nvidia-open-dkms"}),
    ("dkms-0:3.2.1-1.el8.*\n", {"dkms"}),
    # Without epoch, with a real architecture, and the yum-era EPOCH:NAME form.
    ("nvidia-driver-cuda-570.195.03-1.el8.*\nnvidia-persistenced-570.195.03-1.el8.x86_64\n0:nvidia-modprobe-570.195.03-1.el8.x86_64\n",
     {"nvidia-driver-cuda", "nvidia-persistenced", "nvidia-modprobe"}),
    # A bare name and a name glob lock as they are; excludes ("!") are no locks.
    ("nvidia-driver-libs\nnvidia-*\n!nvidia-driver-devel-3:580.65.06-1.el8.*\n", {"nvidia-driver-libs", "nvidia-*"}),
    ("# only comments\n\n   \n", set()),
    ("", set()),
])
def test_parse_versionlock_list(text, expected):
    assert parse_versionlock_list(text) == expected


@pytest.mark.parametrize("name, locked, expected", [
    ("nvidia-driver", {"nvidia-driver"}, True),
    ("nvidia-driver-cuda", {"nvidia-driver"}, False),
    ("nvidia-driver-cuda", {"nvidia-*"}, True),
    ("dkms", {"nvidia-*"}, False),
    ("dkms", set(), False),
])
def test_is_locked(name, locked, expected):
    assert is_locked(name, locked) is expected


DRIVER = ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"]
VERSION = "3:570.195.03-1.el8"
ALL_INSTALLED = dict((name, VERSION) for name in DRIVER)


def plan(state_text, stream="nvidia-driver:570-open", profile="default", installed=None, missing=(), locked=(), lock=True):
    return plan_changes(stream_state=parse_module_state(state_text), wanted_stream=stream, wanted_profile=profile,
                        installed=dict(installed or {}), missing=list(missing), locked=set(locked), lock=lock)


def test_plan_fresh_host():
    actions = plan("", missing=DRIVER)
    assert actions == [
        {"action": "enable_stream", "args": ["nvidia-driver:570-open"]},
        {"action": "install_profile", "args": ["nvidia-driver:570-open/default"]},
        {"action": "install", "args": DRIVER},
        {"action": "versionlock", "args": DRIVER},
    ]
    assert commands(actions) == [
        ["dnf", "-y", "module", "enable", "nvidia-driver:570-open"],
        ["dnf", "-y", "module", "install", "nvidia-driver:570-open/default"],
        ["dnf", "-y", "install", "nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"],
        ["dnf", "versionlock", "add", "nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"],
    ]


def test_plan_host_already_done():
    assert plan(ENABLED_570_OPEN, installed=ALL_INSTALLED, locked=DRIVER) == []


def test_plan_stream_switch_unlocks_switches_and_locks_again():
    actions = plan(ENABLED_470_DKMS, installed=ALL_INSTALLED, locked=DRIVER)
    assert actions == [
        {"action": "versionlock_delete", "args": DRIVER},
        {"action": "switch_stream", "args": ["nvidia-driver:570-open/default"]},
        {"action": "versionlock", "args": DRIVER},
    ]
    assert commands(actions) == [
        ["dnf", "versionlock", "delete", "nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"],
        ["dnf", "-y", "module", "switch-to", "--allowerasing", "nvidia-driver:570-open/default"],
        ["dnf", "versionlock", "add", "nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"],
    ]


def test_plan_flavor_switch_installs_the_new_kernel_module_package():
    # From 570-dkms (kmod-nvidia-latest-dkms) to 570-open: the open module package is new.
    installed = {"nvidia-driver": VERSION, "nvidia-driver-cuda": VERSION}
    enabled_570_dkms = ENABLED_570_OPEN.replace("570-open", "570-dkms")
    actions = plan(enabled_570_dkms, installed=installed, missing=["kmod-nvidia-open-dkms"],
                   locked=["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-latest-dkms"])
    assert actions == [
        {"action": "versionlock_delete", "args": ["nvidia-driver", "nvidia-driver-cuda"]},
        {"action": "switch_stream", "args": ["nvidia-driver:570-open/default"]},
        {"action": "install", "args": ["kmod-nvidia-open-dkms"]},
        {"action": "versionlock", "args": ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"]},
    ]


@pytest.mark.parametrize("profile", ["", None])
def test_plan_stream_switch_without_profile(profile):
    actions = plan(ENABLED_470_DKMS, profile=profile, installed={"nvidia-driver": VERSION}, lock=False)
    assert actions == [{"action": "switch_stream", "args": ["nvidia-driver:570-open"]}]


@pytest.mark.parametrize("state_text, first", [
    (DISABLED, [{"action": "reset_stream", "args": ["nvidia-driver"]}, {"action": "enable_stream", "args": ["nvidia-driver:570-open"]}]),
    (RESET, [{"action": "enable_stream", "args": ["nvidia-driver:570-open"]}]),
    ("", [{"action": "enable_stream", "args": ["nvidia-driver:570-open"]}]),
])
def test_plan_enables_a_stream_not_enabled(state_text, first):
    actions = plan(state_text, installed=ALL_INSTALLED, locked=DRIVER)
    assert actions == first + [{"action": "install_profile", "args": ["nvidia-driver:570-open/default"]}]


def test_plan_profile_missing_from_enabled_stream():
    actions = plan(ENABLED_570_OPEN_NO_PROFILE, installed=ALL_INSTALLED, locked=DRIVER)
    assert actions == [{"action": "install_profile", "args": ["nvidia-driver:570-open/default"]}]


@pytest.mark.parametrize("profile", ["", None])
def test_plan_without_profile_only_enables(profile):
    actions = plan("", profile=profile, missing=["nvidia-driver"], lock=False)
    assert actions == [{"action": "enable_stream", "args": ["nvidia-driver:570-open"]},
                       {"action": "install", "args": ["nvidia-driver"]}]


def test_plan_locks_only_what_is_not_locked():
    installed = {"nvidia-driver": VERSION, "nvidia-driver-cuda": VERSION}
    actions = plan(ENABLED_570_OPEN, installed=installed, missing=["kmod-nvidia-open-dkms"], locked=["nvidia-driver", "dkms"])
    assert actions == [{"action": "install", "args": ["kmod-nvidia-open-dkms"]},
                       {"action": "versionlock", "args": ["nvidia-driver-cuda", "kmod-nvidia-open-dkms"]}]


def test_plan_lock_glob_covers_names():
    assert plan(ENABLED_570_OPEN, installed=ALL_INSTALLED, locked=["nvidia-*", "kmod-nvidia-*"]) == []


def test_plan_lock_false_never_locks():
    actions = plan(ENABLED_570_OPEN, installed={"nvidia-driver": VERSION}, missing=["kmod-nvidia-open-dkms"], lock=False)
    assert actions == [{"action": "install", "args": ["kmod-nvidia-open-dkms"]}]
    assert plan(ENABLED_570_OPEN, installed=ALL_INSTALLED, lock=False) == []


def test_plan_packages_without_stream():
    packages_only = dict(stream_state=None, wanted_stream=None, wanted_profile="default", installed={"dkms": "0:3.2.1-1.el8"},
                         locked=set(), lock=False)
    actions = plan_changes(missing=["kernel-devel"], **packages_only)
    assert commands(actions) == [["dnf", "-y", "install", "kernel-devel"]]
    assert plan_changes(missing=[], **packages_only) == []


def test_commands_use_the_given_dnf_path():
    actions = [{"action": "versionlock", "args": ["dkms"]}]
    assert commands(actions, dnf="/usr/bin/dnf") == [["/usr/bin/dnf", "versionlock", "add", "dkms"]]
