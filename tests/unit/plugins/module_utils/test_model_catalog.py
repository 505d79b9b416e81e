# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog as catalog

REQUIRED_MODELS = (
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-1.7B",
    "Qwen/Qwen3-4B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B",
    "Qwen/Qwen3-32B",
    "meta-llama/Meta-Llama-3-8B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "mistralai/Mistral-Nemo-Instruct-2407",
    "mistralai/Mistral-Small-24B-Instruct-2501",
    "baidu/ERNIE-4.5-0.3B-PT",
    "ibm-granite/granite-4.1-3b",
    "Qwen/Qwen3-30B-A3B",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
)


@pytest.mark.parametrize("model_id", REQUIRED_MODELS)
def test_table_entry_has_every_essential_field_and_its_hub_source(model_id):
    entry = catalog.MODELS[model_id]
    for field in catalog.ESSENTIAL_FIELDS:
        assert field in entry, field
    assert entry["source"] == "https://huggingface.co/%s/blob/main/config.json" % model_id
    # vLLM requires the heads to split evenly into key/value groups.
    assert entry["num_attention_heads"] % entry["num_key_value_heads"] == 0


def test_only_the_models_whose_hub_config_sets_head_dim_set_it_in_the_table():
    with_head_dim = sorted(model_id for model_id, entry in catalog.MODELS.items() if "head_dim" in entry)
    assert with_head_dim == [
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen3-1.7B",
        "Qwen/Qwen3-14B",
        "Qwen/Qwen3-30B-A3B",
        "Qwen/Qwen3-32B",
        "Qwen/Qwen3-4B",
        "Qwen/Qwen3-8B",
        "baidu/ERNIE-4.5-0.3B-PT",
        "meta-llama/Llama-3.2-1B-Instruct",
        "meta-llama/Llama-3.2-3B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "mistralai/Mistral-Nemo-Instruct-2407",
        "mistralai/Mistral-Small-24B-Instruct-2501",
        "openai/gpt-oss-120b",
        "openai/gpt-oss-20b",
    ]


# Published sizes: model cards (TinyLlama 1.1B, Qwen2.5 0.49B/1.54B/3.09B/7.61B, Qwen3 0.6B,
# Llama 3 8.03B, Mistral 7.25B, Qwen3-30B-A3B 30.5B, gpt-oss 20.9B/116.8B) and vllm-facts section 8
# "Params" column.
@pytest.mark.parametrize(
    "model_id, billions",
    [
        ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1.10),
        ("Qwen/Qwen2.5-0.5B-Instruct", 0.494),
        ("Qwen/Qwen2.5-1.5B-Instruct", 1.54),
        ("Qwen/Qwen2.5-3B-Instruct", 3.09),
        ("Qwen/Qwen2.5-7B-Instruct", 7.62),
        ("Qwen/Qwen3-0.6B", 0.596),
        ("meta-llama/Meta-Llama-3-8B-Instruct", 8.03),
        ("meta-llama/Llama-3.1-8B-Instruct", 8.03),
        ("mistralai/Mistral-7B-Instruct-v0.3", 7.25),
        ("Qwen/Qwen3-30B-A3B", 30.5),
        ("openai/gpt-oss-20b", 20.9),
        ("openai/gpt-oss-120b", 116.8),
    ],
)
def test_parameter_count_matches_published_size(model_id, billions):
    count = catalog.parameter_count(catalog.MODELS[model_id])
    assert abs(count / 1e9 - billions) / billions < 0.01


