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
}

for _model_id, _entry in MODELS.items():
    _entry["source"] = _hub(_model_id)

# Qwen2 attention always carries q/k/v biases (Qwen2.5 model cards: "attention QKV bias");
# its config.json has no key saying so.
_IMPLICIT_QKV_BIAS_TYPES = frozenset(("qwen2", "qwen2_moe"))
# Qwen3 adds an RMSNorm over each query and key head (transformers Qwen3Attention q_norm/k_norm).
_QK_NORM_TYPES = frozenset(("qwen3", "qwen3_moe"))

_REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")


class ModelConfigError(ValueError):
    """A config.json lacks what the arithmetic needs."""


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
    for name in ("num_local_experts", "num_experts"):
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def parameter_count(config):
    """Parameters of a llama-style decoder described by a config.json (dense or MoE).

    Counts token embeddings, per layer q/k/v/o projections with grouped-query attention, a gated
    MLP (gate, up, down = 3 x hidden x intermediate) or, with ``num_local_experts``/``num_experts``,
    that many expert MLPs plus the router and an optional shared expert, two RMSNorms per layer,
    the final norm, and the LM head unless ``tie_word_embeddings`` is true.
    """
    config = validate(config)
    hidden = config["hidden_size"]
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv = kv_heads(config)
    hd = head_dim(config)
    vocab = config["vocab_size"]
    model_type = str(config.get("model_type") or "").lower()

    q_out = heads * hd
    kv_out = kv * hd
    attention = hidden * q_out + 2 * hidden * kv_out + q_out * hidden
    if config.get("attention_bias"):
        attention += q_out + 2 * kv_out + hidden
    elif model_type in _IMPLICIT_QKV_BIAS_TYPES:
        attention += q_out + 2 * kv_out
    if model_type in _QK_NORM_TYPES:
        attention += 2 * hd

    experts = _experts(config)
    if experts:
        expert_size = config.get("moe_intermediate_size") or _int_field(config, "intermediate_size")
        mlp = experts * 3 * hidden * expert_size + hidden * experts
        shared = config.get("shared_expert_intermediate_size")
        if shared:
            # Qwen-MoE style shared expert with its sigmoid gate.
            mlp += 3 * hidden * shared + hidden
    else:
        intermediate = config["intermediate_size"]
        mlp = 3 * hidden * intermediate
        if config.get("mlp_bias"):
            mlp += 2 * intermediate + hidden

    norms = 2 * hidden
    total = vocab * hidden + layers * (attention + mlp + norms) + hidden
    if not config.get("tie_word_embeddings", False):
        total += vocab * hidden
    return total


def max_position_embeddings(config):
    """The context length the model was trained for, or None when the config does not say."""
    config = text_config(config)
    value = config.get("max_position_embeddings")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
