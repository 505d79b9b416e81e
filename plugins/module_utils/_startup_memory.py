# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What vLLM takes of a GPU besides the weights and the KV cache.

vLLM's V1 engine sizes the KV cache at start: gpu_memory_utilization times the GPU's memory,
less the weights, less the peak of one profiling forward pass over max_num_batched_tokens tokens
and one sampler run over max_num_seqs sequences (activations), less what torch does not allocate
itself (CUDA libraries' workspaces: non-torch), less on its V1 model runner an estimate of the
CUDA graphs. It captures the graphs after the cache exists, so on the V2 model runner, which makes
no estimate (its profile_cudagraph_memory returns 0), they come on top of the budget.

The constants were fitted to vLLM 0.24.0 on the H200 (tests/hardware/fixtures, replayed by
tests/unit/plugins/module_utils/test_recorded_vllm_memory.py; docs/validated-on.md has the table).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3

# vLLM's batch defaults for its OpenAI server (EngineArgs.get_batch_defaults): larger on GPUs with
# 70 GiB or more, except A100s.
_LARGE_GPU_MIB = 70 * 1024
LARGE_GPU_BATCH = (1024, 8192)
SMALL_GPU_BATCH = (256, 2048)

# Non-torch memory the profile adds (cuBLAS and attention workspaces): 0.22-0.23 GiB in every case.
NON_TORCH_GIB = 0.23
# Float32 logits matrices of max_num_seqs x vocabulary the sampler's profiling run holds at its
# peak, per model runner, and what the profile adds to those and the MLP activations.
SAMPLER_LOGITS_COPIES_V1 = 3.1
SAMPLER_LOGITS_COPIES_V2 = 1.0
ACTIVATION_BASE_GIB = 0.15
# CUDA graphs: the V2 runner captured 0.88-0.98 GiB beyond the budget for every shape measured;
# the V1 runner estimated 0.35-0.58 GiB and took that out of the KV cache.
GRAPHS_V2_GIB = 0.94
GRAPHS_V1_ESTIMATE_GIB = 0.47
# What nvidia-smi shows at ready beyond the budget and the graphs: the CUDA context and what the
# allocator keeps (-0.25 to 1.34 GiB measured, docs/validated-on.md).
OUTSIDE_BUDGET_GIB = 0.55
# Architectures vLLM 0.24.0 runs on its V2 model runner (DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES in
# vllm/config/vllm.py), by config model_type.
V2_RUNNER_MODEL_TYPES = frozenset(("llama", "mistral", "qwen3", "deepseek_v2", "qwen2_moe", "granitemoe"))
# Activation bytes per value: the forward pass runs in the model's 16-bit dtype.
_ACTIVATION_BYTES = 2
_LOGIT_BYTES = 4


@dataclass(frozen=True)
class Batch:
    """How much one engine step holds: sequences and scheduled tokens."""

    max_num_seqs: int
    max_num_batched_tokens: int

    @classmethod
    def default_for(cls, memory_mib, gpu_name):
        large = memory_mib >= _LARGE_GPU_MIB and "a100" not in gpu_name.lower()
        return cls(*(LARGE_GPU_BATCH if large else SMALL_GPU_BATCH))

    @property
    def args(self):
        return ["--max-num-seqs", str(self.max_num_seqs), "--max-num-batched-tokens", str(self.max_num_batched_tokens)]


@dataclass(frozen=True)
class Activations:
    """The dimensions the profiling pass's peak follows, per token and per sequence.

    ``mlp_width`` counts the values one token writes in an MLP (gate and up projections) or in the
    fused MoE kernel's caches (per routed expert: gate and up, the activation, the output).
    """

    vocab: int
    mlp_width: int
    v2_runner: bool

    @classmethod
    def from_config(cls, config):
        v2_runner = str(config.get("model_type") or "").lower() in V2_RUNNER_MODEL_TYPES
        hidden = config["hidden_size"]
        routed = config.get("num_experts_per_tok")
        if routed:
            expert = config.get("moe_intermediate_size") or config["intermediate_size"]
            width = routed * (3 * expert + hidden)
        else:
            width = 2 * config["intermediate_size"]
        return cls(config["vocab_size"], width, v2_runner)

    def peak_gib(self, batch, tensor_parallel_size):
        copies = SAMPLER_LOGITS_COPIES_V2 if self.v2_runner else SAMPLER_LOGITS_COPIES_V1
        sampler = copies * batch.max_num_seqs * self.vocab * _LOGIT_BYTES
        forward = batch.max_num_batched_tokens * self.mlp_width * _ACTIVATION_BYTES / tensor_parallel_size
        return (sampler + forward) / GIB + ACTIVATION_BASE_GIB


@dataclass(frozen=True)
class Overhead:
    """GiB per GPU inside the budget besides weights and KV cache, and beyond it at ready."""

    activations_gib: float
    non_torch_gib: float
    graphs_in_budget_gib: float
    graphs_beyond_budget_gib: float

    @classmethod
    def measured_constant(cls, gib):
        """A variant whose engine was measured as a whole (the K80 fork runs eager, without graphs)."""
        return cls(gib, 0.0, 0.0, 0.0)

    @classmethod
    def of(cls, activations, batch, tensor_parallel_size, enforce_eager):
        if enforce_eager:
            in_budget, beyond = 0.0, 0.0
        elif activations.v2_runner:
            in_budget, beyond = 0.0, GRAPHS_V2_GIB
        else:
            in_budget, beyond = GRAPHS_V1_ESTIMATE_GIB, 0.0
        return cls(activations.peak_gib(batch, tensor_parallel_size), NON_TORCH_GIB, in_budget, beyond)

    @property
    def in_budget_gib(self):
        return self.activations_gib + self.non_torch_gib + self.graphs_in_budget_gib

    def peak_gib(self, budget_gib):
        """What nvidia-smi shows in use on the GPU once the server is ready."""
        return budget_gib + self.graphs_beyond_budget_gib + OUTSIDE_BUDGET_GIB