@pytest.mark.parametrize(
    "model_id, billions",
    [
        # KerasHub qwen3 presets: "28-layer Qwen3 model with 1.72B parameters" (model card: 1.7B).
        ("Qwen/Qwen3-1.7B", 1.72),
        # Qwen3 model cards, "Number of Parameters": 4.0B, 8.2B, 14.8B, 32.8B.
        ("Qwen/Qwen3-4B", 4.0),
        ("Qwen/Qwen3-8B", 8.2),
        ("Qwen/Qwen3-14B", 14.8),
        ("Qwen/Qwen3-32B", 32.8),
        # Llama 3.2 model card: 1.23B and 3.21B; the 1B checkpoint holds 1.24B with its tied LM head counted once.
        ("meta-llama/Llama-3.2-1B-Instruct", 1.24),
        ("meta-llama/Llama-3.2-3B-Instruct", 3.21),
        # Llama 3.1 model card: 70.6B; Llama 3.3 70B has the same geometry (hub safetensors: 70.6B).
        ("meta-llama/Llama-3.1-70B-Instruct", 70.6),
        ("meta-llama/Llama-3.3-70B-Instruct", 70.6),
        # Mistral NeMo announcement and model card: 12B; its GGUF's general.parameter_count is 12.2B.
        ("mistralai/Mistral-Nemo-Instruct-2407", 12.2),
        # Hub safetensors of Mistral-Small-24B-Instruct-2501: 23.6B.
        ("mistralai/Mistral-Small-24B-Instruct-2501", 23.6),
        # Hub safetensors totals read by vllm37 docs/port/model-family-requirements.md (parts 5 and 8).
        ("baidu/ERNIE-4.5-0.3B-PT", 0.361),
        ("ibm-granite/granite-4.1-3b", 3.40),
    ],
)
def test_parameter_count_of_fleet_models_matches_published_size(model_id, billions):
    count = catalog.parameter_count(catalog.MODELS[model_id])
    assert abs(count / 1e9 - billions) / billions < 0.01


def test_mistral_nemo_counts_its_explicit_head_dim_exactly():
    # head_dim 128, not hidden_size / heads = 160: q and o are 5120 x 4096, k and v 5120 x 1024.
    config = catalog.MODELS["mistralai/Mistral-Nemo-Instruct-2407"]
    assert catalog.head_dim(config) == 128
    layer = 2 * 5120 * 32 * 128 + 2 * 5120 * 8 * 128 + 3 * 5120 * 14336 + 2 * 5120
    expected = 2 * 131072 * 5120 + 40 * layer + 5120
    # 12,247,782,400 is the general.parameter_count of the GGUF converted from the hub checkpoint (ollama/ollama#8277).
    assert catalog.parameter_count(config) == expected == 12247782400
    assert catalog.parameter_count(dict(config, head_dim=None)) > expected


def test_ernie_head_dim_is_wider_than_hidden_over_heads():
    config = catalog.MODELS["baidu/ERNIE-4.5-0.3B-PT"]
    assert catalog.head_dim(config) == 128 != 1024 // 16
    assert catalog.parameter_groups(config)["attention"] == 18 * (2 * 1024 * 16 * 128 + 2 * 1024 * 2 * 128)


def test_llama_3_2_1b_ties_its_lm_head_to_the_embeddings():
    groups = catalog.parameter_groups(catalog.MODELS["meta-llama/Llama-3.2-1B-Instruct"])
    assert groups["embeddings"] == 128256 * 2048


def test_qwen3_dense_rows_count_their_qk_norms():
    config = catalog.MODELS["Qwen/Qwen3-8B"]
    as_llama = dict(config, model_type="llama")
    # One RMSNorm of head_dim 128 over the queries and one over the keys, on 36 layers.
    assert catalog.parameter_count(config) - catalog.parameter_count(as_llama) == 36 * 2 * 128


def test_parameter_count_of_tinyllama_is_exact():
    # 32000x2048 embeddings + lm_head, 22 layers of q(2048x2048) k,v(2048x256) o(2048x2048),
    # gated MLP 3x2048x5632, two norms, final norm.
    layer = 2048 * 2048 * 2 + 2 * 2048 * 256 + 3 * 2048 * 5632 + 2 * 2048
    expected = 2 * 32000 * 2048 + 22 * layer + 2048
    assert catalog.parameter_count(catalog.MODELS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]) == expected == 1100048384


def test_tied_embeddings_count_the_vocabulary_once():
    config = dict(catalog.MODELS["Qwen/Qwen2.5-1.5B-Instruct"])
    tied = catalog.parameter_count(config)
    config["tie_word_embeddings"] = False
    assert catalog.parameter_count(config) - tied == 151936 * 1536


