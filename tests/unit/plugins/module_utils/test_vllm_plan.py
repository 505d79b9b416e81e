# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils import _vllm_plan as planner
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import ARCHITECTURES, branch_max_cuda
from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import PlanError, plan_deployment

TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
QWEN05 = "Qwen/Qwen2.5-0.5B-Instruct"
QWEN15 = "Qwen/Qwen2.5-1.5B-Instruct"
QWEN3B = "Qwen/Qwen2.5-3B-Instruct"
QWEN7B = "Qwen/Qwen2.5-7B-Instruct"
QWEN3_06 = "Qwen/Qwen3-0.6B"
LLAMA3 = "meta-llama/Meta-Llama-3-8B-Instruct"
LLAMA31 = "meta-llama/Llama-3.1-8B-Instruct"

# (name, architecture, compute capability, memory_mib, PCI device id) as gpu_facts reports them;
# memory values of K80/A40/RTX 5090 from gpu-driver-facts section 1, H100 from vllm-facts section 8.
KINDS = {
    "k80": ("Tesla K80", "kepler", "3.7", 11441, "0x102d"),
    "k40": ("Tesla K40m", "kepler", "3.5", 12288, "0x1023"),
    "m40": ("Tesla M40", "maxwell", "5.2", 12288, "0x17fd"),
    "p40": ("Tesla P40", "pascal", "6.1", 24576, "0x1b38"),
    "v100": ("Tesla V100-SXM2-16GB", "volta", "7.0", 16384, "0x1db1"),
    "t4": ("Tesla T4", "turing", "7.5", 15360, "0x1eb8"),
    "a40": ("NVIDIA A40", "ampere", "8.6", 46068, "0x2235"),
    "h100": ("NVIDIA H100 80GB HBM3", "hopper", "9.0", 81559, "0x2330"),
    "b200": ("NVIDIA B200", "blackwell", "10.0", 183359, "0x2901"),
    "rtx5090": ("NVIDIA GeForce RTX 5090", "blackwell", "12.0", 32607, "0x2b85"),
    "unknown": ("NVIDIA Device 9999", "unknown", None, None, "0x9999"),
}


def gpus(*spec):
    """gpus(("k80", 4), ("a40", 1)) -> a gpufleet_gpus fact."""
    result = []
    for kind, count in spec:
        name, arch, cc, memory, device = KINDS[kind]
        for dummy in range(count):
            index = len(result)
            result.append({
                "pci_bus_id": "0000:%02x:00.0" % (index + 1),
                "pci_device_id": device,
                "name": name,
                "architecture": arch,
                "compute_capability": cc,
                "memory_mib": memory,
                "uuid": "GPU-%04d" % index,
                "source": "nvml",
            })
    return result


def host(cuda="11.4", driver="470.256.02", loaded=True, compatible=True, problems=None, count=1):
    return {
        "gpu_count": count,
        "driver_loaded": loaded,
        "driver_version": driver if loaded else None,
        "cuda_driver_version": cuda if loaded else None,
        "kernel_module_flavor": "proprietary" if loaded else None,
        "driver_branch_min": "470",
        "driver_branch_max": "470",
        "compatible": compatible,
        "problems": list(problems or []),
    }


HOST_470 = host("11.4", "470.256.02")
HOST_570 = host("12.8", "570.124.06")
HOST_575 = host("12.9", "575.57.08")
HOST_580 = host("13.0", "580.95.05")
NO_DRIVER = host(loaded=False)

PLAN_KEYS = {
    "model", "variant", "vllm_version", "cuda_version", "driver_cuda_version", "driver_cuda_source", "image", "build",
    "build_args", "dtype", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "env", "args", "memory",
    "warnings",
}


def plan(gpu_list, gpu_host, model=TINYLLAMA, **options):
    return plan_deployment(gpus=gpu_list, gpu_host=gpu_host, model=model, **options)


def fails(fragment, gpu_list, gpu_host, model=TINYLLAMA, **options):
    with pytest.raises(PlanError) as caught:
        plan_deployment(gpus=gpu_list, gpu_host=gpu_host, model=model, **options)
    message = caught.value.message
    assert fragment in message, message
    # One sentence: ends with a period and holds no second sentence start.
    assert message.endswith(".") and ". " not in message.rstrip(".").replace("e.g. ", ""), message
    return message


def arg(result, flag):
    args = result["args"]
    return args[args.index(flag) + 1]


def close(actual, expected, tolerance=0.15):
    return abs(actual - expected) <= tolerance * expected


# ---------------------------------------------------------------------------------------------
# Driver CUDA used for planning


def test_driver_cuda_option_wins_over_the_loaded_driver():
    result = plan(gpus(("a40", 1)), HOST_580, driver_cuda_version="12.8")
    assert result["driver_cuda_version"] == "12.8"
    assert result["driver_cuda_source"] == "option driver_cuda_version"
    assert result["image"] == "vllm/vllm-openai:v0.33.0-cu129"


def test_loaded_driver_cuda_is_used():
    result = plan(gpus(("a40", 1)), HOST_580)
    assert (result["driver_cuda_version"], result["driver_cuda_source"]) == ("13.0", "loaded driver")


def test_loaded_driver_without_cuda_version_maps_its_version():
    gpu_host = dict(HOST_570, cuda_driver_version=None)
    result = plan(gpus(("a40", 1)), gpu_host)
    assert result["driver_cuda_version"] == "12.8"
    assert result["driver_cuda_source"] == "loaded driver 570.124.06"


def test_no_driver_on_a_kepler_host_plans_branch_470():
    result = plan(gpus(("k80", 2)), NO_DRIVER)
    assert (result["driver_cuda_version"], result["driver_cuda_source"]) == ("11.4", "default driver branch 470")
    assert result["variant"] == "k80"


