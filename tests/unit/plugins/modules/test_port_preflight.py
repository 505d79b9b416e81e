# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""port_preflight against this machine's real sockets and processes: a port this test listens on is refused with the
test's own process named, unless the test's process belongs to the deployment; and how the deployment's units and their
processes are found in a unit directory and a /proc tree."""

from __future__ import annotations

import json
import os
import socket

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import port_preflight


def service(port, name="tiny"):
    return {"name": name, "bind_address": "127.0.0.1",
            "router": {"unit": "vllm-%s-router" % name, "port": port, "bind_address": "127.0.0.1", "metrics_port": port + 5},
            "replicas": [{"index": 0, "unit": "vllm-%s-0" % name, "port": port + 1}]}


@pytest.fixture
def listening():
    """A socket that really listens on a free loopback port, as another program's would."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            port_preflight.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_port_another_process_listens_on_is_refused_naming_it(capsys, tmp_path, listening):
    code, result = run_module(capsys, {"service": service(listening), "unit_dir": str(tmp_path)})
    assert code == 1
    assert result["msg"].startswith("Port %d, which the router needs on 127.0.0.1, is taken by " % listening)
    assert "(pid %d) on 127.0.0.1:%d; stop it, or set port to " % (os.getpid(), listening) in result["msg"]
    assert result["conflicts"] == [result["msg"]]


def test_free_ports_pass(capsys, tmp_path, listening):
    # Ports above one that was just free: the listener's own port is left out.
    code, result = run_module(capsys, {"service": service(listening + 10), "unit_dir": str(tmp_path)})
    assert (code, result["checked"], result["ports"]) == (0, True, [listening + 10, listening + 11, listening + 15])


def test_port_the_deployment_holds_passes(capsys, tmp_path, monkeypatch, listening):
    monkeypatch.setattr(port_preflight, "unit_pids", lambda units: [os.getpid()] if "vllm-tiny-router" in units else [])
    code, result = run_module(capsys, {"service": service(listening), "unit_dir": str(tmp_path)})
    assert (code, result["checked"]) == (0, True)


def test_without_ss_the_ports_are_not_checked_and_it_says_so(capsys, tmp_path, monkeypatch):
    # Module warnings collect in a process-wide store: a fresh one keeps this warning out of later tests.
    monkeypatch.setattr(module_warnings, "_global_warnings", {})
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, arg, required=False, opt_dirs=None: None)
    code, result = run_module(capsys, {"service": service(8000), "unit_dir": str(tmp_path)})
    assert (code, result["checked"]) == (0, False)
    # ansible-core 2.19 wraps each warning in an event; older releases give the text.
    messages = [item["event"]["msg"] if isinstance(item, dict) else item for item in result["warnings"]]
    assert messages == ["ss is missing on this host, so the ports the plan listens on were not checked; install "
                        "iproute2 (iproute on Rocky Linux) to have them checked before anything stops."]


def test_units_of_the_deployment_come_from_the_plan_and_its_marked_unit_files(tmp_path):
    (tmp_path / "vllm-tiny-2.service").write_text("[Unit]\nX-GpufleetDeployment=tiny\n")
    (tmp_path / "vllm-tiny-big-0.service").write_text("[Unit]\nX-GpufleetDeployment=tiny-big\n")
    (tmp_path / "nginx.service").write_text("[Unit]\nX-GpufleetDeployment=tiny\n")
    assert port_preflight.deployment_units(service(8000), str(tmp_path)) == {
        "vllm-tiny-router", "vllm-tiny-0", "vllm-tiny-2", "vllm-tiny"}


def test_unit_processes_are_found_by_their_cgroup(tmp_path):
    cgroups = {"1": "0::/init.scope\n", "310": "0::/system.slice/vllm-tiny-router.service\n",
               "311": "0::/system.slice/docker.service\n", "12": "0::/system.slice/vllm-tiny-0.service/payload\n",
               "self": "0::/user.slice\n"}
    for pid, text in cgroups.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cgroup").write_text(text)
    (tmp_path / "4000").mkdir()  # ended while /proc was read: no cgroup file any more
    assert sorted(port_preflight.unit_pids({"vllm-tiny-router", "vllm-tiny-0"}, proc=str(tmp_path))) == [12, 310]