def test_qwen2_counts_implicit_qkv_bias():
    qwen = dict(catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"])
    as_llama = dict(qwen, model_type="llama")
    # q bias 14x64, k and v bias 2x64 each, on 24 layers.
    assert catalog.parameter_count(qwen) - catalog.parameter_count(as_llama) == 24 * (14 * 64 + 2 * 2 * 64)


def test_attention_and_mlp_bias_flags_add_biases():
    base = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512}
    plain = catalog.parameter_count(base)
    assert catalog.parameter_count(dict(base, attention_bias=True)) - plain == 2 * (256 + 2 * 128 + 256)
    assert catalog.parameter_count(dict(base, mlp_bias=True)) - plain == 2 * (2 * 512 + 256)


def test_mixtral_style_moe_counts_every_expert():
    # Mixtral-8x7B config.json geometry; Mistral AI publishes 46.7B parameters.
    mixtral = {"model_type": "mixtral", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
               "tie_word_embeddings": False}
    assert abs(catalog.parameter_count(mixtral) / 1e9 - 46.7) < 0.1


def test_qwen_moe_uses_moe_intermediate_size_and_shared_expert():
    base = {"model_type": "qwen2_moe", "num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 1000,
            "moe_intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 10,
            "num_experts": 4, "tie_word_embeddings": True}
    without_shared = catalog.parameter_count(base)
    with_shared = catalog.parameter_count(dict(base, shared_expert_intermediate_size=48))
    assert with_shared - without_shared == 3 * 64 * 48 + 64
    dense_mlp = catalog.parameter_count(dict(base, num_experts=None))
    # 4 experts of 3x64x32 plus a 64x4 router replace one dense 3x64x1000 MLP.
    assert without_shared - dense_mlp == (4 * 3 * 64 * 32 + 64 * 4) - 3 * 64 * 1000


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"hidden_size": 2048, "num_attention_heads": 32}, 64),
        ({"hidden_size": 1024, "num_attention_heads": 16, "head_dim": 128}, 128),
        ({"hidden_size": 3584, "num_attention_heads": 28}, 128),
    ],
)
def test_head_dim_prefers_the_config_value(config, expected):
    assert catalog.head_dim(config) == expected


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"num_attention_heads": 32, "num_key_value_heads": 4}, 4),
        ({"num_attention_heads": 32}, 32),
        ({"num_attention_heads": 12, "num_key_value_heads": None}, 12),
    ],
)
def test_kv_heads_default_to_attention_heads(config, expected):
    assert catalog.kv_heads(config) == expected


def test_lookup_is_case_insensitive_and_returns_a_copy():
    entry = catalog.lookup("qwen/qwen2.5-7b-instruct")
    assert entry["hidden_size"] == 3584
    entry["hidden_size"] = 1
    assert catalog.MODELS["Qwen/Qwen2.5-7B-Instruct"]["hidden_size"] == 3584
    assert catalog.lookup("someone/unknown-model") is None
    assert catalog.lookup(None) is None


def test_text_config_of_a_multimodal_config_is_used():
    config = {"model_type": "gemma3", "text_config": {"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512,
                                                      "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 64,
                                                      "vocab_size": 1000, "max_position_embeddings": 4096}}
    assert catalog.head_dim(config) == 64
    assert catalog.kv_heads(config) == 1
    assert catalog.max_position_embeddings(config) == 4096
    assert catalog.parameter_count(config) > 0


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"hidden_size": 256, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 5}, "num_hidden_layers"),
        ({"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4, "vocab_size": 10}, "intermediate_size"),
        ({"num_hidden_layers": "2", "hidden_size": 256, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 5},
         "positive integer"),
        ({"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 6, "num_key_value_heads": 4, "vocab_size": 10,
          "intermediate_size": 5}, "not a multiple"),
    ],
)
def test_validate_rejects_incomplete_configs(config, fragment):
    with pytest.raises(catalog.ModelConfigError) as caught:
        catalog.validate(config)
    assert fragment in str(caught.value)


