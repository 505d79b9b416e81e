# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.vllm.plugins.filter.scrape_targets import FilterModule
from ansible_collections.gpufleet.vllm.plugins.module_utils._scrape_targets import ScrapeTargetError, scrape_targets

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")


def plan(name="tiny", replicas=(8001, 8002), router_metrics_port=29000, bind_address="0.0.0.0"):
    """A host plan with the service part the replica planner writes (only the keys the targets read, and a few more)."""
    return {
        "platform": {"label": "Debian 12"},
        "service": {
            "name": name,
            "served_model_name": name,
            "port": 8000,
            "bind_address": bind_address,
            "replicas": [{"index": index, "name": "%s-%d" % (name, index), "unit": "vllm-%s-%d" % (name, index), "port": port}
                         for index, port in enumerate(replicas)],
            "router": {"unit": "vllm-%s-router" % name, "port": 8000, "metrics_port": router_metrics_port}
            if router_metrics_port else None,
        },
    }


PLANS = {"gpu-2": plan("llama", replicas=(8001,), router_metrics_port=29001), "gpu-1": plan()}
ADDRESSES = {"gpu-1": "10.0.0.11", "gpu-2": "10.0.0.12", "mon-1": ""}
NODE_PORTS = {"gpu-1": 9100, "gpu-2": 9100, "mon-1": 9100}


def test_every_replica_router_and_node_exporter_becomes_one_target():
    assert scrape_targets(PLANS, ADDRESSES, NODE_PORTS) == [
        {"host": "gpu-1", "address": "10.0.0.11", "job": "vllm", "port": 8001, "labels": {"model": "tiny", "replica": "0"}},
        {"host": "gpu-1", "address": "10.0.0.11", "job": "vllm", "port": 8002, "labels": {"model": "tiny", "replica": "1"}},
        {"host": "gpu-2", "address": "10.0.0.12", "job": "vllm", "port": 8001, "labels": {"model": "llama", "replica": "0"}},
        {"host": "gpu-1", "address": "10.0.0.11", "job": "vllm-router", "port": 29000, "labels": {"model": "tiny"}},
        {"host": "gpu-2", "address": "10.0.0.12", "job": "vllm-router", "port": 29001, "labels": {"model": "llama"}},
        {"host": "gpu-1", "address": "10.0.0.11", "job": "node", "port": 9100, "labels": {}},
        {"host": "gpu-2", "address": "10.0.0.12", "job": "node", "port": 9100, "labels": {}},
        # The monitoring host has no plan and no address of its own: its node exporter, by name.
        {"host": "mon-1", "address": "mon-1", "job": "node", "port": 9100, "labels": {}},
    ]


def test_each_node_exporter_is_scraped_at_its_own_port():
    targets = scrape_targets({}, {"gpu-1": "10.0.0.11", "gpu-2": ""}, {"gpu-1": 9200, "gpu-2": "9110"})
    assert [(target["host"], target["port"]) for target in targets] == [("gpu-1", 9200), ("gpu-2", 9110)]


def test_a_host_without_a_node_exporter_port_is_refused():
    with pytest.raises(ScrapeTargetError, match="^mon-1 has no node exporter port"):
        scrape_targets(PLANS, ADDRESSES, {"gpu-1": 9100, "gpu-2": 9100})


def test_a_service_without_a_router_has_no_router_target():
    targets = scrape_targets({"gpu-1": plan(replicas=(8001,), router_metrics_port=None)}, {"gpu-1": ""}, {"gpu-1": 9100})
    assert [target["job"] for target in targets] == ["vllm", "node"]


@pytest.mark.parametrize("bind_address, expected", [("0.0.0.0", "10.0.0.11"), ("::", "10.0.0.11"), ("", "10.0.0.11"),
                                                    ("192.168.7.11", "192.168.7.11")])
def test_a_service_is_scraped_where_it_is_bound(bind_address, expected):
    targets = scrape_targets({"gpu-1": plan(bind_address=bind_address)}, {"gpu-1": "10.0.0.11"}, {"gpu-1": 9100})
    assert {target["address"] for target in targets if target["job"] != "node"} == {expected}
    assert [target["address"] for target in targets if target["job"] == "node"] == ["10.0.0.11"]


@pytest.mark.parametrize("bind_address", ["127.0.0.1", "::1", "localhost"])
def test_a_service_bound_to_loopback_is_refused(bind_address):
    with pytest.raises(ScrapeTargetError, match="gpu-1 serves only on %s, where Prometheus on another host" % bind_address):
        scrape_targets({"gpu-1": plan(bind_address=bind_address)}, {"gpu-1": "10.0.0.11"}, {"gpu-1": 9100})


def test_a_planned_host_without_an_address_is_refused():
    with pytest.raises(ScrapeTargetError, match="^gpu-2 has a plan but no address to scrape"):
        scrape_targets(PLANS, {"gpu-1": "10.0.0.11"}, {"gpu-1": 9100})


@pytest.mark.parametrize("broken", [{}, {"service": None}, {"service": {"name": "tiny", "port": 8000}}, None],
                         ids=["no service", "null service", "service without replicas", "null plan"])
def test_a_plan_without_service_replicas_is_refused(broken):
    with pytest.raises(ScrapeTargetError, match="^The plan of gpu-1 has no service replicas to scrape"):
        scrape_targets({"gpu-1": broken}, {"gpu-1": ""}, {"gpu-1": 9100})


def test_the_plans_are_left_as_they_were():
    before = copy.deepcopy(PLANS)
    scrape_targets(PLANS, ADDRESSES, NODE_PORTS)
    assert PLANS == before


def test_the_filter_offers_scrape_targets_with_its_documentation():
    assert FilterModule().filters() == {"scrape_targets": scrape_targets}
    with open(os.path.join(FILTER_DIR, "scrape_targets.yml")) as handle:
        documentation = yaml.safe_load(handle)["DOCUMENTATION"]
    assert documentation["name"] == "scrape_targets"
    assert set(documentation["options"]) == {"_input", "addresses", "node_ports"}
