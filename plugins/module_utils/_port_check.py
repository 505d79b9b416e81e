# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Before anything is stopped: are the ports the plan wants free of everything but this deployment.

A port taken by another process is otherwise found only when Docker fails to publish a replica or the router fails to
bind, after the replica it replaces has been stopped. The host's listening sockets come from `ss -Hltnp`; what is this
deployment's own (its units' processes, the docker-proxy of its containers' published ports) may hold the ports it
already has. One sentence per port in the way names the process and a free port to set instead.

Which processes are a unit's comes from /proc/<pid>/cgroup, and which ports a container publishes from
`docker ps --format '{{.Names}}\t{{.Ports}}'`; the containers of this deployment are named after its units.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional, Tuple

# A local address as ss prints it: "0.0.0.0:8000", "[::]:8000", "*:8000" (IPv6 and IPv4 both), "127.0.0.53%lo:53",
# "[fe80::1]%eth0:22". A peer ("0.0.0.0:*") has no port number and does not match.
_ADDRESS = re.compile(r"^(?P<address>\*|\[[^\]]+\]|[^\s\[\]%]+)(?:%[^:\s]+)?:(?P<port>\d+)$")
_PROCESS = re.compile(r'\("(?P<name>(?:[^"\\]|\\.)*)",pid=(?P<pid>\d+),fd=\d+\)')
_DOCKER_PROXY = "docker-proxy"
# "0.0.0.0:8001->8000/tcp", ":::8001->8000/tcp", "[::]:8001->8000/tcp": the host port is the number before "->".
_PUBLISHED = re.compile(r":(?P<port>\d+)->")
_HIGHEST_PORT = 65535


@dataclass(frozen=True)
class Bind:
    """Where a socket listens: the IP families it takes and its address, None for every address of them."""

    families: frozenset
    address: Optional[str]

    @classmethod
    def parse(cls, text):
        """A Bind from an address as ss prints it or as a plan sets it ("0.0.0.0", "::", "[::]", "*", "10.0.0.5")."""
        if text in ("*", "::"):
            # ss prints "*" for an IPv6 socket that takes IPv4 too; a server told to bind "::" gets one on Linux.
            return cls(frozenset((4, 6)), None)
        ip = ipaddress.ip_address(text.strip("[]"))
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return cls(frozenset((ip.version,)), None if ip.is_unspecified else str(ip))

    def clashes(self, other):
        """Whether two sockets on one port cannot both listen: Linux refuses a wildcard beside any address of its family."""
        if not self.families & other.families:
            return False
        return self.address is None or other.address is None or self.address == other.address


@dataclass(frozen=True)
class Listener:
    """One listening socket of `ss -Hltnp`: where it listens, as ss printed it, and its processes (name, pid)."""

    shown: str
    bind: Bind
    port: int
    processes: Tuple[Tuple[str, int], ...]

    @property
    def label(self):
        if not self.processes:
            # ss names another user's process only to a root that may inspect it (CAP_SYS_PTRACE, which containers drop).
            return "a process that ss cannot name on %s (find it with ss -ltnp as root on the host)" % self.shown
        pids = {}
        for name, pid in self.processes:
            pids.setdefault(name, []).append(str(pid))
        owners = " and ".join("%s (pid%s %s)" % (name, "s" if len(found) > 1 else "", ", ".join(found)) for name, found in pids.items())
        return "%s on %s" % (owners, self.shown)


def parse_listening(text):
    """The Listeners of `ss -Hltnp` output; lines without a local address and port are skipped."""
    listeners = []
    for line in text.splitlines():
        local = next((match for match in map(_ADDRESS.match, line.split()) if match), None)
        if local is None:
            continue
        processes = tuple((match.group("name"), int(match.group("pid"))) for match in _PROCESS.finditer(line))
        listeners.append(Listener(local.group(0), Bind.parse(local.group("address")), int(local.group("port")), processes))
    return tuple(listeners)


@dataclass(frozen=True)
class _Wanted:
    """A port the plan listens on: where, what takes it, and the setting that moves it."""

    port: int
    bind: Bind
    bind_text: str
    what: str
    setting: str


def _plan_bind(text):
    try:
        return Bind.parse(str(text))
    except ValueError:
        # The sentence says all there is; ipaddress's own message would only repeat it.
        raise ValueError("bind_address %r is no IP address; set an address of this host, or 0.0.0.0 for all of them." % (text,)) from None


