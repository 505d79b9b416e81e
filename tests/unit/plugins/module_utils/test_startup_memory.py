# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog as catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils import _startup_memory as startup

GIB = 1024 ** 3
LLAMA31 = catalog.MODELS["meta-llama/Llama-3.1-8B-Instruct"]
GPT_OSS_20B = catalog.MODELS["openai/gpt-oss-20b"]
QWEN3_MOE = catalog.MODELS["Qwen/Qwen3-30B-A3B"]
QWEN25 = catalog.MODELS["Qwen/Qwen2.5-7B-Instruct"]


@pytest.mark.parametrize("memory_mib, name, batch", [
    (143771, "NVIDIA H200", (1024, 8192)),
    (81559, "NVIDIA H100 80GB HBM3", (1024, 8192)),
    (81920, "NVIDIA A100-SXM4-80GB", (256, 2048)),
    (46068, "NVIDIA A40", (256, 2048)),
    (32607, "NVIDIA GeForce RTX 5090", (256, 2048)),
])
def test_batch_defaults_follow_vllm_by_memory_and_model(memory_mib, name, batch):
    chosen = startup.Batch.default_for(memory_mib, name)
    assert (chosen.max_num_seqs, chosen.max_num_batched_tokens) == batch
    assert chosen.args == ["--max-num-seqs", str(batch[0]), "--max-num-batched-tokens", str(batch[1])]


@pytest.mark.parametrize("config, v2", [(LLAMA31, True), (catalog.MODELS["Qwen/Qwen3-8B"], True), (QWEN25, False),
                                        (QWEN3_MOE, False), (GPT_OSS_20B, False)])
def test_the_runner_follows_vllms_list_of_v2_architectures(config, v2):
    assert startup.Activations.from_config(config).v2_runner is v2


def test_dense_activations_are_the_gate_and_up_projections():
    dense = startup.Activations.from_config(LLAMA31)
    assert (dense.vocab, dense.mlp_width) == (128256, 2 * 14336)


def test_moe_activations_are_the_fused_kernel_caches_of_each_routed_expert():
    assert startup.Activations.from_config(QWEN3_MOE).mlp_width == 8 * (3 * 768 + 2048)
    assert startup.Activations.from_config(GPT_OSS_20B).mlp_width == 4 * (3 * 2880 + 2880)


def test_activation_peak_is_the_sampler_logits_and_the_forward_pass_split_over_ranks():
    dense = startup.Activations.from_config(LLAMA31)
    batch = startup.Batch(1024, 8192)
    sampler = 1024 * 128256 * 4
    forward = 8192 * 2 * 14336 * 2
    assert dense.peak_gib(batch, 1) == pytest.approx((sampler + forward) / GIB + startup.ACTIVATION_BASE_GIB)
    assert dense.peak_gib(batch, 2) == pytest.approx((sampler + forward / 2) / GIB + startup.ACTIVATION_BASE_GIB)
    v1 = startup.Activations(128256, 2 * 14336, v2_runner=False)
    assert v1.peak_gib(batch, 1) - dense.peak_gib(batch, 1) == pytest.approx(
        (startup.SAMPLER_LOGITS_COPIES_V1 - startup.SAMPLER_LOGITS_COPIES_V2) * sampler / GIB)


def test_v2_graphs_come_on_top_of_the_budget_and_v1_estimates_them_inside():
    batch = startup.Batch(1024, 8192)
    v2 = startup.Overhead.of(startup.Activations.from_config(LLAMA31), batch, 1, enforce_eager=False)
    v1 = startup.Overhead.of(startup.Activations.from_config(QWEN3_MOE), batch, 1, enforce_eager=False)
    assert (v2.graphs_in_budget_gib, v2.graphs_beyond_budget_gib) == (0.0, startup.GRAPHS_V2_GIB)
    assert (v1.graphs_in_budget_gib, v1.graphs_beyond_budget_gib) == (startup.GRAPHS_V1_ESTIMATE_GIB, 0.0)
    assert v2.peak_gib(100.0) == pytest.approx(100.0 + startup.GRAPHS_V2_GIB + startup.OUTSIDE_BUDGET_GIB)
    assert v1.peak_gib(100.0) == pytest.approx(100.0 + startup.OUTSIDE_BUDGET_GIB)
    assert v1.in_budget_gib == pytest.approx(v1.activations_gib + startup.NON_TORCH_GIB + startup.GRAPHS_V1_ESTIMATE_GIB)
    assert v2.in_budget_gib == pytest.approx(v2.activations_gib + startup.NON_TORCH_GIB)


@pytest.mark.parametrize("config", [LLAMA31, QWEN3_MOE])
def test_eager_engines_capture_no_graphs(config):
    eager = startup.Overhead.of(startup.Activations.from_config(config), startup.Batch(256, 2048), 1, enforce_eager=True)
    assert eager.graphs_in_budget_gib == eager.graphs_beyond_budget_gib == 0.0
    assert eager.peak_gib(20.0) == pytest.approx(20.0 + startup.OUTSIDE_BUDGET_GIB)


def test_a_measured_constant_stands_for_the_whole_overhead():
    k80 = startup.Overhead.measured_constant(0.6)
    assert (k80.in_budget_gib, k80.peak_gib(9.0)) == (0.6, pytest.approx(9.0 + startup.OUTSIDE_BUDGET_GIB))
