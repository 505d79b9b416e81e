# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Built-in config.json essentials of popular models, and the arithmetic the planner needs.

Every entry copies fields of the model's ``config.json`` on its Hugging Face hub page
(``https://huggingface.co/<id>/blob/main/config.json``, named in ``source``); the planner only
needs geometry, so the rest of each file (rope settings, token ids, ...) is left out.
"""

from __future__ import annotations

import copy

# Fields every entry carries; ``head_dim`` only where the hub file sets it.
ESSENTIAL_FIELDS = (
    "model_type",
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "torch_dtype",
)


def _hub(model_id):
    return "https://huggingface.co/%s/blob/main/config.json" % model_id


def _gpt_oss_layers(count):
    return ["sliding_attention" if index % 2 == 0 else "full_attention" for index in range(count)]


# What gpt-oss-20b and gpt-oss-120b share: MXFP4 experts (the rest stays bfloat16), sliding-window
# (128) layers alternating with full attention, attention sinks.
_GPT_OSS = {
    "model_type": "gpt_oss",
    "hidden_size": 2880,
    "intermediate_size": 2880,
    "num_experts_per_tok": 4,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "attention_bias": True,
    "sliding_window": 128,
    "vocab_size": 201088,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {
        "quant_method": "mxfp4",
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
    },
}

MODELS = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": {
        "model_type": "llama",
        "num_hidden_layers": 22,
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "vocab_size": 32000,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen2.5-0.5B-Instruct": {
        "model_type": "qwen2",
        "num_hidden_layers": 24,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen2.5-1.5B-Instruct": {
        "model_type": "qwen2",
        "num_hidden_layers": 28,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen2.5-3B-Instruct": {
        "model_type": "qwen2",
        "num_hidden_layers": 36,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen2.5-7B-Instruct": {
        "model_type": "qwen2",
        "num_hidden_layers": 28,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-0.6B": {
        "model_type": "qwen3",
        "num_hidden_layers": 28,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-1.7B": {
        "model_type": "qwen3",
        "num_hidden_layers": 28,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-4B": {
        "model_type": "qwen3",
        "num_hidden_layers": 36,
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-8B": {
        "model_type": "qwen3",
        "num_hidden_layers": 36,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-14B": {
        "model_type": "qwen3",
        "num_hidden_layers": 40,
        "hidden_size": 5120,
        "intermediate_size": 17408,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-32B": {
        "model_type": "qwen3",
        "num_hidden_layers": 64,
        "hidden_size": 5120,
        "intermediate_size": 25600,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Meta-Llama-3-8B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Llama-3.1-8B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Llama-3.2-1B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 16,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Llama-3.2-3B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 28,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Llama-3.1-70B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 80,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "meta-llama/Llama-3.3-70B-Instruct": {
        "model_type": "llama",
        "num_hidden_layers": 80,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "mistralai/Mistral-7B-Instruct-v0.3": {
        "model_type": "mistral",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32768,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    # Mistral-Nemo's head_dim (128) is not hidden_size / heads (5120 / 32 = 160).
    "mistralai/Mistral-Nemo-Instruct-2407": {
        "model_type": "mistral",
        "num_hidden_layers": 40,
        "hidden_size": 5120,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 131072,
        "max_position_embeddings": 1024000,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "mistralai/Mistral-Small-24B-Instruct-2501": {
        "model_type": "mistral",
        "num_hidden_layers": 40,
        "hidden_size": 5120,
        "intermediate_size": 32768,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 131072,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    # Dense families the K80 fork (vllm37) serves without model work (vllm-facts section 3).
    "baidu/ERNIE-4.5-0.3B-PT": {
        "model_type": "ernie4_5",
        "num_hidden_layers": 18,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "vocab_size": 103424,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "ibm-granite/granite-4.1-3b": {
        "model_type": "granite",
        "num_hidden_layers": 40,
        "hidden_size": 2560,
        "intermediate_size": 8192,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "vocab_size": 100352,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "Qwen/Qwen3-30B-A3B": {
        "model_type": "qwen3_moe",
        "num_hidden_layers": 48,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "openai/gpt-oss-20b": dict(_GPT_OSS, num_hidden_layers=24, num_local_experts=32, layer_types=_gpt_oss_layers(24)),
    "openai/gpt-oss-120b": dict(_GPT_OSS, num_hidden_layers=36, num_local_experts=128, layer_types=_gpt_oss_layers(36)),
}

for _model_id, _entry in MODELS.items():
    _entry["source"] = _hub(_model_id)

# Qwen2 attention always carries q/k/v biases (Qwen2.5 model cards: "attention QKV bias");
# its config.json has no key saying so.
_IMPLICIT_QKV_BIAS_TYPES = frozenset(("qwen2", "qwen2_moe"))
# Qwen3 adds an RMSNorm over each query and key head (transformers Qwen3Attention q_norm/k_norm).
_QK_NORM_TYPES = frozenset(("qwen3", "qwen3_moe"))
# gpt-oss adds a learned attention sink per head, and biases to its experts and router
# (transformers GptOssAttention.sinks, GptOssExperts, GptOssTopKRouter).
_ATTENTION_SINK_TYPES = frozenset(("gpt_oss",))
_EXPERT_BIAS_TYPES = frozenset(("gpt_oss",))

_REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")


class ModelConfigError(ValueError):
    """A config.json lacks what the arithmetic needs."""


class UnplannedFamilyError(ModelConfigError):
    """A config.json is complete but describes something the planner does not model."""


def lookup(model):
    """Return a copy of the built-in entry for a Hugging Face id (case-insensitive), else None."""
    if not isinstance(model, str):
        return None
    wanted = model.strip().strip("/").lower()
    for model_id, entry in MODELS.items():
        if model_id.lower() == wanted:
            return copy.deepcopy(entry)
    return None


def text_config(config):
    """The language-model part of a config: multimodal configs nest it under ``text_config``."""
    if not isinstance(config, dict):
        raise ModelConfigError("The model config must be a JSON object (a mapping), not %s." % type(config).__name__)
    nested = config.get("text_config")
    if isinstance(nested, dict) and "num_hidden_layers" not in config:
        merged = dict(config)
        merged.update(nested)
        return merged
    return config


def _int_field(config, name, default=None):
    value = config.get(name, default)
    if value is None:
        raise ModelConfigError("The model config has no %s; pass the model's complete config.json." % name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelConfigError("The model config's %s must be a positive integer, not %r." % (name, value))
    return value


def validate(config):
    """Raise ModelConfigError unless the fields the planner needs are present and sane."""
    config = text_config(config)
    for name in _REQUIRED:
        _int_field(config, name)
    if _experts(config) == 0:
        _int_field(config, "intermediate_size")
    kv = kv_heads(config)
    if config["num_attention_heads"] % kv:
        raise ModelConfigError(
            "The model config's num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)."
            % (config["num_attention_heads"], kv)
        )
    return config


def head_dim(config):
    """Attention head size: ``head_dim`` when the config sets it, else hidden_size / heads."""
    config = text_config(config)
    if config.get("head_dim"):
        return _int_field(config, "head_dim")
    return _int_field(config, "hidden_size") // _int_field(config, "num_attention_heads")


def kv_heads(config):
    """Key/value heads; configs without ``num_key_value_heads`` use one per attention head (MHA)."""
    config = text_config(config)
    if config.get("num_key_value_heads") is None:
        return _int_field(config, "num_attention_heads")
    return _int_field(config, "num_key_value_heads")


def _experts(config):
    for name in ("num_local_experts", "num_experts", "n_routed_experts"):
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def parameter_groups(config):
    """Parameters of a llama-style decoder described by a config.json (dense or MoE), by group.

    Quantization stores groups differently (_quantization), so they are counted apart:
    ``embeddings`` (token embeddings, and the LM head unless ``tie_word_embeddings``),
    ``attention`` (q/k/v/o projection weights, grouped-query), ``mlp`` (the gated MLP, 3 x hidden x
    intermediate, or a Qwen-MoE shared expert), ``experts`` (the expert MLPs of MoE models, from
    ``num_local_experts``/``num_experts``) and ``other`` (norms, biases, routers, attention sinks).
    """
    config = validate(config)
    hidden = config["hidden_size"]
    layers = config["num_hidden_layers"]
    model_type = str(config.get("model_type") or "").lower()
    attention, attention_other = _attention_parameters(config, model_type)
    mlp, experts, mlp_other = _mlp_parameters(config, model_type)
    # DeepSeek-style models keep a dense MLP in their first layers (first_k_dense_replace).
    dense_layers = min(config.get("first_k_dense_replace") or 0, layers) if experts else 0
    dense_mlp = 3 * hidden * config["intermediate_size"] if dense_layers else 0
    moe_layers = layers - dense_layers
    embeddings = config["vocab_size"] * hidden
    if not config.get("tie_word_embeddings", False):
        embeddings *= 2
    norms = 2 * hidden
    return {
        "embeddings": embeddings,
        "attention": layers * attention,
        "mlp": moe_layers * mlp + dense_layers * dense_mlp,
        "experts": moe_layers * experts,
        "other": layers * (attention_other + norms) + moe_layers * mlp_other + hidden,
    }


def _attention_parameters(config, model_type):
    """(projection weights, biases/norms/sinks) of one layer's attention."""
    if config.get("kv_lora_rank"):
        return _latent_attention_parameters(config)
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    hd = head_dim(config)
    q_out = heads * hd
    kv_out = kv_heads(config) * hd
    weights = hidden * q_out + 2 * hidden * kv_out + q_out * hidden
    other = 0
    if config.get("attention_bias"):
        other += q_out + 2 * kv_out + hidden
    elif model_type in _IMPLICIT_QKV_BIAS_TYPES:
        other += q_out + 2 * kv_out
    if model_type in _QK_NORM_TYPES:
        other += 2 * hd
    if model_type in _ATTENTION_SINK_TYPES:
        other += heads
    return weights, other


def _latent_attention_parameters(config):
    """Multi-head latent attention (DeepSeek-V2/V3): keys and values pass through a kv_lora_rank
    latent, queries through a q_lora_rank one when the config sets it."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    rank = config["kv_lora_rank"]
    nope, rope, value = (_int_field(config, name) for name in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"))
    query = heads * (nope + rope)
    q_rank = config.get("q_lora_rank")
    if q_rank:
        q_weights, q_norm = hidden * q_rank + q_rank * query, q_rank
    else:
        q_weights, q_norm = hidden * query, 0
    weights = q_weights + hidden * (rank + rope) + rank * heads * (nope + value) + heads * value * hidden
    return weights, q_norm + rank


def _mlp_parameters(config, model_type):
    """(dense or shared-expert weights, expert weights, biases/routers) of one layer's MLP."""
    hidden = config["hidden_size"]
    experts = _experts(config)
    if not experts:
        intermediate = config["intermediate_size"]
        return 3 * hidden * intermediate, 0, (2 * intermediate + hidden) if config.get("mlp_bias") else 0
    expert_size = config.get("moe_intermediate_size") or _int_field(config, "intermediate_size")
    router = hidden * experts
    if model_type in _EXPERT_BIAS_TYPES:
        # gpt-oss: biased experts (gate_up 2 x intermediate, down hidden) and a biased router.
        router += experts * (2 * expert_size + hidden) + experts
    if config.get("n_shared_experts"):
        # DeepSeek-style shared experts; V3 adds a routing bias per expert (e_score_correction_bias).
        bias = experts if config.get("topk_method") == "noaux_tc" else 0
        return config["n_shared_experts"] * 3 * hidden * expert_size, experts * 3 * hidden * expert_size, router + bias
    shared = config.get("shared_expert_intermediate_size")
    if shared:
        # Qwen-MoE style shared expert with its sigmoid gate.
        return 3 * hidden * shared, experts * 3 * hidden * expert_size, router + hidden
    return 0, experts * 3 * hidden * expert_size, router


def parameter_count(config):
    """All parameters of the model (the sum of parameter_groups)."""
    return sum(parameter_groups(config).values())


def max_position_embeddings(config):
    """The context length the model was trained for, or None when the config does not say."""
    config = text_config(config)
    value = config.get("max_position_embeddings")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
