# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog as catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils import _quantization as quant
from ansible_collections.gpufleet.vllm.plugins.module_utils._model_catalog import ModelConfigError

GIB = 1024 ** 3
GROUPS = {"embeddings": 1000, "attention": 2000, "mlp": 4000, "experts": 0, "other": 10}


def test_a_config_without_quantization_config_is_not_quantized():
    assert quant.from_config({"model_type": "llama"}) is None


def test_mxfp4_quantizes_the_experts_alone_at_four_bits_and_a_scale_per_32():
    quantization = quant.from_config(catalog.MODELS["openai/gpt-oss-20b"])
    assert (quantization.method, quantization.groups) == ("mxfp4", ("experts",))
    # 4.25 bits in the checkpoint, 8.1 % more in the layout vLLM's kernels hold on the GPU.
    assert quantization.bits == pytest.approx(4.25 * 1.081)
    assert quantization.min_compute_capability == "8.0"


def test_fp8_quantizes_every_linear_weight_to_a_byte():
    quantization = quant.from_config({"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}})
    assert quantization == quant.Quantization("fp8", 8.0, ("attention", "mlp", "experts"))
    assert quant.weight_bytes(GROUPS, 2, quantization) == 1000 * 2 + 2000 + 4000 + 10 * 2


@pytest.mark.parametrize(
    "settings, bits",
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, 4 + 20 / 128.0),
        ({"quant_method": "AWQ", "w_bit": 4, "q_group_size": 64}, 4 + 20 / 64.0),
        ({"quant_method": "gptq", "bits": 8, "group_size": 128}, 8 + 24 / 128.0),
        ({"quant_method": "gptq", "bits": 4, "group_size": -1}, 4.0),
        ({"quant_method": "gptq", "bits": 4}, 4 + 20 / 128.0),
    ],
)
def test_grouped_methods_count_a_scale_and_a_zero_point_per_group(settings, bits):
    quantization = quant.from_config({"quantization_config": settings})
    assert quantization.bits == pytest.approx(bits)
    assert quantization.groups == quant.LINEAR_GROUPS


def test_weight_bytes_keep_unquantized_groups_in_the_dtype():
    assert quant.weight_bytes(GROUPS, 2, None) == sum(GROUPS.values()) * 2
    assert quant.weight_bytes(GROUPS, 4, None) == sum(GROUPS.values()) * 4


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"quant_method": "bitsandbytes"}, "quant_method 'bitsandbytes' is not one the planner knows (awq, fp8, gptq, mxfp4)"),
        ({}, "quant_method None is not one the planner knows"),
        ({"quant_method": "awq", "bits": 5}, "quantization_config.bits must be 2, 3, 4 or 8 for awq, not 5"),
        ({"quant_method": "gptq", "bits": 4, "group_size": 0}, "quantization_config.group_size must be a positive integer or -1, not 0"),
    ],
)
def test_what_the_planner_does_not_understand_is_refused_naming_the_field(settings, field):
    with pytest.raises(ModelConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        quant.from_config({"quantization_config": settings})


def test_a_quantization_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ModelConfigError, match="quantization_config must be a mapping"):
        quant.from_config({"quantization_config": "fp8"})


def test_gpt_oss_20b_weighs_on_the_gpu_what_vllm_loaded_from_its_mxfp4_checkpoint():
    # The checkpoint generated in vLLM's MXFP4 layout for the H200 run (tests/hardware/fixtures)
    # holds 12.82 GiB at 4.25 bits an expert weight; vLLM reported 13.58 GiB after loading it.
    config = catalog.MODELS["openai/gpt-oss-20b"]
    groups = catalog.parameter_groups(config)
    checkpoint = quant.weight_bytes(groups, 2, quant.Quantization("mxfp4", quant.MXFP4_BITS, ("experts",)))
    assert checkpoint / GIB == pytest.approx(12.82, abs=0.02)
    assert quant.weight_bytes(groups, 2, quant.from_config(config)) / GIB == pytest.approx(13.58, abs=0.02)
