# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import pytest
import yaml

from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import merge_gpus, summarize_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import CPU_VLLM_VERSION, UPSTREAM_VLLM_VERSION
from ansible_collections.gpufleet.vllm.plugins.modules import host_plan

from conftest import run_main

PLAN_KEYS = {"platform", "gpus", "driver", "toolkit", "runtime", "vllm", "image", "service", "warnings"}
DEBIAN = {"distribution": "Debian", "distribution_version": "12.7", "architecture": "x86_64", "kernel": "6.1.0-40-amd64",
          "virtualization_role": "host", "virtualization_type": "kvm", "processor_vcpus": 2, "memtotal_mb": 24576}
UBUNTU = dict(DEBIAN, distribution="Ubuntu", distribution_version="24.04", kernel="6.8.0-85-generic")


@pytest.fixture(autouse=True)
def own_warnings(monkeypatch):
    """module.warn() records into a process-wide mapping: give each test its own, so that no warning leaks into later tests."""
    monkeypatch.setattr(module_warnings, "_global_warnings", {})


def detected(*device_ids):
    """gpufleet_gpus and gpufleet_gpu_host as gpu_facts reports them before a driver is installed."""
    gpus = merge_gpus([{"pci_bus_id": "0000:%02x:00.0" % (5 + index), "pci_device_id": device_id}
                       for index, device_id in enumerate(device_ids)])
    return {"gpus": gpus, "gpu_host": summarize_host(gpus)}


@pytest.fixture
def inputs(tmp_path):
    """The recipes directory on the controller: a cpu recipe only."""
    recipes = tmp_path / "recipes"
    (recipes / "cpu").mkdir(parents=True)
    (recipes / "cpu" / "Dockerfile").write_text("FROM python:3.12-slim\nARG VLLM_VERSION\n")
    (recipes / "notes").mkdir()  # no Dockerfile: no recipe
    return {"recipes_dir": str(recipes), "root": tmp_path}


def module_args(inputs, host="cpu-01", devices=(), system=None, **extra):
    args = dict(detected(*devices), host=host, system=system or DEBIAN, model="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
                recipes_dir=inputs["recipes_dir"], service={"name": "tiny"})
    args.update(extra)
    return args


def run_module(capsys, args):
    return run_main(host_plan, capsys, args)


def test_gpu_less_host_gets_the_cpu_image_named_later_by_the_fleet_plan(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, system=dict(DEBIAN, processor_vcpus=4, memtotal_mb=16000)))
    assert code == 0
    assert result["changed"] is False
    plan = result["plan"]
    assert set(plan) == PLAN_KEYS
    assert plan["platform"] == {"key": "debian12", "label": "Debian 12", "family": "apt", "vcpus": 4, "memory_mib": 16000}
    assert plan["driver"]["action"] == "none"
    image = plan["image"]
    assert (image["variant"], image["build"], image["recipe"], image["reference"]) == ("cpu", True, "cpu", None)
    assert image["name"] == "gpufleet/vllm-cpu:%s" % CPU_VLLM_VERSION
    assert [replica["unit"] for replica in plan["service"]["replicas"]] == ["vllm-tiny-0"]
    assert plan["service"]["replicas"][0]["cpuset"] == "0-3"


def test_check_mode_returns_the_same_plan(capsys, inputs):
    dummy, normal = run_module(capsys, module_args(inputs))
    code, checked = run_module(capsys, dict(module_args(inputs), _ansible_check_mode=True))
    assert code == 0
    assert checked["changed"] is False
    assert checked["plan"] == normal["plan"]


def test_registry_mirror_reaches_prebuilt_images(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=UBUNTU,
                                                  registry_mirror="mirror.example.com:5000"))
    assert code == 0
    assert result["plan"]["image"]["reference"] == "mirror.example.com:5000/vllm/vllm-openai:v%s-cu129" % UPSTREAM_VLLM_VERSION


def test_ubuntu_a40_pulls_upstream_and_plans_the_driver(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=UBUNTU))
    assert code == 0
    plan = result["plan"]
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["source"]) == ("install", "570", "distribution")
    assert plan["driver"]["kernel_packages"] == ["linux-headers-6.8.0-85-generic"]
    assert plan["image"]["reference"] == "vllm/vllm-openai:v%s-cu129" % UPSTREAM_VLLM_VERSION
    assert [replica["gpus"] for replica in plan["service"]["replicas"]] == [["0"]]


