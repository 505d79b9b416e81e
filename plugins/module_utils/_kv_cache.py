# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""How vLLM's V1 engine lays out and sizes the KV cache of a model described by its config.json.

Every attention layer gets a cache spec: full attention (every token of the sequence), a sliding
window (the last ``window`` tokens) or multi-head latent attention (one compressed latent per
token, the same on every tensor parallel rank). vLLM 0.24.0 (vllm/v1/kv_cache_interface.py,
vllm/v1/core/kv_cache_utils.py) then:

* cuts the layers of each spec into groups of one size: the smallest spec's layer count, or the
  largest one's when that is less than 1.5 times the smallest;
* gives every layer of a group its own tensor, so a block costs ``page x group size`` and all
  groups draw their blocks from one pool;
* needs ``ceil(max_model_len / 16)`` blocks per sequence in a full-attention group and
  ``ceil(min(window - 1 + max_num_batched_tokens, max_model_len) / 16) + 1`` in a sliding one;
* reports "GPU KV cache size" as the sequences the pool holds times ``max_model_len``.

The K80 fork runs vLLM's V0 engine, which has none of this: there every layer keeps every token.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from ansible_collections.gpufleet.vllm.plugins.module_utils._model_catalog import (
    ModelConfigError,
    UnplannedFamilyError,
    head_dim,
    kv_heads,
    text_config,
)

# Tokens per KV cache block (vLLM's --block-size default).
BLOCK_SIZE = 16
# vLLM keeps the group size of the largest spec when it is less than this much larger than the
# smallest one, padding the smaller specs' groups instead of splitting every spec finely.
_GROUP_SIZE_SLACK = 1.5

_FULL = "full_attention"
_SLIDING = "sliding_attention"
# Gemma 2 slides on every even layer; Gemma 3 on all but every sliding_window_pattern-th
# (transformers Gemma2DecoderLayer and Gemma3TextConfig, default pattern 6).
_ALTERNATING_TYPES = frozenset(("gemma2",))
_PATTERNED_TYPES = frozenset(("gemma3", "gemma3_text"))
_GEMMA3_PATTERN = 6
# Config keys of attention whose cache none of the three specs describes.
_UNPLANNED_ATTENTION_KEYS = ("attention_chunk_size", "linear_attention_config", "index_topk")


def _cdiv(numerator, denominator):
    return -(-numerator // denominator)


@dataclass(frozen=True)
class KvLayout:
    """The attention layers of a model as vLLM caches them.

    ``windows`` holds one entry per layer: None for full attention, else its window in tokens.
    ``latent_width`` is set for multi-head latent attention (kv_lora_rank + qk_rope_head_dim).
    """

    windows: Tuple[Optional[int], ...]
    kv_heads: int
    head_dim: int
    latent_width: Optional[int] = None

    @classmethod
    def from_config(cls, config):
        """Raises UnplannedFamilyError naming the field for attention the planner does not model."""
        config = text_config(config)
        for key in _UNPLANNED_ATTENTION_KEYS:
            if config.get(key):
                raise UnplannedFamilyError("The model config's %s declares attention whose KV cache the planner does not model." % key)
        latent = _latent_width(config)
        if latent:
            return cls((None,) * config["num_hidden_layers"], 1, latent, latent)
        return cls(_layer_windows(config), kv_heads(config), head_dim(config))

    @property
    def interleaved(self):
        """Whether sliding-window and full-attention layers alternate."""
        return len(set(window is None for window in self.windows)) > 1

    @property
    def smallest_window(self):
        windows = [window for window in self.windows if window is not None]
        return min(windows) if windows else None

    def as_full_attention(self):
        """The layout an engine without sliding-window caches (vLLM V0) allocates."""
        return replace(self, windows=(None,) * len(self.windows))

    def token_bytes(self, dtype_bytes, tensor_parallel_size):
        """Bytes one token takes in one layer on one GPU."""
        if self.latent_width:
            return self.latent_width * dtype_bytes
        # Ranks beyond the KV head count each hold a replica of one head (QKVParallelLinear).
        return 2 * max(1, self.kv_heads // tensor_parallel_size) * self.head_dim * dtype_bytes

    def groups(self):
        """(the window of every KV cache group, the layers per group)."""
        counts = Counter(self.windows)
        smallest, largest = min(counts.values()), max(counts.values())
        size = largest if largest < smallest * _GROUP_SIZE_SLACK else smallest
        windows = []
        for window, count in sorted(counts.items(), key=lambda item: item[0] or 0):
            windows += [window] * _cdiv(count, size)
        return tuple(windows), size

    def block_bytes(self, dtype_bytes, tensor_parallel_size):
        """Bytes of one block of the shared pool: a page in every layer of a group."""
        return BLOCK_SIZE * self.token_bytes(dtype_bytes, tensor_parallel_size) * self.groups()[1]

    def blocks_per_sequence(self, max_model_len, batched_tokens):
        """Blocks one sequence of max_model_len tokens needs, summed over the groups."""
        return sum(_group_blocks(window, max_model_len, batched_tokens) for window in self.groups()[0])

    def tokens(self, blocks, max_model_len, batched_tokens):
        """vLLM's "GPU KV cache size": the sequences ``blocks`` hold times max_model_len."""
        return blocks * max_model_len // self.blocks_per_sequence(max_model_len, batched_tokens)


def _group_blocks(window, max_model_len, batched_tokens):
    if window is None:
        return _cdiv(max_model_len, BLOCK_SIZE)
    # The window's last window-1 tokens plus one scheduled chunk, and a block for a window start
    # that falls inside a block (SlidingWindowSpec.max_memory_usage_bytes).
    return _cdiv(min(window - 1 + batched_tokens, max_model_len), BLOCK_SIZE) + 1


def _latent_width(config):
    rank = config.get("kv_lora_rank")
    if not rank:
        return None
    rope = config.get("qk_rope_head_dim")
    for name, value in (("kv_lora_rank", rank), ("qk_rope_head_dim", rope)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelConfigError("The model config's %s must be a positive integer for multi-head latent attention, not %r." % (name, value))
    return rank + rope


def _layer_windows(config):
    layers = config["num_hidden_layers"]
    kinds = config.get("layer_types")
    if kinds:
        return _windows_of_layer_types(config, kinds, layers)
    window = config.get("sliding_window")
    if not window or config.get("use_sliding_window") is False:
        return (None,) * layers
    window = _window(config)
    model_type = str(config.get("model_type") or "").lower()
    if model_type in _ALTERNATING_TYPES:
        return tuple(window if index % 2 == 0 else None for index in range(layers))
    if model_type in _PATTERNED_TYPES:
        pattern = config.get("sliding_window_pattern") or _GEMMA3_PATTERN
        return tuple(None if (index + 1) % pattern == 0 else window for index in range(layers))
    return (window,) * layers


def _windows_of_layer_types(config, kinds, layers):
    if not isinstance(kinds, list) or len(kinds) != layers:
        raise ModelConfigError("The model config's layer_types must list one type per layer (%d), not %r." % (layers, kinds))
    others = sorted(set(map(str, kinds)) - {_FULL, _SLIDING})
    if others:
        raise UnplannedFamilyError(
            "The model config's layer_types holds %s, layers whose cache the planner does not model." % ", ".join(others)
        )
    window = _window(config) if _SLIDING in kinds else None
    return tuple(window if kind == _SLIDING else None for kind in kinds)


def _window(config):
    window = config.get("sliding_window")
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise ModelConfigError("The model config's sliding_window must be a positive integer for its sliding-window layers, not %r." % (window,))
    return window