def _wanted(service):
    """Every port the service plan listens on, with what takes it and the setting that moves it; the router first."""
    router = service["router"]
    router_bind, replica_bind = _plan_bind(router["bind_address"]), _plan_bind(service["bind_address"])
    wanted = [_Wanted(int(router["port"]), router_bind, router["bind_address"], "the router", "port")]
    wanted += [_Wanted(int(replica["port"]), replica_bind, service["bind_address"],
                       "replica %d (%s)" % (replica["index"], replica["unit"]), "port") for replica in service["replicas"]]
    if router.get("metrics_port"):
        wanted.append(_Wanted(int(router["metrics_port"]), router_bind, router["bind_address"], "the router's metrics",
                              "router_metrics_port"))
    return wanted


def _ours(listener, own_pids, own_ports):
    """Whether every process on the socket is this deployment's: a unit's process, or Docker's proxy for a port one of its
    containers publishes."""
    return bool(listener.processes) and all(
        pid in own_pids or (name == _DOCKER_PROXY and listener.port in own_ports) for name, pid in listener.processes)


def port_conflicts(service, listening, own_pids=(), own_ports=()):
    """One sentence per port the service plan wants that something else listens on; empty when all are free.

    service: the plan's service section (bind_address, router with port, bind_address and metrics_port, replicas with
    index, unit and port). listening: the text of `ss -Hltnp`. own_pids: the processes of this deployment's units (their
    main pids and descendants). own_ports: the host ports this deployment's containers publish, which their docker-proxy
    holds.
    """
    listeners = parse_listening(listening)
    wanted = _wanted(service)
    own_pids, own_ports = set(int(pid) for pid in own_pids), set(int(port) for port in own_ports)
    conflicts = []
    for want in wanted:
        foreign = [listener for listener in listeners if listener.port == want.port and want.bind.clashes(listener.bind)
                   and not _ours(listener, own_pids, own_ports)]
        if foreign:
            conflicts.append(_sentence(want, foreign, _instead(want, wanted, listeners)))
    return conflicts


def _sentence(want, foreign, instead):
    names = [name for listener in foreign for name, dummy in listener.processes]
    containers = all(listener.processes for listener in foreign) and all(name == _DOCKER_PROXY for name in names)
    remedy = "stop that container (docker ps --filter publish=%d)" % want.port if containers else "stop it"
    if instead is not None and want.setting == "port":
        remedy += ", or set port to %d (the router takes port and the replicas the ports after it)" % instead
    elif instead is not None:
        remedy += ", or set %s to %d" % (want.setting, instead)
    return "Port %d, which %s needs on %s, is taken by %s; %s." % (
        want.port, want.what, want.bind_text, " and ".join(listener.label for listener in foreign), remedy)


def _free(port, bind, listeners):
    return not any(listener.port == port and bind.clashes(listener.bind) for listener in listeners)


def _instead(want, wanted, listeners):
    """The lowest value above the current one for the setting that moves `want` where nothing listens; None if none."""
    if want.setting == "port":
        return _free_base_port(wanted, listeners)
    taken = set(item.port for item in wanted)
    return next((port for port in range(want.port + 1, _HIGHEST_PORT + 1)
                 if port not in taken and _free(port, want.bind, listeners)), None)


def _free_base_port(wanted, listeners):
    """The lowest port above the router's from which the router and the replicas after it all find their ports free."""
    moved = [item for item in wanted if item.setting == "port"]
    fixed = set(item.port for item in wanted if item.setting != "port")
    for base in range(moved[0].port + 1, _HIGHEST_PORT - len(moved) + 2):
        ports = [base + offset for offset in range(len(moved))]
        if not fixed & set(ports) and all(_free(port, item.bind, listeners) for port, item in zip(ports, moved)):
            return base
    return None


def unit_of_cgroup(text):
    """The systemd service a process runs in, from its /proc/<pid>/cgroup; None outside any service.

    cgroup v2 has one line ("0::/system.slice/vllm-tiny-0.service"), v1 one per hierarchy; a service's own sub-cgroups
    ("/system.slice/docker.service/...") still belong to it, so the innermost path element that names a service counts.
    """
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        services = [part for part in path.split("/") if part.endswith(".service")]
        if services:
            return services[-1][:-len(".service")]
    return None


def published_ports(docker_ps, names):
    """The host ports the named containers publish, from `docker ps --format '{{.Names}}\\t{{.Ports}}'`."""
    wanted = set(names)
    ports = set()
    for line in docker_ps.splitlines():
        name, dummy, published = line.partition("\t")
        if name in wanted:
            ports.update(int(match.group("port")) for match in _PUBLISHED.finditer(published))
    return sorted(ports)