def test_validate_rejects_a_non_mapping():
    with pytest.raises(catalog.ModelConfigError, match="JSON object"):
        catalog.validate(["not", "a", "config"])


def test_max_position_embeddings_is_none_when_missing():
    assert catalog.max_position_embeddings({"num_hidden_layers": 2}) is None
    assert catalog.max_position_embeddings(catalog.MODELS["Qwen/Qwen3-0.6B"]) == 40960


def test_gpt_oss_groups_put_nearly_all_weights_in_the_experts():
    groups = catalog.parameter_groups(catalog.MODELS["openai/gpt-oss-20b"])
    # 24 layers of 32 experts, each 3 x 2880 x 2880; untied 201088 x 2880 embeddings and LM head.
    assert groups["experts"] == 24 * 32 * 3 * 2880 * 2880
    assert groups["embeddings"] == 2 * 201088 * 2880
    assert groups["mlp"] == 0


def test_gpt_oss_counts_sinks_and_expert_and_router_biases():
    config = catalog.MODELS["openai/gpt-oss-20b"]
    other = catalog.parameter_groups(config)["other"]
    without = catalog.parameter_groups(dict(config, model_type="mixtral"))["other"]
    sinks = 24 * 64
    expert_biases = 24 * 32 * (2 * 2880 + 2880)
    router_biases = 24 * 32
    assert other - without == sinks + expert_biases + router_biases


def test_dense_models_have_no_expert_group():
    groups = catalog.parameter_groups(catalog.MODELS["meta-llama/Llama-3.1-8B-Instruct"])
    assert groups["experts"] == 0
    assert groups["mlp"] == 32 * 3 * 4096 * 14336


# deepseek-ai/DeepSeek-V2-Lite and deepseek-ai/DeepSeek-V3 config.json fields that decide their size.
DEEPSEEK_V2_LITE = {
    "model_type": "deepseek_v2", "num_hidden_layers": 27, "hidden_size": 2048, "vocab_size": 102400, "num_attention_heads": 16,
    "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "intermediate_size": 10944, "moe_intermediate_size": 1408, "n_routed_experts": 64, "n_shared_experts": 2,
    "num_experts_per_tok": 6, "first_k_dense_replace": 1, "topk_method": "greedy", "tie_word_embeddings": False,
}
DEEPSEEK_V3 = dict(
    DEEPSEEK_V2_LITE, model_type="deepseek_v3", num_hidden_layers=61, hidden_size=7168, vocab_size=129280, num_attention_heads=128,
    num_key_value_heads=128, q_lora_rank=1536, intermediate_size=18432, moe_intermediate_size=2048, n_routed_experts=256,
    n_shared_experts=1, num_experts_per_tok=8, first_k_dense_replace=3, topk_method="noaux_tc",
)


@pytest.mark.parametrize("config, published", [
    # Model cards: "15.7B total parameters" (V2-Lite), "671B total parameters" (V3, without its 14B MTP module).
    (DEEPSEEK_V2_LITE, 15.7e9),
    (DEEPSEEK_V3, 671e9),
])
def test_latent_attention_models_count_their_published_size(config, published):
    assert catalog.parameter_count(config) == pytest.approx(published, rel=0.005)


def test_latent_attention_layers_project_through_the_latent_ranks():
    groups = catalog.parameter_groups(DEEPSEEK_V2_LITE)
    per_layer = 2048 * 16 * 192 + 2048 * (512 + 64) + 512 * 16 * (128 + 128) + 16 * 128 * 2048
    assert groups["attention"] == 27 * per_layer


def test_dense_first_layers_of_deepseek_models_hold_no_experts():
    groups = catalog.parameter_groups(DEEPSEEK_V2_LITE)
    assert groups["experts"] == 26 * 64 * 3 * 2048 * 1408
    # One dense MLP layer and 26 layers of two shared experts.
    assert groups["mlp"] == 3 * 2048 * 10944 + 26 * 2 * 3 * 2048 * 1408


def test_sliding_and_full_attention_layers_are_understood():
    assert catalog.validate(catalog.MODELS["openai/gpt-oss-20b"])["layer_types"][:2] == ["sliding_attention", "full_attention"]
