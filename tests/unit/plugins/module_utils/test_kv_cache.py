# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog as catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils._kv_cache import KvLayout

LLAMA31 = catalog.MODELS["meta-llama/Llama-3.1-8B-Instruct"]
GPT_OSS_20B = catalog.MODELS["openai/gpt-oss-20b"]


def layout(base, **fields):
    return KvLayout.from_config(dict(base, **fields))


def gemma(model_type, layers, **fields):
    config = {"model_type": model_type, "num_hidden_layers": layers, "hidden_size": 2304, "num_attention_heads": 8,
              "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096}
    config.update(fields)
    return KvLayout.from_config(config)


def test_full_attention_is_one_group_of_every_layer():
    llama = KvLayout.from_config(LLAMA31)
    assert llama.groups() == ((None,), 32)
    assert llama.token_bytes(2, 1) == 2 * 8 * 128 * 2
    assert llama.block_bytes(2, 1) == 16 * 2 * 8 * 128 * 2 * 32
    assert llama.blocks_per_sequence(131072, 8192) == 8192
    assert not llama.interleaved and llama.smallest_window is None


def test_tensor_parallel_ranks_split_kv_heads_and_replicate_the_last_one():
    llama = KvLayout.from_config(LLAMA31)
    assert [llama.token_bytes(2, tp) for tp in (1, 2, 8, 16)] == [4096, 2048, 512, 512]


def test_gpt_oss_layers_alternate_a_128_token_window_with_full_attention():
    oss = KvLayout.from_config(GPT_OSS_20B)
    assert oss.windows[:4] == (128, None, 128, None)
    assert oss.groups() == ((None, 128), 12)
    assert oss.interleaved and oss.smallest_window == 128
    # At 131072 tokens a sliding group keeps only the window and one scheduled chunk.
    assert oss.blocks_per_sequence(131072, 2048) == 8192 + (128 - 1 + 2048 + 15) // 16 + 1


def test_a_window_longer_than_the_context_costs_the_context_and_one_block():
    oss = KvLayout.from_config(GPT_OSS_20B)
    assert oss.blocks_per_sequence(8192, 8192) == 512 + 513


def test_gemma2_without_layer_types_slides_on_even_layers():
    assert gemma("gemma2", 26).windows[:3] == (4096, None, 4096)
    assert gemma("gemma2", 26).groups() == ((None, 4096), 13)


def test_gemma3_slides_on_all_but_every_sixth_layer_and_groups_by_the_smaller_count():
    gemma3 = gemma("gemma3_text", 34)
    assert gemma3.windows.count(None) == 5 and gemma3.windows[5] is None
    windows, size = gemma3.groups()
    # 29 sliding layers in groups of 5 (the last one padded) and one full-attention group.
    assert (size, windows.count(4096), windows.count(None)) == (5, 6, 1)


def test_counts_close_together_share_the_larger_group_size():
    mixed = gemma("gemma2", 26, layer_types=["sliding_attention"] * 12 + ["full_attention"] * 14)
    assert mixed.groups() == ((None, 4096), 14)


def test_a_window_on_every_layer_is_one_sliding_group():
    mistral = layout(catalog.MODELS["mistralai/Mistral-7B-Instruct-v0.3"], sliding_window=4096)
    assert mistral.groups() == ((4096,), 32)
    assert mistral.blocks_per_sequence(32768, 8192) == (4096 - 1 + 8192 + 15) // 16 + 1
    assert not mistral.interleaved


def test_a_window_switched_off_or_unset_is_full_attention():
    assert layout(LLAMA31, sliding_window=32768, use_sliding_window=False).windows == (None,) * 32
    assert layout(LLAMA31, sliding_window=None).windows == (None,) * 32


def test_the_engine_without_window_caches_counts_every_layer_in_full():
    oss = KvLayout.from_config(GPT_OSS_20B).as_full_attention()
    assert oss.groups() == ((None,), 24)


def test_reported_tokens_are_the_sequences_the_blocks_hold_times_the_context():
    oss = KvLayout.from_config(GPT_OSS_20B)
    assert oss.tokens(1025 * 3, 8192, 8192) == 3 * 8192
    assert KvLayout.from_config(LLAMA31).tokens(56057, 8192, 8192) == 56057 * 16


def test_multi_head_latent_attention_caches_one_latent_per_token_on_every_rank():
    config = {"model_type": "deepseek_v2", "num_hidden_layers": 27, "hidden_size": 2048, "num_attention_heads": 16,
              "num_key_value_heads": 16, "kv_lora_rank": 512, "qk_rope_head_dim": 64}
    mla = KvLayout.from_config(config)
    assert mla.latent_width == 576
    assert mla.token_bytes(2, 1) == mla.token_bytes(2, 8) == 576 * 2
    assert mla.groups() == ((None,), 27)


@pytest.mark.parametrize("fields, message", [
    ({"kv_lora_rank": 512}, "qk_rope_head_dim must be a positive integer for multi-head latent attention, not None"),
    ({"layer_types": ["linear_attention", "full_attention"] * 16}, "layer_types holds linear_attention, layers whose cache"),
    ({"layer_types": ["full_attention"] * 3}, "layer_types must list one type per layer (32)"),
    ({"layer_types": ["sliding_attention"] * 32}, "sliding_window must be a positive integer for its sliding-window layers, not None"),
    ({"attention_chunk_size": 8192}, "attention_chunk_size declares attention whose KV cache the planner does not model"),
])
def test_attention_the_planner_cannot_size_is_refused_naming_the_field(fields, message):
    with pytest.raises(catalog.ModelConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        layout(LLAMA31, **fields)


def test_unmodelled_attention_is_an_unplanned_family():
    with pytest.raises(catalog.UnplannedFamilyError):
        layout(LLAMA31, layer_types=["linear_attention"] * 32)