def test_no_driver_on_an_a40_host_plans_branch_570_and_the_cu129_image():
    result = plan(gpus(("a40", 1)), NO_DRIVER)
    assert (result["driver_cuda_version"], result["driver_cuda_source"]) == ("12.8", "default driver branch 570")
    assert result["variant"] == "upstream"
    assert result["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}


def test_driver_cuda_source_labels_the_given_driver_cuda_version():
    result = plan(gpus(("a40", 1)), NO_DRIVER, driver_cuda_version="13.0", driver_cuda_source="driver branch 580 (planned)")
    assert (result["driver_cuda_version"], result["driver_cuda_source"]) == ("13.0", "driver branch 580 (planned)")
    assert result["image"] == "vllm/vllm-openai:v0.33.0"


def test_driver_cuda_source_names_the_driver_in_refusals():
    message = fails("needs driver branch 470", gpus(("k80", 1)), NO_DRIVER, driver_cuda_version="13.0",
                    driver_cuda_source="driver branch 580 (pinned)")
    assert "CUDA 13.0 (driver branch 580 (pinned))" in message


def test_driver_cuda_source_without_a_version_fails():
    fails("driver_cuda_source 'driver branch 580 (planned)' labels a driver_cuda_version", gpus(("a40", 1)), HOST_580,
          driver_cuda_source="driver branch 580 (planned)")


def test_loaded_driver_older_than_470_fails():
    gpu_host = dict(HOST_470, driver_version="460.91.03", cuda_driver_version=None)
    message = fails("The loaded driver 460.91.03 is older than 470.42.01", gpus(("k80", 1)), gpu_host)
    assert "install driver branch 470" in message


def test_invalid_driver_cuda_option_fails():
    fails("driver_cuda_version 'latest' is not a CUDA version", gpus(("a40", 1)), HOST_580, driver_cuda_version="latest")


def test_kepler_branch_and_cuda_come_from_the_gpu_catalog():
    assert planner.KEPLER_DRIVER_BRANCH == ARCHITECTURES["kepler"]["branch_max"] == "470"
    assert planner.K80_CUDA_VERSION == branch_max_cuda(planner.KEPLER_DRIVER_BRANCH) == "11.4"
    assert (planner.BLACKWELL_DRIVER_BRANCH, planner.BLACKWELL_MIN_CUDA) == ("570", "12.8")
    assert planner.UPSTREAM_BLACKWELL_MIN_BRANCH == "575"


# ---------------------------------------------------------------------------------------------
# K80 (vllm-facts section 3, seed 000)


def test_k80_plan_is_the_fork_build_with_its_runtime_settings():
    result = plan(gpus(("k80", 1)), HOST_470)
    assert set(result) == PLAN_KEYS
    assert result["variant"] == "k80"
    assert result["cuda_version"] == "11.4"
    assert result["build"] is True
    assert result["build_args"] == {"TORCH_CUDA_ARCH_LIST": "3.7", "VLLM_REPO": "https://github.com/dogkeeper886/vllm37.git", "VLLM_REF": "main"}
    assert result["vllm_version"] == "0.10.1+k80"
    assert result["image"] == "gpufleet/vllm-k80:0.10.1-k80"
    assert result["dtype"] == "float32"
    assert result["gpu_memory_utilization"] == 0.85
    assert result["env"] == {
        "VLLM_USE_V1": "0",
        "VLLM_ATTENTION_BACKEND": "TORCH_SDPA",
        "TORCHDYNAMO_DISABLE": "1",
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
    }
    assert result["args"] == [
        "--dtype", "float32", "--tensor-parallel-size", "1", "--max-model-len", "2048",
        "--gpu-memory-utilization", "0.85", "--enforce-eager", "--swap-space", "0",
    ]
    assert result["memory"]["overhead_gib"] == 0.6
    assert result["warnings"] == []


def test_k80_tp2_disables_nccl_p2p():
    result = plan(gpus(("k80", 2)), HOST_470, tensor_parallel_size=2)
    assert result["env"]["NCCL_P2P_DISABLE"] == "1"
    assert arg(result, "--tensor-parallel-size") == "2"


def test_k80_tp4_is_refused_for_the_power_feed():
    fails("tensor_parallel_size 4 would span 2 Tesla K80 boards, and groups across boards have halted machines that feed both "
          "boards from one CPU power cable (vllm37 README, Hardware safety); set it to at most 2, the dies of one board.",
          gpus(("k80", 4)), HOST_470, tensor_parallel_size=4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_k80_refuses_anything_but_float32(dtype):
    message = fails("dtype %s cannot run on Tesla K80 at 0000:01:00.0 (compute capability 3.7)" % dtype, gpus(("k80", 1)), HOST_470, dtype=dtype)
    assert "variant k80 runs float32 only; set dtype to float32 or auto." in message


def test_k80_on_a_cuda_12_driver_fails():
    message = fails("needs driver branch 470 (CUDA 11.4)", gpus(("k80", 1)), HOST_470, driver_cuda_version="12.8")
    assert "CUDA 12.8 (option driver_cuda_version)" in message and "Tesla K80" in message


def test_k80_on_a_driver_newer_than_branch_470_fails():
    # CUDA 11.8 needs branch 520, which no longer drives Kepler.
    message = fails("needs driver branch 470", gpus(("k80", 1)), host("11.8", "520.61.05"))
    assert "CUDA 11.8 (loaded driver)" in message


def test_k80_with_an_older_branch_fails():
    fails("branch 470", gpus(("k80", 1)), host("11.2", "460.91.03"))


def test_k80_vllm_version_is_the_git_ref_of_the_fork():
    result = plan(gpus(("k80", 1)), HOST_470, vllm_version="4a1b2c3")
    assert result["build_args"]["VLLM_REF"] == "4a1b2c3"
    assert result["image"] == "gpufleet/vllm-k80:4a1b2c3"


def test_registry_prefixes_built_images_only():
    built = plan(gpus(("k80", 1)), HOST_470, registry="registry.example.com:5000/")
    assert built["image"] == "registry.example.com:5000/gpufleet/vllm-k80:0.10.1-k80"
    upstream = plan(gpus(("a40", 1)), HOST_580, registry="registry.example.com:5000")
    assert upstream["image"] == "vllm/vllm-openai:v0.33.0"


# ---------------------------------------------------------------------------------------------
# Blackwell on CUDA < 12.9 (vllm-facts section 4, seed 004)


def test_rtx5090_on_570_is_the_cu128_source_build():
    result = plan(gpus(("rtx5090", 1)), HOST_570, model=LLAMA3)
    assert result["variant"] == "cu128"
    assert result["cuda_version"] == "12.8"
    assert result["build"] is True
    assert result["build_args"] == {"TORCH_CUDA_ARCH_LIST": "12.0", "VLLM_VERSION": "0.15.1"}
    assert result["image"] == "gpufleet/vllm-cu128:0.15.1"
    assert result["dtype"] == "bfloat16"
    assert result["env"] == {}
    assert "--enforce-eager" not in result["args"]
    # vLLM's batch defaults below 70 GiB, stated in the arguments because the overhead follows them.
    assert result["args"][-4:] == ["--max-num-seqs", "256", "--max-num-batched-tokens", "2048"]
    # A dense full-attention model (V2 runner): one float32 logits matrix of 256 x 128256 and the
    # MLP's 2048 x 2 x 14336 bf16 activations, plus the fitted base and non-torch memory.
    activations = (256 * 128256 * 4 + 2048 * 2 * 14336 * 2) / 1024.0 ** 3
    assert result["memory"]["overhead_gib"] == pytest.approx(activations + 0.15 + 0.23, abs=0.001)


def test_a40_and_rtx5090_build_both_architectures_sorted():
    result = plan(gpus(("rtx5090", 1), ("a40", 1)), HOST_570)
    assert result["variant"] == "cu128"
    assert result["build_args"]["TORCH_CUDA_ARCH_LIST"] == "8.6;12.0"
    assert any("differ" in warning for warning in result["warnings"])


def test_b200_on_570_builds_sm100():
    result = plan(gpus(("b200", 1)), HOST_570)
    assert (result["variant"], result["build_args"]["TORCH_CUDA_ARCH_LIST"]) == ("cu128", "10.0")


def test_blackwell_below_cuda_12_8_fails():
    message = fails("branch 570", gpus(("rtx5090", 1)), host("12.4", "550.144.03"))
    assert "NVIDIA GeForce RTX 5090" in message and "CUDA 12.4 (loaded driver)" in message


# ---------------------------------------------------------------------------------------------
# Upstream images


@pytest.mark.parametrize(
    "kind, gpu_host, image, cuda",
    [
        ("rtx5090", HOST_580, "vllm/vllm-openai:v0.33.0", "13.0"),
        ("h100", HOST_580, "vllm/vllm-openai:v0.33.0", "13.0"),
        ("a40", HOST_575, "vllm/vllm-openai:v0.33.0-cu129", "12.9"),
        ("rtx5090", HOST_575, "vllm/vllm-openai:v0.33.0-cu129", "12.9"),
    ],
)
def test_upstream_tag_follows_the_driver(kind, gpu_host, image, cuda):
    result = plan(gpus((kind, 1)), gpu_host)
    assert result["variant"] == "upstream"
    assert (result["image"], result["cuda_version"]) == (image, cuda)
    assert result["build"] is False
    assert result["build_args"] == {}
    assert result["env"] == {}
    assert result["gpu_memory_utilization"] == 0.9


@pytest.mark.parametrize("kind, dtype", [("a40", "bfloat16"), ("h100", "bfloat16"), ("t4", "float16")])
def test_upstream_dtype_follows_compute_capability(kind, dtype):
    assert plan(gpus((kind, 1)), HOST_580)["dtype"] == dtype


def test_a40_on_570_uses_cu129_through_minor_version_compatibility():
    result = plan(gpus(("a40", 1)), HOST_570)
    assert result["variant"] == "upstream"
    assert result["image"] == "vllm/vllm-openai:v0.33.0-cu129"
    assert result["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}
    assert "VLLM_ENABLE_CUDA_COMPATIBILITY" not in result["env"]


def test_forward_compatibility_is_never_enabled():
    for gpu_list, gpu_host in [
        (gpus(("a40", 1)), HOST_570),
        (gpus(("h100", 1)), host("12.2", "535.216.03")),
        (gpus(("rtx5090", 1)), HOST_570),
        (gpus(("v100", 1)), host("12.2", "535.216.03")),
    ]:
        result = plan(gpu_list, gpu_host)
        assert not any("COMPATIBILITY" in key for key in result["env"]), result["env"]


def test_ampere_on_a_cuda_11_driver_fails():
    fails("branch 570", gpus(("a40", 1)), HOST_470)


def test_older_vllm_versions_use_the_plain_tag_of_their_time():
    result = plan(gpus(("a40", 1)), HOST_570, vllm_version="v0.19.1")
    assert result["image"] == "vllm/vllm-openai:v0.19.1"
    assert result["cuda_version"] == "12.9"
    assert result["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}
    same_driver = plan(gpus(("a40", 1)), HOST_580, vllm_version="0.10.2")
    assert (same_driver["image"], same_driver["cuda_version"], same_driver["env"]) == ("vllm/vllm-openai:v0.10.2", "12.8", {})


# ---------------------------------------------------------------------------------------------
# Volta


def test_volta_uses_the_cu129_tag_even_on_a_cuda_13_driver():
    result = plan(gpus(("v100", 1)), HOST_580)
    assert result["image"] == "vllm/vllm-openai:v0.33.0-cu129"
    assert result["dtype"] == "float16"
    assert result["env"] == {}
    assert any("best-effort" in warning for warning in result["warnings"])


def test_volta_below_cuda_12_9_disables_the_image_gate():
    result = plan(gpus(("v100", 1)), host("12.2", "535.216.03"))
    assert result["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}


def test_volta_on_cuda_11_fails():
    fails("too old", gpus(("v100", 1)), host("11.4", "470.256.02"))


# ---------------------------------------------------------------------------------------------
# GPUs without a variant


@pytest.mark.parametrize("kind", ["m40", "p40"])
def test_maxwell_and_pascal_fail_naming_the_gpu_and_the_variant_option(kind):
    message = fails("variant", gpus((kind, 1)), HOST_580)
    assert KINDS[kind][0] in message
    assert ARCHITECTURES[KINDS[kind][1]]["label"] in message


def test_kepler_below_3_7_fails():
    message = fails("variant", gpus(("k40", 1)), HOST_470)
    assert "Tesla K40m" in message and "3.5" in message


def test_unknown_gpu_fails_without_a_variant():
    message = fails("variant", gpus(("unknown", 1)), HOST_580)
    assert "unknown" in message


def test_explicit_k80_variant_plans_a_pascal_gpu_with_a_warning():
    result = plan(gpus(("p40", 1)), HOST_580, variant="k80")
    assert result["variant"] == "k80"
    assert result["build_args"]["TORCH_CUDA_ARCH_LIST"] == "6.1"
    assert any("not tested" in warning for warning in result["warnings"])


def test_explicit_variant_on_an_unknown_gpu_warns_and_needs_memory():
    message = fails("memory size", gpus(("unknown", 1)), HOST_580, variant="upstream")
    assert "NVIDIA Device 9999 at 0000:01:00.0" in message and "memory_mib None" in message
    gpu_list = gpus(("unknown", 1))
    gpu_list[0]["memory_mib"] = 24576
    result = plan(gpu_list, HOST_580, variant="upstream")
    assert result["dtype"] == "float32"
    assert any("not checked" in warning for warning in result["warnings"])


# ---------------------------------------------------------------------------------------------
# CPU


def test_no_gpu_plans_the_cpu_backend():
    result = plan([], host(loaded=False, count=0), model=QWEN05)
    assert set(result) == PLAN_KEYS
    assert result["variant"] == "cpu"
    assert result["cuda_version"] is None
    assert result["driver_cuda_version"] is None
    assert result["image"] == "gpufleet/vllm-cpu:0.32.0"
    assert result["build"] is True
    assert result["build_args"] == {"VLLM_VERSION": "0.32.0"}
    assert result["dtype"] == "float32"
    assert result["env"] == {"VLLM_CPU_KVCACHE_SPACE": "4"}
    assert result["args"] == ["--dtype", "float32", "--max-model-len", "32768"]
    assert result["gpu_memory_utilization"] is None
    assert result["tensor_parallel_size"] == 1
    # 4 GiB over 2 x 24 layers x 2 KV heads x 64 x 4 bytes.
    assert result["memory"]["kv_bytes_per_token_per_gpu"] == 24576
    assert result["memory"]["kv_cache_tokens_per_gpu"] == 4 * 1024 ** 3 // 24576 // 16 * 16


def test_cpu_kv_cache_is_what_a_full_batch_needs_at_most_4_gib():
    # 24576 bytes per token: 128 sequences of 2048 tokens need 6 GiB, of 256 tokens 0.75 GiB.
    assert plan([], NO_DRIVER, model=QWEN05, max_model_len=2048)["env"] == {"VLLM_CPU_KVCACHE_SPACE": "4"}
    small = plan([], NO_DRIVER, model=QWEN05, max_model_len=256)
    assert small["env"] == {"VLLM_CPU_KVCACHE_SPACE": "1"}
    assert small["memory"]["kv_cache_tokens_per_gpu"] == 1024 ** 3 // 24576 // 16 * 16
    # 128 x 1024 tokens x 24576 bytes = 3 GiB.
    assert plan([], NO_DRIVER, model=QWEN05, max_model_len=1024)["env"] == {"VLLM_CPU_KVCACHE_SPACE": "3"}


def test_cpu_allows_bfloat16_but_not_float16():
    assert plan([], NO_DRIVER, dtype="bfloat16")["dtype"] == "bfloat16"
    fails("dtype float16 cannot run on the cpu variant", [], NO_DRIVER, dtype="float16")


def test_cpu_lowers_a_context_that_exceeds_its_kv_cache():
    result = plan([], NO_DRIVER, model=LLAMA31)
    assert result["max_model_len"] == 16384  # 4 GiB / 256 KiB per fp32 token (vllm-facts section 8)
    assert any("lowers max_model_len" in warning for warning in result["warnings"])
    fails("max_model_len 32768 of model meta-llama/Llama-3.1-8B-Instruct does not fit in the 4 GiB CPU KV cache", [], NO_DRIVER,
          model=LLAMA31, max_model_len=32768)


def test_cpu_refuses_tensor_parallelism():
    fails("tensor_parallel_size 2 cannot apply to the cpu variant", [], NO_DRIVER, tensor_parallel_size=2)


def test_cpu_passes_enforce_eager_when_asked():
    assert plan([], NO_DRIVER, enforce_eager=True)["args"][-1] == "--enforce-eager"
    assert "--enforce-eager" not in plan([], NO_DRIVER)["args"]


def test_cpu_refuses_a_model_whose_kv_cache_holds_too_few_tokens():
    # 16384 layers x 4 KV heads x 64 x 4 bytes x 2 = 32 MiB per token: 128 tokens in 4 GiB.
    config = dict(planner._model_catalog.MODELS[TINYLLAMA], num_hidden_layers=16384)
    message = fails("Model x/huge needs more than the 4 GiB CPU KV cache for 256 tokens", [], NO_DRIVER, model="x/huge", model_config=config)
    assert "use a GPU host" in message


def test_explicit_cpu_ignores_gpus_and_their_problems():
    gpu_host = host(compatible=False, problems=["Tesla K80 and RTX 5090 need different drivers."])
    result = plan(gpus(("k80", 1), ("rtx5090", 1)), gpu_host, variant="cpu", gpu_memory_utilization=0.5)
    assert result["variant"] == "cpu"
    assert len(result["warnings"]) == 2


def test_gpu_variant_without_gpus_fails():
    fails("Variant k80 needs NVIDIA GPUs", [], NO_DRIVER, variant="k80")


# ---------------------------------------------------------------------------------------------
# Explicit variant validation


@pytest.mark.parametrize(
    "gpu_list, gpu_host, variant, fragment",
    [
        (gpus(("k80", 1)), HOST_470, "cu128", "CUDA 12.8"),
        (gpus(("k80", 1)), HOST_470, "upstream", "too old"),
        (gpus(("p40", 1)), HOST_580, "cu128", "7.0 or newer"),
        (gpus(("p40", 1)), HOST_580, "upstream", "7.0 or newer"),
        (gpus(("rtx5090", 1)), HOST_580, "k80", "CUDA 11.4"),
        (gpus(("rtx5090", 1)), HOST_570, "upstream", "cu128"),
    ],
)
def test_explicit_variant_is_still_validated(gpu_list, gpu_host, variant, fragment):
    fails(fragment, gpu_list, gpu_host, variant=variant)


def test_explicit_cu128_on_an_a40():
    result = plan(gpus(("a40", 1)), HOST_570, variant="cu128")
    assert (result["variant"], result["build_args"]["TORCH_CUDA_ARCH_LIST"], result["env"]) == ("cu128", "8.6", {})


def test_explicit_cu128_on_gpus_of_unknown_compute_capability_fails():
    gpu_list = gpus(("unknown", 1))
    gpu_list[0]["memory_mib"] = 24576
    message = fails("Variant cu128 compiles for the compute capabilities", gpu_list, HOST_580, variant="cu128")
    assert "NVIDIA Device 9999 at 0000:01:00.0 (unknown compute capability)" in message
    assert "gather facts with gpufleet.vllm.gpu_facts while the NVIDIA driver is loaded" in message


def test_explicit_k80_on_a40_with_k80_host():
    result = plan(gpus(("k80", 1), ("a40", 1)), HOST_470, variant="k80")
    assert result["build_args"]["TORCH_CUDA_ARCH_LIST"] == "3.7;8.6"


def test_kepler_and_blackwell_cannot_share_a_driver():
    message = fails("share one driver", gpus(("k80", 1), ("rtx5090", 1)), HOST_470)
    assert "proprietary kernel modules of branch <= 470" in message and "open kernel modules of branch >= 570" in message


def test_invalid_variant_fails():
    fails("variant 'rocm' is not one of k80, cu128, upstream, cpu", gpus(("a40", 1)), HOST_580, variant="rocm")


# ---------------------------------------------------------------------------------------------
# Mixed GPUs


def test_mixed_host_plans_for_the_least_capable_gpu():
    result = plan(gpus(("a40", 1), ("k80", 2)), HOST_470)
    assert result["variant"] == "k80"
    assert result["dtype"] == "float32"
    assert result["memory"]["memory_mib_per_gpu"] == 11441
    warning = [text for text in result["warnings"] if "differ" in text][0]
    assert "Tesla K80" in warning and "NVIDIA A40" in warning


def test_mixed_ampere_and_hopper_use_the_smaller_memory_and_bfloat16():
    result = plan(gpus(("h100", 1), ("a40", 1)), HOST_580)
    assert (result["dtype"], result["memory"]["memory_mib_per_gpu"]) == ("bfloat16", 46068)


def test_mixed_turing_and_ampere_use_float16():
    result = plan(gpus(("t4", 1), ("a40", 1)), HOST_580)
    assert result["dtype"] == "float16"


# ---------------------------------------------------------------------------------------------
# dtype rules (vllm-facts section 6)


def test_bfloat16_below_ampere_fails_suggesting_float16():
    message = fails("set dtype to float16", gpus(("t4", 1)), HOST_580, dtype="bfloat16")
    assert "dtype bfloat16 cannot run on Tesla T4 at 0000:01:00.0 (compute capability 7.5)" in message
    assert "8.0" in message


def test_float16_of_unknown_compute_capability_fails_suggesting_float32():
    gpu_list = gpus(("unknown", 1))
    gpu_list[0]["memory_mib"] = 16384
    message = fails("set dtype to float32", gpu_list, HOST_580, variant="upstream", dtype="float16")
    assert "dtype float16 cannot run on NVIDIA Device 9999 at 0000:01:00.0 (unknown compute capability)" in message


def test_explicit_float32_is_allowed_on_any_gpu():
    assert plan(gpus(("a40", 1)), HOST_580, dtype="float32")["dtype"] == "float32"


GEMMA2 = {"model_type": "gemma2", "num_hidden_layers": 26, "hidden_size": 2304, "intermediate_size": 9216,
          "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 256000,
          "max_position_embeddings": 8192, "tie_word_embeddings": True}


def test_models_that_refuse_float16_get_float32_below_ampere():
    assert plan(gpus(("t4", 1)), HOST_580, model="google/gemma-2-2b-it", model_config=GEMMA2)["dtype"] == "float32"
    message = fails("dtype float16 cannot serve model google/gemma-2-2b-it", gpus(("t4", 1)), HOST_580, model="google/gemma-2-2b-it",
                    model_config=GEMMA2, dtype="float16")
    assert "gemma2 models" in message and "set dtype to float32 or auto" in message
    message = fails("gemma2", gpus(("a40", 1)), HOST_580, model="google/gemma-2-2b-it", model_config=GEMMA2, dtype="float16")
    assert "set dtype to bfloat16 or auto" in message


def test_invalid_dtype_fails():
    fails("dtype 'int8' is not one of auto, float32, float16, bfloat16", gpus(("a40", 1)), HOST_580, dtype="int8")


# ---------------------------------------------------------------------------------------------
# Tensor parallel size


def test_auto_tp_qwen25_3b_on_k80_needs_one_board():
    result = plan(gpus(("k80", 4)), HOST_470, model=QWEN3B)
    assert result["tensor_parallel_size"] == 2
    assert result["max_model_len"] == 32768
    assert result["warnings"] == []


def test_auto_tp_never_spans_two_k80_boards():
    # Llama 3 8B would need all four dies: auto stops at one board.
    fails("Model meta-llama/Meta-Llama-3-8B-Instruct does not fit even at TP=2", gpus(("k80", 4)), HOST_470, model=LLAMA3)


def test_auto_tp_tinyllama_stays_on_one_die():
    assert plan(gpus(("k80", 4)), HOST_470)["tensor_parallel_size"] == 1


def test_auto_tp_qwen3_prefers_full_context_over_one_die():
    # At TP=1 one die holds about 31k tokens, less than the 40,960 of the model; TP=2 holds them.
    result = plan(gpus(("k80", 2)), HOST_470, model=QWEN3_06)
    assert (result["tensor_parallel_size"], result["max_model_len"]) == (2, 40960)


def test_auto_tp_skips_sizes_that_do_not_divide_the_heads():
    # Qwen2.5-7B: 28 heads, so on 3 dies only TP 1 and 2 are possible and neither holds 28 GiB of fp32 weights.
    message = fails("does not fit even at TP=2", gpus(("k80", 3)), HOST_470, model=QWEN7B)
    assert "Tesla K80" in message


def test_auto_tp_with_14_heads_on_four_gpus_never_picks_four():
    # Qwen2.5-0.5B has 14 heads: a bigger synthetic context forces TP above 1.
    result = plan(gpus(("k80", 4)), HOST_470, model=QWEN05, model_config=dict(
        planner._model_catalog.MODELS[QWEN05], max_position_embeddings=400000), max_model_len=400000)
    assert result["tensor_parallel_size"] == 2
    fails("tensor_parallel_size 4 does not divide the 14 attention heads of model Qwen/Qwen2.5-0.5B-Instruct", gpus(("a40", 4)), HOST_580,
          model=QWEN05, tensor_parallel_size=4)


def test_tp_that_joins_different_gpus_fails():
    fails("tensor_parallel_size 2 would join different GPUs (NVIDIA GeForce RTX 5090 and NVIDIA A40) in one group, whose memory and "
          "speed differ; set it to 1 to serve one replica per GPU.", gpus(("rtx5090", 1), ("a40", 1)), HOST_580, tensor_parallel_size=2)


def test_auto_tp_never_joins_different_gpus():
    # Llama 3.1 70B fits neither GPU alone: auto does not reach for a group of both.
    fails("does not fit even at TP=1", gpus(("rtx5090", 1), ("a40", 1)), HOST_580, model="meta-llama/Llama-3.1-70B-Instruct")


def test_tp_larger_than_the_gpu_count_fails():
    fails("tensor_parallel_size 4 exceeds the 2 GPU(s)", gpus(("k80", 2)), HOST_470, tensor_parallel_size=4)


def test_tp_that_splits_kv_heads_unevenly_fails():
    # 28 heads divide by 7, but 4 KV heads cannot be replicated evenly over 7 ranks.
    fails("tensor_parallel_size 7 cannot split the 4 key/value heads of model Qwen/Qwen2.5-7B-Instruct", gpus(("h100", 8)), HOST_580,
          model=QWEN7B, tensor_parallel_size=7)


def test_tp_given_as_a_string_is_accepted():
    assert plan(gpus(("k80", 2)), HOST_470, tensor_parallel_size="2")["tensor_parallel_size"] == 2


@pytest.mark.parametrize("value", [0, -1, "two", True, 1.5])
def test_invalid_tp_fails(value):
    message = fails("tensor_parallel_size must be a positive integer", gpus(("k80", 2)), HOST_470, tensor_parallel_size=value)
    assert "not %r" % (value,) in message and "auto" in message


def test_model_that_does_not_fit_at_the_largest_tp_fails():
    message = fails("does not fit even at TP=2", gpus(("k80", 2)), HOST_470, model=LLAMA3)
    assert "GiB of float32 weights" in message and "(gpu_memory_utilization 0.85)" in message


def test_explicit_tp_that_does_not_fit_fails():
    fails("does not fit at TP=1", gpus(("k80", 4)), HOST_470, model=QWEN3B, tensor_parallel_size=1)


# ---------------------------------------------------------------------------------------------
# max_model_len


def test_default_context_is_lowered_to_a_multiple_of_256_with_a_warning():
    result = plan(gpus(("rtx5090", 1)), HOST_580, model=LLAMA31)
    tokens = result["memory"]["kv_cache_tokens_per_gpu"]
    assert result["max_model_len"] == tokens // 256 * 256
    assert result["max_model_len"] < 131072
    assert any("lowers max_model_len" in warning for warning in result["warnings"])


def test_two_gpus_hold_the_full_default_context():
    result = plan(gpus(("rtx5090", 2)), HOST_580, model=LLAMA31)
    assert (result["tensor_parallel_size"], result["max_model_len"]) == (2, 131072)


def test_user_context_that_does_not_fit_fails():
    message = fails("lower max_model_len", gpus(("rtx5090", 1)), HOST_580, model=LLAMA31, max_model_len=131072)
    assert "max_model_len 131072 of model meta-llama/Llama-3.1-8B-Instruct does not fit even at TP=1" in message


def test_user_context_longer_than_the_model_fails():
    fails("max_model_len 4096 exceeds the max_position_embeddings 2048 of model TinyLlama/TinyLlama-1.1B-Chat-v1.0", gpus(("k80", 1)),
          HOST_470, max_model_len=4096)


def test_user_context_is_used_as_given():
    result = plan(gpus(("k80", 1)), HOST_470, model=QWEN15, max_model_len=4096)
    assert arg(result, "--max-model-len") == "4096"
    assert result["memory"]["max_concurrency"] == round(result["memory"]["kv_cache_tokens_per_gpu"] / 4096.0, 2)


# ---------------------------------------------------------------------------------------------
# Memory anchors (vllm-facts section 8 and the K80 fork's measurements)


# K80 die 11,441 MiB, util 0.85, overhead 0.6 GiB, fp32: vllm-facts section 8 table
# "K80 die ... KV tokens (concurrency at 2048)".
@pytest.mark.parametrize(
    "model, tp, tokens",
    [
        (TINYLLAMA, 1, 114000),
        (TINYLLAMA, 2, 326000),
        (QWEN15, 1, 59000),
        (QWEN15, 2, 226000),
        (QWEN3B, 2, 92000),
    ],
)
def test_k80_kv_tokens_match_the_anchor_table(model, tp, tokens):
    result = plan(gpus(("k80", 4)), HOST_470, model=model, tensor_parallel_size=tp, max_model_len=2048)
    assert close(result["memory"]["kv_cache_tokens_per_gpu"], tokens), result["memory"]


# The table's TP=4 rows span both boards, which the plan refuses: the memory model alone still holds them.
@pytest.mark.parametrize("model, tokens", [(TINYLLAMA, 750000), (QWEN15, 279000), (QWEN3B, 175000), (LLAMA3, 23000)])
def test_k80_kv_tokens_across_both_boards_match_the_anchor_table(model, tokens):
    shape = planner._ModelShape.from_config(_model_catalog.validate(_model_catalog.lookup(model)))
    memory = planner._MemoryModel(shape, "float32", planner._Engine(None, None, True), planner._Budget(11441, 0.85))
    assert close(memory.at(4).tokens(2048), tokens)


# dogkeeper886/vllm37 README measurements: TinyLlama TP=1 ~58x and TP=2 ~164x concurrency at 2048
# tokens (vllm-facts section 3); the anchor table derives 55.8x and 159x.
@pytest.mark.parametrize("tp, measured, derived", [(1, 58.0, 55.8), (2, 164.0, 159.0)])
def test_k80_tinyllama_concurrency_matches_the_fork_measurements(tp, measured, derived):
    result = plan(gpus(("k80", 2)), HOST_470, tensor_parallel_size=tp)
    concurrency = result["memory"]["max_concurrency"]
    assert close(concurrency, measured)
    assert close(concurrency, derived, 0.02)


def test_k80_tinyllama_weights_and_kv_bytes_match_the_anchor_table():
    # vllm-facts section 8: TinyLlama fp32 weights 4.10 GiB, KV 44 KiB per token; the fork measures 4.1 GiB.
    memory = plan(gpus(("k80", 1)), HOST_470)["memory"]
    assert close(memory["weights_gib_per_gpu"], 4.10, 0.01)
    assert memory["kv_bytes_per_token_per_gpu"] == 44 * 1024
    assert close(memory["budget_gib_per_gpu"], 9.50, 0.01)


def test_qwen25_3b_does_not_fit_one_k80_die():
    # vllm-facts section 8: "does not fit (11.5 > 9.5 GiB)".
    fails("does not fit at TP=1", gpus(("k80", 1)), HOST_470, model=QWEN3B, tensor_parallel_size=1, max_model_len=2048)


# bf16, util 0.90, overhead 1.5 GiB, TP=1: vllm-facts section 8 table "RTX 5090 / A40 / H100 80GB".
@pytest.mark.parametrize(
    "kind, model, tokens",
    [
        ("rtx5090", TINYLLAMA, 1200000),
        ("rtx5090", QWEN15, 910000),
        ("rtx5090", QWEN3B, 620000),
        ("rtx5090", LLAMA3, 100000),
        ("a40", TINYLLAMA, 1760000),
        ("a40", QWEN15, 1350000),
        ("a40", QWEN3B, 970000),
        ("a40", LLAMA3, 197000),
        ("h100", TINYLLAMA, 3250000),
        ("h100", QWEN15, 2520000),
        ("h100", QWEN3B, 1880000),
        ("h100", LLAMA3, 452000),
    ],
)
def test_16bit_kv_tokens_match_the_anchor_table(kind, model, tokens):
    result = plan(gpus((kind, 1)), HOST_580, model=model, tensor_parallel_size=1)
    assert result["dtype"] == "bfloat16"
    assert close(result["memory"]["kv_cache_tokens_per_gpu"], tokens), result["memory"]


@pytest.mark.parametrize("kind, concurrency", [("rtx5090", 12.0), ("a40", 24.0), ("h100", 55.0)])
def test_llama3_concurrency_at_8192_matches_the_anchor_table(kind, concurrency):
    result = plan(gpus((kind, 1)), HOST_580, model=LLAMA3)
    assert result["max_model_len"] == 8192
    assert close(result["memory"]["max_concurrency"], concurrency)


def test_kv_heads_per_rank_never_drop_below_one():
    # Qwen2.5-1.5B has 2 KV heads: at TP=4 each rank still holds one (replicated), 28 layers x 128 x 2 bytes x 2.
    memory = plan(gpus(("h100", 4)), HOST_580, model=QWEN15, tensor_parallel_size=4)["memory"]
    assert memory["kv_bytes_per_token_per_gpu"] == 2 * 28 * 1 * 128 * 2


def test_kv_tokens_are_whole_blocks():
    memory = plan(gpus(("a40", 1)), HOST_580, model=QWEN15)["memory"]
    assert memory["kv_cache_tokens_per_gpu"] % 16 == 0


def test_gpu_memory_utilization_scales_the_budget():
    low = plan(gpus(("a40", 1)), HOST_580, gpu_memory_utilization=0.5)
    assert low["gpu_memory_utilization"] == 0.5
    assert arg(low, "--gpu-memory-utilization") == "0.5"
    assert close(low["memory"]["budget_gib_per_gpu"], 46068 * 0.5 / 1024, 0.001)


@pytest.mark.parametrize("memory", [None, 0, "11441"])
def test_gpu_without_a_memory_size_fails_naming_it(memory):
    # gpu_facts fills memory_mib in from its catalog before a driver is loaded; the planner takes it as given.
    gpu_list = gpus(("k80", 1))
    gpu_list[0]["memory_mib"] = memory
    message = fails("Tesla K80 at 0000:01:00.0 (compute capability 3.7) has no memory size", gpu_list, NO_DRIVER)
    assert "memory_mib %r" % (memory,) in message
    assert "gather facts with gpufleet.vllm.gpu_facts while the NVIDIA driver is loaded" in message


def test_gpu_facts_are_taken_as_given():
    # The PCI device id of a Tesla K80 does not override what the facts say the GPU is.
    gpu_list = gpus(("a40", 1))
    gpu_list[0]["pci_device_id"] = "0x102d"
    result = plan(gpu_list, HOST_580)
    assert (result["variant"], result["dtype"], result["memory"]["memory_mib_per_gpu"]) == ("upstream", "bfloat16", 46068)
    # gpu_facts resolves the architecture from the compute capability; a fact without one is unknown.
    gpu_list[0]["architecture"] = "unknown"
    fails("architecture (unknown) or compute capability is unknown", gpu_list, HOST_580)


# ---------------------------------------------------------------------------------------------
# Other bad input


def test_incompatible_host_fails_quoting_its_first_problem():
    gpu_host = host(compatible=False, problems=["Tesla K80 needs the proprietary 470 driver but RTX 5090 needs open modules.",
                                                "second problem"])
    message = fails("Tesla K80 needs the proprietary 470 driver but RTX 5090 needs open modules", gpus(("k80", 1)), gpu_host)
    assert "second problem" not in message


@pytest.mark.parametrize("value", [0, 0.0, -0.2, 1.01, 2, True, "0.9"])
def test_invalid_gpu_memory_utilization_fails(value):
    message = fails("gpu_memory_utilization must be a fraction above 0 and at most 1", gpus(("a40", 1)), HOST_580, gpu_memory_utilization=value)
    assert "not %r" % (value,) in message


def test_gpu_memory_utilization_of_one_leaves_no_room_for_the_cuda_context():
    # A valid fraction, but the CUDA context alone lives outside the budget.
    fails("gpu_memory_utilization 1.0 leaves 0.00 GiB of NVIDIA A40", gpus(("a40", 1)), HOST_580, gpu_memory_utilization=1.0)
    fails("set it to at most 0.98", gpus(("a40", 1)), HOST_580, gpu_memory_utilization=1.0, enforce_eager=True)


def test_unknown_model_without_config_fails_asking_for_model_config():
    message = fails("pass model_config", gpus(("a40", 1)), HOST_580, model="ibm-granite/granite-3.3-2b-instruct")
    assert "ibm-granite/granite-3.3-2b-instruct" in message


def test_incomplete_model_config_fails():
    message = fails("The config of model x/y cannot be planned (the model config has no num_hidden_layers)", gpus(("a40", 1)), HOST_580,
                    model="x/y", model_config={"hidden_size": 10})
    assert message.endswith("pass the model's complete config.json as model_config.")
    fails("num_hidden_layers must be a positive integer, not 0", gpus(("a40", 1)), HOST_580, model="x/y",
          model_config=dict(planner._model_catalog.MODELS[TINYLLAMA], num_hidden_layers=0))


def test_model_config_of_the_wrong_type_fails():
    fails("model_config of model x/y must be a dict or the path of a config.json, not list", gpus(("a40", 1)), HOST_580, model="x/y",
          model_config=["a"])


@pytest.mark.parametrize("model", ["", None, 5])
def test_missing_model_fails(model):
    fails("model must name a Hugging Face model id or a local path, not %r" % (model,), gpus(("a40", 1)), HOST_580, model=model)


def test_empty_vllm_version_fails():
    fails("vllm_version ' ' is empty; name a vLLM version such as 0.33.0", gpus(("a40", 1)), HOST_580, vllm_version=" ")


def test_model_config_without_context_length_needs_max_model_len():
    config = dict(planner._model_catalog.MODELS[TINYLLAMA])
    del config["max_position_embeddings"]
    fails("The config of model x/y has no max_position_embeddings; set max_model_len", gpus(("a40", 1)), HOST_580, model="x/y",
          model_config=config)
    assert plan(gpus(("a40", 1)), HOST_580, model="x/y", model_config=config, max_model_len=1024)["max_model_len"] == 1024


def test_given_model_config_overrides_the_table():
    config = dict(planner._model_catalog.MODELS[TINYLLAMA], max_position_embeddings=1024)
    assert plan(gpus(("a40", 1)), HOST_580, model_config=config)["max_model_len"] == 1024


@pytest.mark.parametrize("text, fragment", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_parse_model_config_rejects_bad_text(text, fragment):
    with pytest.raises(PlanError) as caught:
        planner.parse_model_config(text, "/srv/m/config.json")
    assert fragment in caught.value.message and "/srv/m/config.json" in caught.value.message


def test_parse_model_config_returns_the_object():
    assert planner.parse_model_config('{"hidden_size": 8}', "x") == {"hidden_size": 8}


@pytest.mark.parametrize("value", [0, -5, "long"])
def test_invalid_max_model_len_fails(value):
    fails("max_model_len must be a positive integer, not %r" % (value,), gpus(("a40", 1)), HOST_580, max_model_len=value)


def test_bad_fact_shapes_fail():
    fails("gpus must be a list, not a str", "nope", HOST_580)
    fails("gpu_host must be a mapping, not a NoneType", gpus(("a40", 1)), None)
    fails("Entry 0 of gpus is 'nope', not a mapping", ["nope"], HOST_580)


def test_env_values_and_args_are_strings():
    for result in (plan(gpus(("k80", 2)), HOST_470), plan(gpus(("a40", 1)), HOST_570), plan([], NO_DRIVER)):
        assert all(isinstance(value, str) for value in result["env"].values())
        assert all(isinstance(value, str) for value in result["args"])
        assert not {"--model", "--port", "--api-key"} & set(result["args"])


# ---------------------------------------------------------------------------------------------
# Quantized and MoE checkpoints

GPT_OSS_20B = "openai/gpt-oss-20b"
GPT_OSS_120B = "openai/gpt-oss-120b"
QWEN3_MOE = "Qwen/Qwen3-30B-A3B"


def test_gpt_oss_20b_fits_one_rtx5090_at_its_full_context():
    # Seed 004's deployment: MXFP4 experts make the weights about 13.6 GiB on the GPU, not 39 GiB of bfloat16.
    result = plan(gpus(("rtx5090", 1)), HOST_570, model=GPT_OSS_20B)
    assert result["variant"] == "cu128"
    assert result["tensor_parallel_size"] == 1
    assert result["max_model_len"] == 131072
    assert 13.5 < result["memory"]["weights_gib_per_gpu"] < 13.7
    assert result["memory"]["kv_cache_tokens_per_gpu"] >= 131072


def test_gpt_oss_120b_fits_one_h100_at_a_shorter_context():
    # 65.4 GiB of weights on the GPU leave 2.4 GiB of KV cache in the 71.7 GiB budget: enough for
    # about 61,000 tokens, less than the model's 131,072.
    result = plan(gpus(("h100", 1)), HOST_580, model=GPT_OSS_120B)
    assert result["tensor_parallel_size"] == 1
    assert 65 < result["memory"]["weights_gib_per_gpu"] < 66
    assert 32768 < result["max_model_len"] < 131072
    assert any("lowers max_model_len" in warning for warning in result["warnings"])
    assert plan(gpus(("h100", 2)), HOST_580, model=GPT_OSS_120B)["tensor_parallel_size"] == 2


def test_bfloat16_moe_weights_count_every_expert():
    result = plan(gpus(("h100", 1)), HOST_580, model=QWEN3_MOE)
    assert close(result["memory"]["weights_gib_per_gpu"], 30.53e9 * 2 / 1024 ** 3, 0.01)


def test_mxfp4_below_compute_capability_8_is_refused():
    fails("is mxfp4-quantized, which needs compute capability 8.0 or newer, more than Tesla T4", gpus(("t4", 1)), HOST_580,
          model=GPT_OSS_20B)


@pytest.mark.parametrize("model, kind", [(GPT_OSS_20B, "mxfp4-quantized"), (QWEN3_MOE, "a mixture of experts")])
def test_k80_refuses_quantized_and_moe_models(model, kind):
    fails("is %s, which the k80 variant cannot run" % kind, gpus(("k80", 4)), HOST_470, model=model)


def test_fp8_checkpoint_halves_the_linear_weights():
    config = dict(_model_catalog.MODELS[LLAMA31], quantization_config={"quant_method": "fp8", "weight_block_size": [128, 128]})
    result = plan(gpus(("h100", 1)), HOST_580, model="example/llama-fp8", model_config=config)
    # 6.98 B linear weights at one byte, 1.05 B embedding and LM head weights at two.
    assert close(result["memory"]["weights_gib_per_gpu"], (6.98e9 + 2 * 1.051e9) / 1024 ** 3, 0.01)


def test_an_unknown_quantization_method_is_refused_naming_the_field():
    config = dict(_model_catalog.MODELS[LLAMA31], quantization_config={"quant_method": "bitsandbytes"})
    fails("quantization_config.quant_method 'bitsandbytes' is not one the planner knows (awq, fp8, gptq, mxfp4)); serve a model of a "
          "family the planner knows (ansible-doc gpufleet.vllm.vllm_plan lists them).", gpus(("h100", 1)), HOST_580,
          model="example/llama-bnb", model_config=config)


def test_multi_head_latent_attention_caches_one_latent_per_token_on_every_rank():
    config = dict(
        model_type="deepseek_v2", num_hidden_layers=27, hidden_size=2048, vocab_size=102400, num_attention_heads=16,
        num_key_value_heads=16, q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
        intermediate_size=10944, moe_intermediate_size=1408, n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6,
        first_k_dense_replace=1, max_position_embeddings=163840, tie_word_embeddings=False,
    )
    one = plan(gpus(("h100", 2)), HOST_580, model="deepseek-ai/DeepSeek-V2-Lite", model_config=config, tensor_parallel_size=1)
    two = plan(gpus(("h100", 2)), HOST_580, model="deepseek-ai/DeepSeek-V2-Lite", model_config=config, tensor_parallel_size=2)
    assert one["memory"]["kv_bytes_per_token_per_gpu"] == two["memory"]["kv_bytes_per_token_per_gpu"] == 27 * 576 * 2


def test_attention_the_planner_does_not_model_is_refused_with_one_sentence():
    config = dict(_model_catalog.MODELS[LLAMA31], attention_chunk_size=8192)
    fails("(the model config's attention_chunk_size declares attention whose KV cache the planner does not model); serve a model",
          gpus(("h100", 1)), HOST_580, model="example/chunked", model_config=config)


def test_fp8_at_load_quantizes_the_linear_weights_and_passes_the_flag():
    result = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31, quantization="fp8", max_model_len=8192)
    assert arg(result, "--quantization") == "fp8"
    # vLLM 0.24.0 loaded this shape in 8.54 GiB on the H200 (tests/hardware/fixtures).
    assert result["memory"]["weights_gib_per_gpu"] == pytest.approx(8.54, rel=0.03)
    # The KV cache stays in the model's dtype.
    assert result["memory"]["kv_bytes_per_token_per_gpu"] == 2 * 32 * 8 * 128 * 2


def test_fp8_at_load_below_compute_capability_7_5_is_refused():
    fails("is fp8-quantized, which needs compute capability 7.5 or newer, more than Tesla V100", gpus(("v100", 1)), HOST_580,
          model=QWEN05, quantization="fp8")


def test_fp8_at_load_is_refused_on_k80_and_cpu():
    fails("is fp8-quantized, which the k80 variant cannot run", gpus(("k80", 2)), HOST_470, quantization="fp8")
    fails("The cpu variant cannot quantize model", [], NO_DRIVER, variant="cpu", quantization="fp8")
    # A host without GPUs gets the cpu variant without asking for it.
    fails("The cpu variant cannot quantize model", [], NO_DRIVER, quantization="fp8")


def test_fp8_at_load_of_a_quantized_checkpoint_is_refused():
    fails("Model openai/gpt-oss-20b is already mxfp4-quantized, so vLLM cannot quantize it to fp8 at load time",
          gpus(("h100", 1)), HOST_580, model=GPT_OSS_20B, quantization="fp8")


def test_an_unknown_quantization_at_load_is_refused():
    fails("quantization 'int4' is not one the planner knows vLLM to apply at load time (fp8)", gpus(("h100", 1)), HOST_580,
          quantization="int4")


# ---------------------------------------------------------------------------------------------
# Sliding windows, peak memory and the engine's batch

GEMMA2_2B = {
    "model_type": "gemma2", "num_hidden_layers": 26, "hidden_size": 2304, "intermediate_size": 9216, "num_attention_heads": 8,
    "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 256000, "max_position_embeddings": 8192, "sliding_window": 4096,
    "tie_word_embeddings": True, "torch_dtype": "float32",
}


def test_sliding_window_layers_hold_only_their_window_at_long_context():
    result = plan(gpus(("rtx5090", 1)), HOST_570, model=GPT_OSS_20B)
    memory = result["memory"]
    assert (memory["kv_cache_groups"], memory["kv_layers_per_group"]) == (["full attention", "sliding window 128"], 12)
    # 8192 blocks of full attention and the window plus one 2048-token chunk: far less than two full groups.
    assert memory["kv_blocks_per_sequence"] == 8192 + (127 + 2048 + 15) // 16 + 1
    assert memory["max_concurrency"] == round(float(memory["kv_cache_blocks_per_gpu"]) / memory["kv_blocks_per_sequence"], 2)
    assert close(memory["kv_cache_tokens_per_gpu"], memory["max_concurrency"] * 131072, 0.001)


def test_a_longer_context_than_the_cache_holds_is_lowered_by_whole_blocks_per_group():
    result = plan(gpus(("rtx5090", 1)), HOST_570, model=GPT_OSS_20B, gpu_memory_utilization=0.55)
    memory = result["memory"]
    assert result["max_model_len"] < 131072 and result["max_model_len"] % 256 == 0
    assert memory["kv_blocks_per_sequence"] <= memory["kv_cache_blocks_per_gpu"]
    assert any("lowers max_model_len to %d" % result["max_model_len"] in warning for warning in result["warnings"])


def test_k80_caps_interleaved_sliding_window_models_to_the_window():
    result = plan(gpus(("k80", 2)), HOST_470, model="google/gemma-2-2b", model_config=GEMMA2_2B)
    assert result["max_model_len"] == 4096
    assert any("only up to the window" in warning for warning in result["warnings"])
    # The fork's V0 engine keeps every token in every layer.
    assert result["memory"]["kv_cache_groups"] == ["full attention"]
    fails("only up to its 4096-token window; set max_model_len to at most 4096", gpus(("k80", 2)), HOST_470,
          model="google/gemma-2-2b", model_config=GEMMA2_2B, max_model_len=8192)


def test_cpu_plans_count_sliding_window_layers_in_full():
    result = plan([], NO_DRIVER, model="google/gemma-2-2b", model_config=GEMMA2_2B, max_model_len=4096)
    assert result["memory"]["kv_cache_groups"] == ["full attention"]
    assert "--max-num-seqs" not in result["args"]


def test_peak_is_the_budget_plus_graphs_beyond_it_and_what_sits_outside():
    from ansible_collections.gpufleet.vllm.plugins.module_utils import _startup_memory as startup

    dense = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31)["memory"]
    assert dense["peak_gib_per_gpu"] == pytest.approx(
        dense["budget_gib_per_gpu"] + dense["cuda_graph_gib"] + startup.OUTSIDE_BUDGET_GIB, abs=0.002)
    moe = plan(gpus(("h100", 1)), HOST_580, model=QWEN3_MOE)["memory"]
    # The V1 runner takes its graph estimate out of the KV cache instead.
    assert moe["peak_gib_per_gpu"] == pytest.approx(moe["budget_gib_per_gpu"] + startup.OUTSIDE_BUDGET_GIB, abs=0.002)
    assert moe["overhead_gib"] == pytest.approx(moe["activation_peak_gib"] + moe["non_torch_gib"] + moe["cuda_graph_gib"], abs=0.002)


def test_k80_runs_eager_with_its_measured_overhead_and_no_batch_arguments():
    result = plan(gpus(("k80", 1)), HOST_470)
    memory = result["memory"]
    assert (memory["overhead_gib"], memory["cuda_graph_gib"]) == (0.6, 0.0)
    assert "--max-num-batched-tokens" not in result["args"]


def test_large_gpus_get_vllms_larger_batch_stated():
    result = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31)
    assert (arg(result, "--max-num-seqs"), arg(result, "--max-num-batched-tokens")) == ("1024", "8192")


def test_enforce_eager_drops_the_graphs_from_the_peak_and_passes_the_flag():
    graphs = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31)
    eager = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31, enforce_eager=True)
    assert "--enforce-eager" in eager["args"] and "--enforce-eager" not in graphs["args"]
    assert eager["memory"]["cuda_graph_gib"] == 0.0
    assert eager["memory"]["peak_gib_per_gpu"] == pytest.approx(graphs["memory"]["peak_gib_per_gpu"] - graphs["memory"]["cuda_graph_gib"])
    assert plan(gpus(("k80", 1)), HOST_470)["args"].count("--enforce-eager") == 1
    fails("enforce_eager must be true or false, not 'yes'", gpus(("h100", 1)), HOST_580, enforce_eager="yes")


def test_a_budget_without_room_for_graphs_and_context_is_refused():
    # 0.99 of an H100 leaves 0.8 GiB, less than its 0.94 GiB of graphs and 0.55 GiB of context.
    message = fails("gpu_memory_utilization 0.99 leaves 0.80 GiB of NVIDIA H100 80GB HBM3 for the CUDA graphs and context, which "
                    "need 1.49 GiB beyond the budget; set it to at most 0.98, or enforce_eager", gpus(("h100", 1)), HOST_580,
                    model=LLAMA31, gpu_memory_utilization=0.99)
    assert message
    eager = plan(gpus(("h100", 1)), HOST_580, model=LLAMA31, gpu_memory_utilization=0.99, enforce_eager=True)
    assert eager["memory"]["peak_gib_per_gpu"] <= 81559 / 1024.0
