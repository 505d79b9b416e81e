# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What a checkpoint's ``quantization_config`` means for the bytes of its weights and for the GPUs
that can run it.

Quantized checkpoints keep token embeddings, the LM head, norms, biases and routers in the model's
dtype and store only linear weights in fewer bits, with scales beside them: the bits below count
the scales. MXFP4 (gpt-oss) quantizes the MoE experts alone (its config's
``modules_to_not_convert`` names the attention, the router, the embeddings and the LM head).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.gpufleet.vllm.plugins.module_utils._model_catalog import ModelConfigError, UnplannedFamilyError

LINEAR_GROUPS = ("attention", "mlp", "experts")


# Minimum compute capability of vLLM's kernels per method (vllm-facts section 6).
MIN_COMPUTE_CAPABILITY = {"mxfp4": "8.0", "fp8": "7.5", "awq": "7.5", "gptq": "6.0"}

# A 4-bit value per weight and one 8-bit power-of-two scale per 32 weights (OCP MX format).
MXFP4_BITS = 4 + 8 / 32.0
# What MXFP4 experts take on the GPU: vLLM 0.24.0's Triton MoE kernels on Hopper held gpt-oss-20b's
# 12.82 GiB checkpoint in 13.58 GiB, 8.1 % more for its experts (tests/hardware/fixtures). No other
# MXFP4 kernel has been measured; planning with the larger size never overcommits.
MXFP4_BITS_ON_GPU = MXFP4_BITS * 1.081
# One float16 scale and one zero point of the weight's width per group (AutoAWQ, GPTQ packing).
_GROUP_SCALE_BITS = 16


@dataclass(frozen=True)
class Quantization:
    """How a checkpoint's weights sit on the GPU: ``bits`` per weight (scales included) for ``groups``."""

    method: str
    bits: float
    groups: tuple

    @property
    def min_compute_capability(self):
        return MIN_COMPUTE_CAPABILITY[self.method]


# What vLLM's --quantization applies to an unquantized checkpoint while loading it, that the
# planner knows: fp8 stores the linear weights in a byte, with one scale per tensor, and leaves
# the KV cache in the model's dtype (measured on the H200, docs/validated-on.md).
_AT_LOAD = {"fp8": Quantization("fp8", 8.0, LINEAR_GROUPS)}
AT_LOAD = tuple(_AT_LOAD)


def from_config(config):
    """The checkpoint's Quantization, or None when its config has no ``quantization_config``.

    Raises ModelConfigError naming the field for a method the planner does not know.
    """
    settings = config.get("quantization_config")
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise ModelConfigError("The model config's quantization_config must be a mapping, not %r." % (settings,))
    method = str(settings.get("quant_method") or "").lower()
    if method == "mxfp4":
        return Quantization("mxfp4", MXFP4_BITS_ON_GPU, ("experts",))
    if method == "fp8":
        return Quantization("fp8", 8.0, LINEAR_GROUPS)
    if method in ("awq", "gptq"):
        return Quantization(method, _grouped_bits(settings, method), LINEAR_GROUPS)
    raise UnplannedFamilyError(
        "The model config's quantization_config.quant_method %r is not one the planner knows (%s)."
        % (settings.get("quant_method"), ", ".join(sorted(MIN_COMPUTE_CAPABILITY)))
    )


def at_load(method):
    """The Quantization that ``--quantization method`` gives an unquantized checkpoint."""
    return _AT_LOAD[method]


def _grouped_bits(settings, method):
    bits = settings.get("bits", settings.get("w_bit"))
    if bits not in (2, 3, 4, 8):
        raise ModelConfigError("The model config's quantization_config.bits must be 2, 3, 4 or 8 for %s, not %r." % (method, bits))
    group_size = settings.get("group_size", settings.get("q_group_size", 128))
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size == 0 or group_size < -1:
        raise ModelConfigError("The model config's quantization_config.group_size must be a positive integer or -1, not %r." % (group_size,))
    if group_size == -1:
        # One scale per output channel: next to nothing per weight.
        return float(bits)
    return bits + (_GROUP_SCALE_BITS + bits) / float(group_size)


def weight_bytes(groups, dtype_bytes, quantization):
    """Bytes of the weights: the quantized groups at their bits, the rest at the dtype's bytes."""
    quantized = quantization.groups if quantization else ()
    total = 0.0
    for group, count in groups.items():
        total += count * (quantization.bits / 8.0 if group in quantized else dtype_bytes)
    return int(total)