def test_cuda_repository_url_reaches_the_plan(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, host="gb-01", devices=["0x2b85"], system=DEBIAN,
                                                  cuda_repository_url="https://mirror.example.com/cuda/repos",
                                                  plan={"driver_branch": "580"}))
    assert code == 0
    assert result["plan"]["driver"]["cuda_repository"]["url"] == "https://mirror.example.com/cuda/repos/debian12/x86_64"
    assert result["plan"]["image"]["reference"] == "vllm/vllm-openai:v%s" % UPSTREAM_VLLM_VERSION


def test_container_guest_gets_no_kernel_module(capsys, inputs):
    system = dict(UBUNTU, virtualization_role="guest", virtualization_type="docker")
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=system))
    assert code == 0
    driver = result["plan"]["driver"]
    assert (driver["kernel_packages"], driver["initramfs_command"], driver["loadable"]) == ([], None, False)


def test_vm_guest_is_no_container(capsys, inputs):
    system = dict(UBUNTU, virtualization_role="guest", virtualization_type="kvm")
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=system))
    assert code == 0
    assert result["plan"]["driver"]["loadable"] is True


def test_local_model_directory_supplies_its_config(capsys, inputs, tmp_path):
    model_dir = tmp_path / "models" / "qwen-small"
    model_dir.mkdir(parents=True)
    config = dict(_model_catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"], max_position_embeddings=1536)
    (model_dir / "config.json").write_text(json.dumps(config))
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=UBUNTU,
                                                  model=str(model_dir), service={"name": "qwen"}))
    assert code == 0
    plan = result["plan"]
    assert plan["vllm"]["max_model_len"] == 1536
    assert plan["service"]["model"] == "/models/qwen"
    assert plan["service"]["model_source"] == str(model_dir)


def test_model_config_in_the_plan_wins_over_the_directory(capsys, inputs, tmp_path):
    model_dir = tmp_path / "no-config-here"
    model_dir.mkdir()
    config = dict(_model_catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"], max_position_embeddings=1024)
    code, result = run_module(capsys, module_args(inputs, host="a40-01", devices=["0x2235"], system=UBUNTU,
                                                  model=str(model_dir), plan={"model_config": config}))
    assert code == 0
    assert result["plan"]["vllm"]["max_model_len"] == 1024


def test_model_directory_without_config_fails(capsys, inputs, tmp_path):
    model_dir = tmp_path / "empty-model"
    model_dir.mkdir()
    code, result = run_module(capsys, module_args(inputs, model=str(model_dir)))
    assert code == 1
    assert result["failed"] is True
    assert result["msg"].startswith("%s: the model directory %s has no readable config.json" % (module_args(inputs)["host"], model_dir))
    assert "plan" not in result


def test_refusal_fails_with_its_sentence(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, host="k80-01", devices=["0x102d"] * 4))
    assert code == 1
    assert result["failed"] is True
    # The controller's recipes directory ships only cpu.
    assert result["msg"].startswith("k80-01: the plan builds variant k80, but this release of gpufleet.vllm has no recipe "
                                    "for it (roles/vllm_image/files/k80/Dockerfile; it ships cpu)")
    assert "plan" not in result


def test_unknown_plan_key_fails_with_a_hint(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, plan={"max_model_length": 4096}))
    assert code == 1
    assert result["msg"].startswith("cpu-01: gpufleet_plan has no key 'max_model_length': did you mean max_model_len?")


def test_plan_warnings_become_task_warnings(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, host="mixed-01", devices=["0x2b85", "0x2235"],
                                                  plan={"variant": "cpu"}))
    assert code == 0
    assert result["plan"]["warnings"]
    # ansible-core 2.19 reports warnings as WarningSummary objects; older cores as plain strings.
    messages = [item["event"]["msg"] if isinstance(item, dict) else item for item in result["warnings"]]
    assert messages == ["mixed-01: %s" % warning for warning in result["plan"]["warnings"]]


def test_replicas_and_router_metrics_port_reach_the_plan(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, plan={"replicas": 2}, service={"name": "tiny", "router_metrics_port": 9100}))
    assert code == 0
    service = result["plan"]["service"]
    assert [(replica["unit"], replica["port"], replica["cpuset"]) for replica in service["replicas"]] == [
        ("vllm-tiny-0", 8001, "0"), ("vllm-tiny-1", 8002, "1")]
    assert (service["router"]["port"], service["router"]["metrics_port"]) == (8000, 9100)


def test_argument_spec_matches_the_documentation(check_documented_options):
    check_documented_options(host_plan)
    yaml.safe_load(host_plan.EXAMPLES)
    assert "plan" in yaml.safe_load(host_plan.RETURN)
