# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The port preflight, case by case on `ss -Hltnp` output: this deployment's own sockets, a foreign process or container
in the way, IPv4 against IPv6 and dual-stack sockets, wildcard against specific addresses, and the port to set instead."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._port_check import (
    Bind,
    parse_listening,
    port_conflicts,
    published_ports,
    unit_of_cgroup,
)

ROUTER_PID = 3456
OWN = {"own_pids": [ROUTER_PID], "own_ports": [8001, 8002]}

# A host serving deployment "tiny": router on 8000 with metrics on 29000, replicas published by docker-proxy on 8001
# and 8002 (IPv4 and IPv6), and the usual neighbours.
HOST = """\
LISTEN 0      4096         0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=811,fd=3))
LISTEN 0      4096            [::]:22            [::]:*    users:(("sshd",pid=811,fd=4))
LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*    users:(("systemd-resolve",pid=402,fd=14))
LISTEN 0      2048         0.0.0.0:8000       0.0.0.0:*    users:(("vllm-router",pid=3456,fd=9))
LISTEN 0      4096         0.0.0.0:8001       0.0.0.0:*    users:(("docker-proxy",pid=2345,fd=4))
LISTEN 0      4096            [::]:8001          [::]:*    users:(("docker-proxy",pid=2351,fd=4))
LISTEN 0      4096         0.0.0.0:8002       0.0.0.0:*    users:(("docker-proxy",pid=2360,fd=4))
LISTEN 0      4096            [::]:8002          [::]:*    users:(("docker-proxy",pid=2366,fd=4))
LISTEN 0      2048         0.0.0.0:29000      0.0.0.0:*    users:(("vllm-router",pid=3456,fd=11))
LISTEN 0      4096               *:9100             *:*    users:(("prometheus-node",pid=990,fd=3))
"""


def service(bind_address="0.0.0.0", port=8000, replicas=2, metrics_port=29000):
    """The service section of a host plan, as far as ports go."""
    return {
        "bind_address": bind_address,
        "router": {"unit": "vllm-tiny-router", "port": port, "bind_address": bind_address, "metrics_port": metrics_port},
        "replicas": [{"index": index, "unit": "vllm-tiny-%d" % index, "port": port + 1 + index} for index in range(replicas)],
    }


def listen(address, name="python3", pid=4242):
    return "LISTEN 0      128   %s   0.0.0.0:*    users:((\"%s\",pid=%d,fd=5))\n" % (address, name, pid)


def test_parse_reads_addresses_ports_and_processes():
    text = (HOST + 'LISTEN 0 511 *:80 *:* users:(("nginx",pid=10,fd=6),("nginx",pid=11,fd=6))\n'
            "LISTEN 0 128 [::ffff:127.0.0.1]:8080 [::]:*\n" + "LISTEN 0 128 [fe80::1]%eth0:2222 [::]:* users:((\"sshd\",pid=1,fd=3))\n")
    listeners = {(listener.shown, listener.port): listener for listener in parse_listening(text)}
    assert listeners[("127.0.0.53%lo:53", 53)].bind == Bind(frozenset((4,)), "127.0.0.53")
    assert listeners[("[::]:8001", 8001)].bind == Bind(frozenset((6,)), None)
    assert listeners[("*:80", 80)].processes == (("nginx", 10), ("nginx", 11))
    assert listeners[("*:80", 80)].bind == Bind(frozenset((4, 6)), None)
    assert listeners[("[::ffff:127.0.0.1]:8080", 8080)].bind == Bind(frozenset((4,)), "127.0.0.1")
    assert listeners[("[::ffff:127.0.0.1]:8080", 8080)].processes == ()
    assert listeners[("[fe80::1]%eth0:2222", 2222)].bind == Bind(frozenset((6,)), "fe80::1")
    assert len(listeners) == 13


def test_parse_skips_lines_without_a_local_port():
    assert parse_listening("\nState Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n") == ()


def test_own_router_and_replicas_may_keep_their_ports():
    assert port_conflicts(service(), HOST, **OWN) == []


def test_free_host_has_no_conflict():
    assert port_conflicts(service(), "") == []


def test_foreign_process_on_a_replica_port_is_named_with_a_free_base_port():
    text = HOST.replace('("docker-proxy",pid=2345,fd=4)', '("python3",pid=4242,fd=5)')
    assert port_conflicts(service(), text, **OWN) == [
        "Port 8001, which replica 0 (vllm-tiny-0) needs on 0.0.0.0, is taken by python3 (pid 4242) on 0.0.0.0:8001; stop it, "
        "or set port to 8003 (the router takes port and the replicas the ports after it)."]


def test_container_of_another_deployment_is_stopped_by_its_published_port():
    # Nothing of "tiny" runs yet: the docker-proxy on 8001 and 8002 belongs to someone else's containers.
    conflicts = port_conflicts(service(), HOST, own_pids=[ROUTER_PID])
    assert conflicts[0] == (
        "Port 8001, which replica 0 (vllm-tiny-0) needs on 0.0.0.0, is taken by docker-proxy (pid 2345) on 0.0.0.0:8001; stop "
        "that container (docker ps --filter publish=8001), or set port to 8003 (the router takes port and the replicas the "
        "ports after it).")
    assert len(conflicts) == 2


