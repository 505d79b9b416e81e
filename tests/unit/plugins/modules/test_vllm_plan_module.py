# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog
from ansible_collections.gpufleet.vllm.plugins.modules import vllm_plan

from conftest import run_main

PLAN_KEYS = {
    "model", "variant", "vllm_version", "cuda_version", "driver_cuda_version", "driver_cuda_source", "image", "build",
    "build_args", "dtype", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "env", "args", "memory",
    "warnings",
}


def k80_gpus(count):
    return [{
        "pci_bus_id": "0000:%02x:00.0" % (index + 4),
        "pci_device_id": "0x102d",
        "name": "Tesla K80",
        "architecture": "kepler",
        "compute_capability": "3.7",
        "memory_mib": 11441,
        "uuid": "GPU-k80-%d" % index,
        "source": "nvml",
    } for index in range(count)]


K80_HOST = {
    "gpu_count": 4,
    "driver_loaded": True,
    "driver_version": "470.256.02",
    "cuda_driver_version": "11.4",
    "kernel_module_flavor": "proprietary",
    "driver_branch_min": "470",
    "driver_branch_max": "470",
    "compatible": True,
    "problems": [],
}

A40 = [{
    "pci_bus_id": "0000:41:00.0", "pci_device_id": "0x2235", "name": "NVIDIA A40", "architecture": "ampere",
    "compute_capability": "8.6", "memory_mib": 46068, "uuid": "GPU-a40", "source": "nvml",
}]
A40_HOST = dict(K80_HOST, driver_version="570.124.06", cuda_driver_version="12.8", kernel_module_flavor="open",
                driver_branch_min="470", driver_branch_max="580", gpu_count=1)


def run_module(capsys, args):
    return run_main(vllm_plan, capsys, args)


def test_k80_plan_has_exact_keys_and_never_changes(capsys):
    code, result = run_module(capsys, {"gpus": k80_gpus(4), "gpu_host": K80_HOST, "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0"})
    assert code == 0
    assert result["changed"] is False
    plan = result["plan"]
    assert set(plan) == PLAN_KEYS
    assert plan["variant"] == "k80"
    assert plan["image"] == "gpufleet/vllm-k80:0.10.1-k80"
    assert plan["build"] is True
    assert plan["tensor_parallel_size"] == 1
    assert plan["args"] == ["--dtype", "float32", "--tensor-parallel-size", "1", "--max-model-len", "2048",
                            "--gpu-memory-utilization", "0.85", "--enforce-eager", "--swap-space", "0"]
    assert plan["memory"]["kv_cache_tokens_per_gpu"] == 114352
    assert "warnings" not in result


def test_check_mode_returns_the_same_plan(capsys):
    args = {"gpus": A40, "gpu_host": A40_HOST, "model": "Qwen/Qwen2.5-7B-Instruct"}
    dummy, normal = run_module(capsys, args)
    code, checked = run_module(capsys, dict(args, _ansible_check_mode=True))
    assert code == 0
    assert checked["changed"] is False
    assert checked["plan"] == normal["plan"]
    assert checked["plan"]["image"] == "vllm/vllm-openai:v0.33.0-cu129"
    assert checked["plan"]["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}


def test_overrides_reach_the_plan(capsys):
    code, result = run_module(capsys, {
        "gpus": k80_gpus(4), "gpu_host": K80_HOST, "model": "Qwen/Qwen2.5-1.5B-Instruct", "tensor_parallel_size": "2",
        "max_model_len": 4096, "gpu_memory_utilization": 0.8, "registry": "registry.example.com:5000",
    })
    assert code == 0
    plan = result["plan"]
    assert (plan["tensor_parallel_size"], plan["max_model_len"], plan["gpu_memory_utilization"]) == (2, 4096, 0.8)
    assert plan["image"] == "registry.example.com:5000/gpufleet/vllm-k80:0.10.1-k80"
    assert plan["env"]["NCCL_P2P_DISABLE"] == "1"


def test_plan_warnings_become_task_warnings(capsys):
    # One die holds about 31k tokens of Qwen3-0.6B, less than its 40,960: the plan lowers max_model_len and says so.
    code, result = run_module(capsys, {"gpus": k80_gpus(1), "gpu_host": K80_HOST, "model": "Qwen/Qwen3-0.6B"})
    assert code == 0
    # ansible-core 2.19 reports warnings as WarningSummary objects; older cores as plain strings.
    messages = [item["event"]["msg"] if isinstance(item, dict) else item for item in result["warnings"]]
    assert messages == result["plan"]["warnings"]
    assert len(messages) == 1 and "lowers max_model_len" in messages[0]


def test_plan_error_fails_with_its_sentence(capsys):
    code, result = run_module(capsys, {"gpus": k80_gpus(2), "gpu_host": K80_HOST, "model": "meta-llama/Meta-Llama-3-8B-Instruct"})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"].startswith("Model meta-llama/Meta-Llama-3-8B-Instruct does not fit even at TP=2")
    assert "plan" not in result


def test_refusal_names_the_requested_value_and_the_gpu(capsys):
    code, result = run_module(capsys, {"gpus": k80_gpus(1), "gpu_host": K80_HOST, "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
                                       "dtype": "bfloat16"})
    assert code == 1
    assert result["msg"] == (
        "dtype bfloat16 cannot run on Tesla K80 at 0000:04:00.0 (compute capability 3.7): variant k80 runs float32 only; "
        "set dtype to float32 or auto."
    )


def test_unknown_model_fails_asking_for_model_config(capsys):
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/private-model"})
    assert code == 1
    assert "pass model_config" in result["msg"]


def test_model_config_path_is_read_on_the_host(capsys, tmp_path):
    config = dict(_model_catalog.MODELS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"], max_position_embeddings=1024)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/tiny", "model_config": str(path)})
    assert code == 0
    assert result["plan"]["max_model_len"] == 1024
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/tiny", "model_config": str(tmp_path)})
    assert (code, result["plan"]["max_model_len"]) == (0, 1024)


