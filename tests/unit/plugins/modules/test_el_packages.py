# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import el_packages

VERSION = "3:570.195.03-1.el8"
KEPLER_VERSION = "3:470.256.02-1.el8"
DRIVER = ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"]
# What the default profile of nvidia-driver:570-open installs, as far as these tests need it.
PROFILES = {"nvidia-driver:570-open/default": ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms", "nvidia-modprobe"]}


class FakeEl8Host:
    """Stands in for rpm and dnf 4 of a Rocky Linux 8 host (neither runs on the build machines).

    Answers rpm -q from its package set and, for dnf commands, changes that set and writes the
    module state file and versionlock.list the way dnf does, under tmp_path.
    """

    def __init__(self, root, installed=None, failing=None):
        self.modules_dir = os.path.join(str(root), "modules.d")
        self.versionlock_list = os.path.join(str(root), "plugins", "versionlock.list")
        os.makedirs(self.modules_dir)
        os.makedirs(os.path.dirname(self.versionlock_list))
        self.installed = dict(installed or {})
        # dnf subcommand word ("install", "versionlock", "enable") -> (rc, stderr) it fails with.
        self.failing = dict(failing or {})
        self.commands = []
        self.bin_paths = []

    def params(self, **options):
        options.setdefault("modules_dir", self.modules_dir)
        options.setdefault("versionlock_list", self.versionlock_list)
        return options

    def write_state(self, name, stream, profiles, state):
        with open(os.path.join(self.modules_dir, name + ".module"), "w") as handle:
            handle.write("[%s]\nname=%s\nstream=%s\nprofiles=%s\nstate=%s\n" % (name, name, stream, ",".join(profiles), state))

    def read_state(self, name):
        with open(os.path.join(self.modules_dir, name + ".module")) as handle:
            return handle.read()

    def lock(self, names):
        with open(self.versionlock_list, "a") as handle:
            handle.write("\n# Added lock on Mon Mar  2 10:00:00 2026\n")
            for name in names:
                handle.write("%s-%s.*\n" % (name, self.installed[name]))

    def dnf_commands(self):
        return [command for command in self.commands if command[0].endswith("dnf")]

    def install(self, monkeypatch):
        host = self

        def get_bin_path(module, arg, required=False, opt_dirs=None):
            host.bin_paths.append(arg)
            return "/usr/bin/%s" % arg

        def run_command(module, args, **kwargs):
            host.commands.append(list(args))
            if args[0] == "/usr/bin/rpm":
                return host._rpm(args)
            return host._dnf(args[1:])

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        return self

    def _rpm(self, args):
        if args[1:4] != ["-q", "--queryformat", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"]:
            return 1, "", "rpm: unexpected arguments %s\n" % args
        out = []
        missing = 0
        for name in args[4:]:
            if name in self.installed:
                out.append("%s %s" % (name, self.installed[name]))
            else:
                out.append("package %s is not installed" % name)
                missing += 1
        # rpm exits with the number of names it did not find.
        return missing, "\n".join(out) + "\n", ""

    def _dnf(self, args):
        words = [word for word in args if word != "-y"]
        verb = words[1] if words[0] == "module" else words[0]
        if verb in self.failing:
            rc, stderr = self.failing[verb]
            return rc, "Last metadata expiration check: 0:01:02 ago.\n", stderr
        if words[0] == "module":
            spec = words[-1]
            if verb == "switch-to":
                return self._switch(spec, allow_erasing="--allowerasing" in words)
            if verb == "reset":
                self.write_state(spec, "", [], "")
            elif verb == "enable":
                name, stream = spec.split(":")
                self.write_state(name, stream, [], "enabled")
            elif verb == "install":
                for package in PROFILES[spec]:
                    self.installed.setdefault(package, VERSION)
                name, rest = spec.split(":")
                stream, profile = rest.split("/")
                self.write_state(name, stream, [profile], "enabled")
        elif verb == "install":
            for package in words[1:]:
                self.installed.setdefault(package, VERSION)
        elif verb == "versionlock" and words[1] == "delete":
            self.unlock(words[2:])
        elif verb == "versionlock":
            self.lock(words[2:])
        return 0, "Complete!\n", ""

    def _switch(self, spec, allow_erasing):
        """dnf module switch-to: replaces the old stream's packages, which locks and a missing --allowerasing forbid."""
        new_packages = PROFILES[spec]
        held = [name for name in new_packages if name in self.installed and name in self.locked_names()]
        if held or not allow_erasing:
            return 1, "", "Error: Problem: cannot install the best candidate for the job (%s)\n" % ", ".join(held or new_packages)
        for package in new_packages:
            self.installed[package] = VERSION
        name, rest = spec.split(":")
        stream, profile = rest.split("/")
        self.write_state(name, stream, [profile], "enabled")
        return 0, "Complete!\n", ""

    def locked_names(self):
        if not os.path.exists(self.versionlock_list):
            return set()
        with open(self.versionlock_list) as handle:
            return set(line.rsplit("-", 2)[0] for line in handle if line.strip() and not line.startswith("#"))

    def unlock(self, names):
        with open(self.versionlock_list) as handle:
            lines = handle.readlines()
        with open(self.versionlock_list, "w") as handle:
            handle.writelines(line for line in lines if line.startswith("#") or line.rsplit("-", 2)[0] not in names)


@pytest.fixture
def el8_host(tmp_path, monkeypatch):
    """A fresh Rocky Linux 8 host: nothing installed, no module state, no locks."""

    def build(installed=None, failing=None):
        return FakeEl8Host(tmp_path, installed, failing).install(monkeypatch)

    return build


def run_module(capsys, args, failed=False):
    """Run el_packages.main() with args the way Ansible passes them; return the parsed result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            el_packages.main()
    result = json.loads(capsys.readouterr().out)
    assert (exit_info.value.code != 0) is failed, result
    assert bool(result.get("failed")) is failed, result
    return result


DRIVER_ARGS = {"module_stream": "nvidia-driver:570-open", "name": DRIVER, "versionlock": True}
FRESH_HOST_ACTIONS = [
    "dnf -y module enable nvidia-driver:570-open",
    "dnf -y module install nvidia-driver:570-open/default",
    "dnf -y install nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms",
    "dnf versionlock add nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms",
]


def test_check_mode_runs_no_dnf_and_reports_the_commands(el8_host, capsys):
    host = el8_host(installed={"nvidia-driver": VERSION})
    result = run_module(capsys, host.params(_ansible_check_mode=True, _ansible_diff=True, **DRIVER_ARGS))
    assert result["changed"] is True
    assert result["actions"] == [
        "dnf -y module enable nvidia-driver:570-open",
        "dnf -y module install nvidia-driver:570-open/default",
        "dnf -y install nvidia-driver-cuda kmod-nvidia-open-dkms",
        "dnf versionlock add nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms",
    ]
    assert result["installed"] == {"nvidia-driver": VERSION}
    assert host.dnf_commands() == []
    assert host.bin_paths == ["rpm"]
    assert host.commands == [["/usr/bin/rpm", "-q", "--queryformat", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"] + DRIVER]
    assert os.listdir(host.modules_dir) == []
    assert not os.path.exists(host.versionlock_list)
    assert result["diff"] == {
        "before": {"stream": None, "profiles": [], "installed": ["nvidia-driver"], "locked": []},
        "after": {"stream": "nvidia-driver:570-open", "profiles": ["default"], "installed": sorted(DRIVER),
                  "locked": sorted(DRIVER)},
    }


def test_real_run_then_second_run_changes_nothing(el8_host, capsys):
    host = el8_host()
    first = run_module(capsys, host.params(_ansible_diff=True, **DRIVER_ARGS))
    assert first["changed"] is True
    assert first["actions"] == FRESH_HOST_ACTIONS
    assert host.dnf_commands() == [
        ["/usr/bin/dnf", "-y", "module", "enable", "nvidia-driver:570-open"],
        ["/usr/bin/dnf", "-y", "module", "install", "nvidia-driver:570-open/default"],
        ["/usr/bin/dnf", "-y", "install"] + DRIVER,
        ["/usr/bin/dnf", "versionlock", "add"] + DRIVER,
    ]
    assert first["installed"] == dict((name, VERSION) for name in DRIVER)
    assert first["diff"]["before"] == {"stream": None, "profiles": [], "installed": [], "locked": []}
    assert first["diff"]["after"] == {"stream": "nvidia-driver:570-open", "profiles": ["default"], "installed": sorted(DRIVER),
                                      "locked": sorted(DRIVER)}

    host.commands = []
    second = run_module(capsys, host.params(**DRIVER_ARGS))
    assert (second["changed"], second["actions"]) == (False, [])
    assert second["installed"] == first["installed"]
    assert host.dnf_commands() == []

    checked = run_module(capsys, host.params(_ansible_check_mode=True, **DRIVER_ARGS))
    assert (checked["changed"], checked["actions"]) == (False, [])


def test_state_files_of_a_done_host_mean_no_change(el8_host, capsys):
    host = el8_host(installed=dict((name, VERSION) for name in DRIVER))
    host.write_state("nvidia-driver", "570-open", ["default"], "enabled")
    host.lock(DRIVER)
    result = run_module(capsys, host.params(_ansible_diff=True, **DRIVER_ARGS))
    assert (result["changed"], result["actions"]) == (False, [])
    assert result["diff"]["before"] == result["diff"]["after"]
    assert host.bin_paths == ["rpm"]


def test_stream_switch_unlocks_replaces_and_locks_the_new_versions(el8_host, capsys):
    host = el8_host(installed=dict((name, KEPLER_VERSION) for name in DRIVER))
    host.write_state("nvidia-driver", "470-dkms", ["default"], "enabled")
    host.lock(DRIVER)
    result = run_module(capsys, host.params(_ansible_diff=True, **DRIVER_ARGS))
    assert result["actions"] == ["dnf versionlock delete nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms",
                                 "dnf -y module switch-to --allowerasing nvidia-driver:570-open/default",
                                 "dnf versionlock add nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms"]
    assert result["installed"] == dict((name, VERSION) for name in DRIVER)
    assert "stream=570-open\nprofiles=default\nstate=enabled" in host.read_state("nvidia-driver")
    with open(host.versionlock_list) as handle:
        locks = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert sorted(locks) == sorted("%s-%s.*" % (name, VERSION) for name in DRIVER)
    assert result["diff"]["after"]["stream"] == "nvidia-driver:570-open"
    assert run_module(capsys, host.params(**DRIVER_ARGS))["changed"] is False


def test_stream_switch_in_check_mode_predicts_the_switch(el8_host, capsys):
    host = el8_host(installed=dict((name, KEPLER_VERSION) for name in DRIVER))
    host.write_state("nvidia-driver", "470-dkms", ["default"], "enabled")
    host.lock(DRIVER)
    result = run_module(capsys, host.params(_ansible_check_mode=True, _ansible_diff=True, **DRIVER_ARGS))
    assert result["changed"] is True
    assert host.dnf_commands() == []
    assert result["diff"]["before"]["stream"] == "nvidia-driver:470-dkms"
    assert result["diff"]["after"] == {"stream": "nvidia-driver:570-open", "profiles": ["default"],
                                       "installed": sorted(DRIVER), "locked": sorted(DRIVER)}


def test_plain_packages_without_stream_or_lock(el8_host, capsys):
    host = el8_host(installed={"dkms": "0:3.2.1-1.el8"})
    result = run_module(capsys, host.params(name=["dkms", "kernel-devel", "dkms"]))
    assert result["actions"] == ["dnf -y install kernel-devel"]
    assert result["installed"] == {"dkms": "0:3.2.1-1.el8", "kernel-devel": VERSION}
    assert not os.path.exists(host.versionlock_list)


def test_nothing_wanted_asks_nothing(el8_host, capsys):
    host = el8_host()
    result = run_module(capsys, host.params())
    assert result == dict(result, changed=False, actions=[], installed={})
    assert (host.commands, host.bin_paths) == ([], [])


def test_failing_dnf_command_fails_with_one_sentence(el8_host, capsys):
    host = el8_host(failing={"install": (1, "Error: Unable to find a match: kmod-nvidia-open-dkms\n")})
    host.write_state("nvidia-driver", "570-open", ["default"], "enabled")
    result = run_module(capsys, host.params(**DRIVER_ARGS), failed=True)
    assert result["msg"] == ("dnf -y install nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms failed with exit code 1: "
                             "Error: Unable to find a match: kmod-nvidia-open-dkms.")
    assert result["rc"] == 1
    assert result["changed"] is False
    # The lock is not attempted after the failed install.
    assert [command[1:3] for command in host.dnf_commands()] == [["-y", "install"]]


def test_failure_after_a_successful_command_reports_changed(el8_host, capsys):
    host = el8_host(failing={"versionlock": (1, "No such command: versionlock. Please use /usr/bin/dnf --help\n"
                                                "It could be a DNF plugin command, try: \"dnf install 'dnf-command(versionlock)'\"\n")})
    result = run_module(capsys, host.params(**DRIVER_ARGS), failed=True)
    assert result["changed"] is True
    assert result["msg"] == (
        "dnf versionlock add nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms failed with exit code 1: "
        "No such command: versionlock. Please use /usr/bin/dnf --help It could be a DNF plugin command, try: "
        "\"dnf install 'dnf-command(versionlock)'\" (install python3-dnf-plugin-versionlock first).")


@pytest.mark.parametrize("args, words", [
    ({"module_stream": "nvidia-driver"}, "NAME:STREAM"),
    ({"module_stream": "nvidia-driver:570-open/default"}, "NAME:STREAM"),
    ({"name": ["--nogpgcheck"]}, "not a package name"),
    ({"name": ["nvidia driver"]}, "not a package name"),
])
def test_bad_options_fail_before_anything_runs(el8_host, capsys, args, words):
    host = el8_host()
    result = run_module(capsys, host.params(**args), failed=True)
    assert words in result["msg"]
    assert host.commands == []


def test_rpm_without_answer_fails(el8_host, monkeypatch, capsys):
    host = el8_host()
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda module, args, **kwargs: (1, "", "error: rpmdb: BDB0113 Thread/process failed\n"))
    result = run_module(capsys, host.params(name=["dkms"]), failed=True)
    assert result["msg"] == "rpm -q gave no answer for dkms (exit code 1): error: rpmdb: BDB0113 Thread/process failed."


def test_only_enable_with_empty_profile(el8_host, capsys):
    host = el8_host()
    result = run_module(capsys, host.params(module_stream="nvidia-driver:470-dkms", module_profile="", name=["nvidia-driver"]))
    assert result["actions"] == ["dnf -y module enable nvidia-driver:470-dkms", "dnf -y install nvidia-driver"]
    assert "stream=470-dkms\nprofiles=\nstate=enabled" in host.read_state("nvidia-driver")