def test_ipv6_only_socket_does_not_clash_with_an_ipv4_wildcard():
    assert port_conflicts(service(), listen("[::]:8000")) == []


def test_dual_stack_socket_clashes_with_an_ipv4_wildcard():
    assert port_conflicts(service(), listen("*:8000", "caddy", 77)) == [
        "Port 8000, which the router needs on 0.0.0.0, is taken by caddy (pid 77) on *:8000; stop it, or set port to 8001 "
        "(the router takes port and the replicas the ports after it)."]


def test_ipv6_plan_clashes_with_an_ipv4_socket():
    conflicts = port_conflicts(service(bind_address="::"), listen("127.0.0.1:8002"))
    assert conflicts[0].startswith("Port 8002, which replica 1 (vllm-tiny-1) needs on ::, is taken by python3 (pid 4242) on "
                                   "127.0.0.1:8002;")


@pytest.mark.parametrize("plan_bind, taken, clash", [
    ("0.0.0.0", "127.0.0.1:8001", True),
    ("10.0.0.5", "0.0.0.0:8001", True),
    ("10.0.0.5", "127.0.0.1:8001", False),
    ("10.0.0.5", "10.0.0.5:8001", True),
    ("10.0.0.5", "[::]:8001", False),
    ("fd00::5", "[::]:8001", True),
    ("fd00::5", "[fd00::6]:8001", False),
])
def test_wildcard_and_specific_addresses(plan_bind, taken, clash):
    assert bool(port_conflicts(service(bind_address=plan_bind), listen(taken))) is clash


def test_metrics_port_in_the_way_names_router_metrics_port():
    text = HOST.replace('("vllm-router",pid=3456,fd=11)', '("grafana-agent",pid=5000,fd=7)')
    assert port_conflicts(service(), text, **OWN) == [
        "Port 29000, which the router's metrics needs on 0.0.0.0, is taken by grafana-agent (pid 5000) on 0.0.0.0:29000; "
        "stop it, or set router_metrics_port to 29001."]


def test_process_ss_does_not_name_is_still_in_the_way():
    conflicts = port_conflicts(service(), "LISTEN 0 128 0.0.0.0:8000 0.0.0.0:*\n")
    assert conflicts[0].startswith("Port 8000, which the router needs on 0.0.0.0, is taken by a process that ss cannot name "
                                   "on 0.0.0.0:8000 (find it with ss -ltnp as root on the host); stop it,")


def test_every_socket_of_a_port_is_named_once_in_its_sentence():
    text = listen("0.0.0.0:8000", "nginx", 10) + listen("[::]:8000", "nginx", 10) + listen("*:8000", "nginx", 11)
    conflicts = port_conflicts(service(), text)
    assert len(conflicts) == 1
    assert "taken by nginx (pid 10) on 0.0.0.0:8000 and nginx (pid 11) on *:8000;" in conflicts[0]


def test_suggested_base_port_skips_ports_in_use_and_the_metrics_port():
    text = listen("0.0.0.0:8000") + listen("0.0.0.0:8004", "redis", 9) + listen("0.0.0.0:8006", "redis", 9)
    conflicts = port_conflicts(service(metrics_port=8003), text)
    assert conflicts[0].endswith("stop it, or set port to 8007 (the router takes port and the replicas the ports after it).")


def test_bind_address_that_is_no_ip_address_is_refused():
    with pytest.raises(ValueError) as caught:
        port_conflicts(service(bind_address="localhost"), HOST)
    assert str(caught.value) == "bind_address 'localhost' is no IP address; set an address of this host, or 0.0.0.0 for all of them."


@pytest.mark.parametrize("text, unit", [
    ("0::/system.slice/vllm-tiny-router.service\n", "vllm-tiny-router"),
    ("0::/system.slice/docker.service/libnetwork\n", "docker"),
    ("12:pids:/system.slice/vllm-tiny-0.service\n11:cpu,cpuacct:/system.slice/vllm-tiny-0.service\n", "vllm-tiny-0"),
    ("0::/init.scope\n", None),
    ("0::/system.slice/docker-0123abcd.scope\n", None),
    ("", None),
])
def test_unit_of_cgroup(text, unit):
    assert unit_of_cgroup(text) == unit


def test_published_ports_are_those_of_the_named_containers():
    docker_ps = ("vllm-tiny-0\t0.0.0.0:8001->8000/tcp, :::8001->8000/tcp\n"
                 "vllm-tiny-1\t127.0.0.1:8002->8000/tcp\n"
                 "registry\t0.0.0.0:5000->5000/tcp\n"
                 "vllm-tiny-2\t\n")
    assert published_ports(docker_ps, ["vllm-tiny-0", "vllm-tiny-1", "vllm-tiny-2"]) == [8001, 8002]
