# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What Prometheus scrapes, read from the host plans rather than decided again.

Each planned host serves /metrics on every vLLM replica's port and on its router's metrics port, and
every host runs a node exporter. scrape_targets() lists them as the prometheus role's
prometheus_scrape_targets: one mapping per target with the host, the address Prometheus connects
to, the job, the port and the labels that tell the targets of one job apart.
"""

from __future__ import annotations

JOBS = ("vllm", "vllm-router", "node")

# A server bound to every address is reached at its host's address; one bound to a single address only there.
_ANY_ADDRESS = ("", "0.0.0.0", "::")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ScrapeTargetError(ValueError):
    """Input the targets cannot be read from; the text is one sentence naming the host and what to do."""


def scrape_targets(plans, addresses, node_ports):
    """The scrape targets of a fleet, sorted by job, host and port.

    plans: {host: plan} of the planned hosts (host_plan's plan, with its service part).
    addresses: {host: address} of every host whose node exporter is scraped; an empty address
    means the inventory name. Every planned host must be among them.
    node_ports: {host: port} of the node exporter of every host of addresses.
    """
    missing = sorted(set(plans) - set(addresses))
    if missing:
        raise ScrapeTargetError(
            "%s has a plan but no address to scrape: run the node exporter play on every planned host." % ", ".join(missing))
    portless = sorted(set(addresses) - set(node_ports))
    if portless:
        raise ScrapeTargetError("%s has no node exporter port: give one for every host to scrape." % ", ".join(portless))
    targets = []
    for host in sorted(addresses):
        address = addresses[host] or host
        targets.append(_target(host, address, "node", node_ports[host], {}))
        if host in plans:
            targets.extend(_service_targets(host, address, plans[host]))
    return sorted(targets, key=lambda target: (JOBS.index(target["job"]), target["host"], target["port"]))


def _service_targets(host, address, plan):
    """One target per replica and one for the router's metrics port."""
    service = plan.get("service") if isinstance(plan, dict) else None
    if not isinstance(service, dict) or not isinstance(service.get("replicas"), list):
        raise ScrapeTargetError(
            "The plan of %s has no service replicas to scrape: give the plans the site play registered "
            "(hostvars[host]._gpufleet_fleet.plans[host])." % host)
    address = _service_address(host, address, service.get("bind_address") or "")
    model = service["served_model_name"]
    targets = [_target(host, address, "vllm", replica["port"], {"model": model, "replica": str(replica["index"])})
               for replica in service["replicas"]]
    router = service.get("router")
    if router:
        targets.append(_target(host, address, "vllm-router", router["metrics_port"], {"model": model}))
    return targets


def _service_address(host, address, bind_address):
    if bind_address in _ANY_ADDRESS:
        return address
    if bind_address in _LOOPBACK:
        raise ScrapeTargetError(
            "%s serves only on %s, where Prometheus on another host cannot scrape it: bind the service to an address the "
            "monitoring hosts reach (vllm_service_bind_address)." % (host, bind_address))
    return bind_address


def _target(host, address, job, port, labels):
    return {"host": host, "address": address, "job": job, "port": int(port), "labels": labels}