def test_model_config_dict_and_json_text_are_accepted(capsys):
    config = dict(_model_catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"], max_position_embeddings=4096)
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/qwen", "model_config": config})
    assert (code, result["plan"]["max_model_len"]) == (0, 4096)
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/qwen", "model_config": json.dumps(config)})
    assert (code, result["plan"]["max_model_len"]) == (0, 4096)


def test_local_model_directory_supplies_its_config(capsys, tmp_path):
    config = dict(_model_catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"], max_position_embeddings=2048)
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": str(tmp_path)})
    assert code == 0
    assert result["plan"]["model"] == str(tmp_path)
    assert result["plan"]["max_model_len"] == 2048


def test_unreadable_model_config_fails(capsys, tmp_path):
    missing = os.path.join(str(tmp_path), "absent.json")
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/x", "model_config": missing})
    assert code == 1
    assert result["msg"].startswith("Cannot read model_config %s" % missing)


def test_model_config_that_is_not_json_fails(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text("num_hidden_layers = 2")
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "someone/x", "model_config": str(path)})
    assert code == 1
    assert "is not valid JSON" in result["msg"]


def test_no_gpus_plan_cpu(capsys):
    host = dict(K80_HOST, gpu_count=0, driver_loaded=False, driver_version=None, cuda_driver_version=None)
    code, result = run_module(capsys, {"gpus": [], "gpu_host": host, "model": "Qwen/Qwen2.5-0.5B-Instruct"})
    assert code == 0
    assert result["plan"]["variant"] == "cpu"
    assert result["plan"]["env"] == {"VLLM_CPU_KVCACHE_SPACE": "4"}


def test_invalid_choice_is_refused_by_the_argument_spec(capsys):
    code, result = run_module(capsys, {"gpus": A40, "gpu_host": A40_HOST, "model": "Qwen/Qwen2.5-0.5B-Instruct", "variant": "rocm"})
    assert code == 1
    assert "variant" in result["msg"] and "rocm" in result["msg"]


def test_argument_spec_matches_the_documentation(check_documented_options):
    import yaml

    check_documented_options(vllm_plan)
    documented = yaml.safe_load(vllm_plan.DOCUMENTATION)["options"]
    assert documented["quantization"]["choices"] == ["fp8"]
    assert documented["variant"]["choices"] == ["k80", "cu128", "upstream", "cpu"]
    assert documented["dtype"]["default"] == "auto"
    assert documented["tensor_parallel_size"]["default"] == "auto"
    yaml.safe_load(vllm_plan.EXAMPLES)
    returned = yaml.safe_load(vllm_plan.RETURN)["plan"]["contains"]
    assert set(returned) == PLAN_KEYS
