# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start a real vLLM on random-weight models of real shapes and record what it reports.

Runs ON a GPU host (one GPU, no network needed). For each case it:
  1. writes config.json of the shape (the real model's config fields; fewer layers where the
     real checkpoint would not fit a small disk or a short run; the record says so),
  2. writes random weights as safetensors under the real checkpoint's tensor names (bf16;
     gpt-oss experts as MXFP4 ``*_blocks``/``*_scales`` uint8, the layout vLLM's gpt_oss
     loader reads; deepseek_v2 with MLA projections, a dense first layer and routed plus
     shared experts) and a word-level tokenizer of the model's vocabulary size,
  3. starts ``python -m vllm.entrypoints.openai.api_server`` with the case's arguments
     (the case's gpu_memory_utilization, 0.9 unless it names another, TP 1), waits for
     /health, reads nvidia-smi, sends one completion, stops the server,
  4. scrapes vLLM's startup lines ("Model loading took", "Available KV cache memory",
     "GPU KV cache size", "Maximum concurrency", graph capture, torch.compile, the
     memory profile) and writes OUT/<case>.json and OUT/<case>.log.gz; at the end
     OUT/table.md puts the cases side by side.

Preparing a host without network (what was done for tests/hardware/fixtures/vllm-0.24.0-h200.json):
  * vLLM must match the host's torch: vLLM 0.24.0 pins torch==2.11.0 (CUDA 13).
  * Unpack the vLLM wheel, repack it as tar.xz, carry it over (split it if transfers are
    limited), untar it into /tmp/site. Dropping _vllm_fa2_C.abi3.so, vllm-rs and
    third_party/fmha_sm100 is fine on Hopper (FA3 is used; the others are FA2 fallback,
    the Rust frontend and Blackwell kernels).
  * Install the Python dependencies the host lacks into the same directory, e.g.
      pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 ... \\
        --uploaded-prior-to 2026-07-10T00:00:00Z -d wheels <names>
      pip install --no-index --no-deps --target /tmp/site wheels/*.whl
    Names needed on a host that has torch, transformers, tokenizers, safetensors, numpy,
    aiohttp, httpx, uvloop: everything in vLLM's Requires-Dist that is missing, except the GPU
    kernel extras (flashinfer*, tilelang, nvidia-cutlass-dsl, quack-kernels, tokenspeed-mla,
    humming-kernels, fastsafetensors) and torch/torchvision/torchaudio; plus their own needs
    (pydantic-core, annotated-types, typing-inspection, starlette, uvicorn, openai-harmony,
    apache-tvm-ffi for xgrammar, ...).
  * Run:  PYTHONPATH=/tmp/site python3 tests/hardware/vllm_memory_check.py --out OUT
    (``--cases a,b`` picks cases, ``--budget S`` stops starting cases that would not end
    within S seconds, ``--list`` prints the cases). VLLM_USE_FLASHINFER_SAMPLER=0 is set
    for the server because flashinfer is not installed. The server runs with
    VLLM_LOGGING_LEVEL=DEBUG, which adds the memory profile lines.
  * Checkpoints can be made ahead (``--generate CASE --work DIR``, torch, safetensors and
    tokenizers only, no vLLM), e.g. while vLLM is still being copied; a case whose
    directory already holds model.safetensors.index.json is not generated again. The first
    five take about 46 GB of disk (the four added later about 53 GB: the 8B and gpt-oss
    shapes again, Mistral-7B 14.5 GB, DeepSeek-V2-Lite's 8 layers 9.2 GB); a case's
    checkpoint is deleted after its last case.
  * Fixture: ``--merge OUT1 OUT2 ... --fixture FILE`` scrapes the saved logs again and puts
    every case of those runs into one JSON file (tests/hardware/fixtures/).
The script itself needs only the standard library; generation runs in a child process
(torch, safetensors, tokenizers) so that this process never holds GPU memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

UTIL = 0.9  # gpu_memory_utilization of a case that names none
PORT = 8011

LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
    "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": False,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 128256,
}

GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
    "attention_dropout": 0.0, "eos_token_id": 200002, "pad_token_id": 199999,
    "experts_per_token": 4, "num_experts_per_tok": 4, "num_local_experts": 32,
    "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880, "intermediate_size": 2880,
    "initial_context_length": 4096, "initializer_range": 0.02,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072, "num_attention_heads": 64, "num_hidden_layers": 24,
    "num_key_value_heads": 8, "output_router_logits": False, "rms_norm_eps": 1e-05,
    "quantization_config": {
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                   "model.embed_tokens", "lm_head"],
        "quant_method": "mxfp4"},
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                     "original_max_position_embeddings": 4096, "rope_type": "yarn",
                     "truncate": False},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128,
    "swiglu_limit": 7.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_cache": True, "vocab_size": 201088,
}

QWEN3_30B_A3B = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "decoder_sparse_step": 1, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
    "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
    "moe_intermediate_size": 768, "norm_topk_prob": True, "num_attention_heads": 32,
    "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
    "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
    "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}

# google/gemma-2-2b: every other layer slides over 4096 tokens (vLLM's hybrid KV cache
# manager keeps one group per kind). The real checkpoint is float32; the shape is served bf16.
GEMMA2_2B = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "attention_bias": False,
    "attention_dropout": 0.0, "attn_logit_softcapping": 50.0, "bos_token_id": 2,
    "cache_implementation": "hybrid", "eos_token_id": 1, "final_logit_softcapping": 30.0,
    "head_dim": 256, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 2304, "initializer_range": 0.02, "intermediate_size": 9216,
    "layer_types": ["sliding_attention", "full_attention"] * 13,
    "max_position_embeddings": 8192, "num_attention_heads": 8, "num_hidden_layers": 26,
    "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 256000,
}

# mistralai/Mistral-7B-v0.1: every layer slides over 4096 tokens (no layer_types), so vLLM
# keeps one sliding-window KV cache group and sizes a request by the window, not the context.
MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 32000,
}

# deepseek-ai/DeepSeek-V2-Lite: multi-head latent attention (no query LoRA; the KV cache holds
# kv_lora_rank + qk_rope_head_dim = 576 values a token a layer, one "head"), layer 0 dense,
# the others 64 routed experts (6 a token) and 2 shared ones.
DEEPSEEK_V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
    "attention_bias": False, "attention_dropout": 0.0, "aux_loss_alpha": 0.001,
    "bos_token_id": 100000, "eos_token_id": 100001, "ep_size": 1, "first_k_dense_replace": 1,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 10944, "kv_lora_rank": 512, "max_position_embeddings": 163840,
    "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
    "n_shared_experts": 2, "norm_topk_prob": False, "num_attention_heads": 16,
    "num_experts_per_tok": 6, "num_hidden_layers": 27, "num_key_value_heads": 16,
    "pretraining_tp": 1, "q_lora_rank": None, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                     "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                     "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax",
    "seq_aux": True, "tie_word_embeddings": False, "topk_group": 1, "topk_method": "greedy",
    "torch_dtype": "bfloat16", "use_cache": True, "v_head_dim": 128, "vocab_size": 102400,
}

# An RTX 5090's budget on the H200: vLLM would size itself to 0.9 x 32607 MiB there; the
# H200's CUDA total is 139.8 GiB (143155 MiB), so 0.9 * 32607 / 143155 = 0.205.
RTX5090_BUDGET_UTIL = 0.205

# model: directory name under --work; cases sharing one reuse the generated checkpoint.
# util: --gpu-memory-utilization (UTIL when absent). The later cases pass --max-num-seqs and
# --max-num-batched-tokens as the planner does.
CASES = [
    {"name": "llama-3.1-8b-bf16", "shape_of": "meta-llama/Llama-3.1-8B-Instruct",
     "model": "llama-3.1-8b", "config": LLAMA_8B, "layers": 32, "max_model_len": 8192,
     "args": [], "note": "full depth"},
    {"name": "llama-3.1-8b-fp8", "shape_of": "meta-llama/Llama-3.1-8B-Instruct",
     "model": "llama-3.1-8b", "config": LLAMA_8B, "layers": 32, "max_model_len": 8192,
     "args": ["--quantization", "fp8"],
     "note": "the bf16 checkpoint quantized to fp8 while loading; the KV cache stays bf16"},
    {"name": "gemma-2-2b-sliding", "shape_of": "google/gemma-2-2b", "model": "gemma-2-2b",
     "config": GEMMA2_2B, "layers": 26, "max_model_len": 8192, "args": [],
     "note": "full depth, served bf16 (the real checkpoint is float32); layers alternate "
             "sliding window 4096 and full attention"},
    {"name": "gpt-oss-20b-mxfp4", "shape_of": "openai/gpt-oss-20b", "model": "gpt-oss-20b",
     "config": GPT_OSS_20B, "layers": 24, "max_model_len": 8192, "args": [],
     "note": "full depth; experts MXFP4 (random uint8 blocks, e8m0 scales 118-123) in the "
             "checkpoint layout, attention, router and embeddings bf16; sliding window 128 "
             "alternating with full attention; attention sinks"},
    {"name": "qwen3-30b-a3b-8of48", "shape_of": "Qwen/Qwen3-30B-A3B", "model": "qwen3-30b-a3b-8l",
     "config": QWEN3_30B_A3B, "layers": 8, "max_model_len": 8192, "args": [],
     "note": "8 of 48 layers (the full bf16 checkpoint is about 57 GiB); other fields real"},
    {"name": "gpt-oss-20b-131k-rtx5090-budget", "shape_of": "openai/gpt-oss-20b",
     "model": "gpt-oss-20b", "config": GPT_OSS_20B, "layers": 24, "max_model_len": 131072,
     "util": RTX5090_BUDGET_UTIL,
     "args": ["--max-num-seqs", "256", "--max-num-batched-tokens", "2048"],
     "note": "full depth; the byte budget vLLM has on an RTX 5090 (0.9 x 32607 MiB, here "
             "0.205 x 139.8 GiB) at the full 131072 context with an RTX 5090's server defaults "
             "(256 sequences, 2048 batched tokens): does gpt-oss-20b fit there with the hybrid "
             "KV cache manager (sliding window 128 on half the layers)?"},
    {"name": "llama-3.1-8b-eager", "shape_of": "meta-llama/Llama-3.1-8B-Instruct",
     "model": "llama-3.1-8b", "config": LLAMA_8B, "layers": 32, "max_model_len": 8192,
     "args": ["--enforce-eager", "--max-num-seqs", "1024", "--max-num-batched-tokens", "8192"],
     "note": "full depth; --enforce-eager: the peak without CUDA graphs (and without "
             "torch.compile)"},
    {"name": "mistral-7b-v0.1-sliding", "shape_of": "mistralai/Mistral-7B-v0.1",
     "model": "mistral-7b-v0.1", "config": MISTRAL_7B, "layers": 32, "max_model_len": 32768,
     "args": ["--max-num-seqs", "1024", "--max-num-batched-tokens", "8192"],
     "note": "full depth; sliding window 4096 on every layer (no full-attention layer): one "
             "sliding-window KV cache group, a request holds at most window + batched tokens"},
    {"name": "deepseek-v2-lite-mla-8of27", "shape_of": "deepseek-ai/DeepSeek-V2-Lite",
     "model": "deepseek-v2-lite-8l", "config": DEEPSEEK_V2_LITE, "layers": 8,
     "max_model_len": 8192,
     "args": ["--max-num-seqs", "1024", "--max-num-batched-tokens", "8192"],
     "note": "8 of 27 layers (layer 0 dense, 7 MoE; the full bf16 checkpoint is about 29 GiB); "
             "other fields real; MLA: one 576-wide latent KV entry a token a layer"},
]

# Lines worth keeping verbatim: the memory accounting and the timings of a start.
KEEP = ("Model loading took", "Available KV cache memory", "GPU KV cache size",
        "Maximum concurrency", "Graph capturing finished", "CUDA graph pool memory",
        "CUDA graph memory profiling", "torch.compile took", "init engine (profile",
        "Memory profiling takes", "Initial free memory", "Free memory after profiling",
        "attention backend", "MoE backend", "Using FlashAttention", "Model Runner",
        "Chunked prefill is enabled", "num_gpu_blocks is", "ScaledMMLinearKernel",
        "worker init memory snapshot", "Free memory on device",
        "Profiling CUDA graph memory", "CUDA graph memory: ",
        " ERROR ", "OutOfMemory", "not initialized from checkpoint")

NUM = r"([\d,]+(?:\.\d+)?)"
PATTERNS = {
    "weights_gib": r"Model loading took " + NUM + r" GiB",
    "weights_load_s": r"Model loading took [\d.]+ GiB(?: memory)? and " + NUM + " seconds",
    "available_kv_gib": r"Available KV cache memory: " + NUM + " GiB",
    "kv_tokens": r"GPU KV cache size: " + NUM + " tokens",
    "max_concurrency": r"Maximum concurrency for [\d,]+ tokens per request: " + NUM + "x",
    "graph_capture_s": r"Graph capturing finished in " + NUM + " secs",
    "graph_capture_gib": r"Graph capturing finished in [\d.]+ secs, took " + NUM + " GiB",
    "cudagraph_pool_actual_gib": r"CUDA graph pool memory: " + NUM + r" GiB \(actual\)",
    "cudagraph_pool_estimated_gib": r"GiB \(actual\), " + NUM + r" GiB \(estimated\)",
    "util_equivalent_without_graph_profiling": r"is equivalent to --gpu-memory-utilization=" + NUM,
    "torch_compile_s": r"torch.compile took " + NUM + " s in total",
    "init_engine_s": r"init engine \(profile, create kv cache, warmup model\) took " + NUM,
    "non_kv_cache_gib": r"Total non KV cache memory: " + NUM + "GiB",
    "torch_peak_increase_gib": r"torch peak memory increase: " + NUM + "GiB",
    "non_torch_increase_gib": r"non-torch forward increase memory: " + NUM + "GiB",
    "initial_free_gib": r"Initial free memory: " + NUM + " GiB",
    "requested_gib": r"Requested memory: [\d.]+ \(util\), " + NUM + " GiB",
    "num_gpu_blocks": r"num_gpu_blocks is: " + NUM,
    "cuda_total_gib": r"worker init memory snapshot:.*? total_memory=" + NUM + "GiB",
    "cuda_in_use_at_start_gib": r"worker init memory snapshot:.*? cuda_memory=" + NUM + "GiB",
    "kv_gib_to_fit_requested": r"\(" + NUM + r" GiB\) to fit into requested memory",
    # "Chunked prefill is enabled with max_num_batched_tokens=N" is not printed by every
    # start (the gpt-oss 131k one lacked it); the args line holds a value that was passed.
    "max_num_batched_tokens": r"max_num_batched_tokens(?:=|': )" + NUM,
}
TEXT_PATTERNS = {
    "attention_backend": r"Using (\S+) attention backend|Using AttentionBackendEnum\.(\w+)",
    "moe_backend": r"Using '([^']+)' Mxfp4 MoE backend|Using (\S+) Unquantized MoE backend",
    "fp8_linear_kernel": r"Selected (\w+) for",
    "model_runner": r"Using (V2) Model Runner",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def scrape(log_text):
    """Numbers and kept lines from a vLLM log (first match of each; one engine per log).

    Only the start is read: what the server prints once it is told to stop (an
    EngineDeadError from the API server, for one) is the stop, not the start.
    """
    lines = [ANSI.sub("", line) for line in log_text.split("[shutdown]")[0].splitlines()]
    text = "\n".join(lines)
    found = {}
    for key, pattern in PATTERNS.items():
        match = re.search(pattern, text)
        if match:
            found[key] = float(match.group(1).replace(",", ""))
    for key, pattern in TEXT_PATTERNS.items():
        match = re.search(pattern, text)
        if match:
            found[key] = next(group for group in match.groups() if group)
    for key in ("kv_tokens", "num_gpu_blocks", "max_num_batched_tokens"):
        if key in found:
            found[key] = int(found[key])
    if "weights_gib" in found:  # vLLM names only the V2 runner when it uses it
        found.setdefault("model_runner", "V1")
    kept = [line.strip() for line in lines if any(key in line for key in KEEP)]
    return found, kept[:80]


# ---------------------------------------------------------------- checkpoint layout

def dense_layer(p, cfg, bias=False):
    """Attention projections and the two norms of one decoder layer, checkpoint names."""
    h, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // heads
    specs = [(p + "self_attn.q_proj.weight", (heads * hd, h)),
             (p + "self_attn.k_proj.weight", (kv * hd, h)),
             (p + "self_attn.v_proj.weight", (kv * hd, h)),
             (p + "self_attn.o_proj.weight", (h, heads * hd)),
             (p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    if bias:
        specs += [(p + "self_attn.%s_proj.bias" % n, (size,)) for n, size in
                  (("q", heads * hd), ("k", kv * hd), ("v", kv * hd), ("o", h))]
    return specs


def gated_mlp(p, h, inter):
    return [(p + "gate_proj.weight", (inter, h)), (p + "up_proj.weight", (inter, h)),
            (p + "down_proj.weight", (h, inter))]


def gpt_oss_experts(p, cfg):
    """MXFP4 experts as vLLM 0.24.0's GptOssModel._load_weights_mxfp4 reads them.

    Blocks hold two e2m1 values per byte in 32-value blocks (16 bytes), scales one e8m0
    exponent per block; gate_up rows are 2*intermediate (gate and up interleaved).
    """
    e, h, i = cfg["num_local_experts"], cfg["hidden_size"], cfg["intermediate_size"]
    return [(p + "gate_up_proj_blocks", (e, 2 * i, h // 32, 16), "u8"),
            (p + "gate_up_proj_scales", (e, 2 * i, h // 32), "scale"),
            (p + "gate_up_proj_bias", (e, 2 * i)),
            (p + "down_proj_blocks", (e, h, i // 32, 16), "u8"),
            (p + "down_proj_scales", (e, h, i // 32), "scale"),
            (p + "down_proj_bias", (e, h))]


def deepseek_v2_layer(p, cfg, n):
    """MLA projections (q_lora_rank null: one q_proj) and the MLP of decoder layer n, named
    as vLLM 0.24.0's DeepseekV2ForCausalLM.load_weights reads them (kv_a_proj_with_mqa, the
    kv_a_layernorm of the latent, kv_b_proj up to heads x (nope + v)); layers below
    first_k_dense_replace (and off moe_layer_freq) are dense, the others routed + shared."""
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    rank, nope, rope = cfg["kv_lora_rank"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
    v = cfg["v_head_dim"]
    specs = [(p + "self_attn.kv_a_proj_with_mqa.weight", (rank + rope, h)),
             (p + "self_attn.kv_a_layernorm.weight", (rank,)),
             (p + "self_attn.kv_b_proj.weight", (heads * (nope + v), rank)),
             (p + "self_attn.o_proj.weight", (h, heads * v)),
             (p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    if cfg.get("q_lora_rank"):
        q_rank = cfg["q_lora_rank"]
        specs += [(p + "self_attn.q_a_proj.weight", (q_rank, h)),
                  (p + "self_attn.q_a_layernorm.weight", (q_rank,)),
                  (p + "self_attn.q_b_proj.weight", (heads * (nope + rope), q_rank))]
    else:
        specs.append((p + "self_attn.q_proj.weight", (heads * (nope + rope), h)))
    if n < cfg["first_k_dense_replace"] or n % cfg.get("moe_layer_freq", 1):
        return specs + gated_mlp(p + "mlp.", h, cfg["intermediate_size"])
    specs.append((p + "mlp.gate.weight", (cfg["n_routed_experts"], h)))
    for e in range(cfg["n_routed_experts"]):
        specs += gated_mlp(p + "mlp.experts.%d." % e, h, cfg["moe_intermediate_size"])
    return specs + gated_mlp(p + "mlp.shared_experts.", h,
                             cfg["n_shared_experts"] * cfg["moe_intermediate_size"])


def layer_specs(cfg, p, n=0):
    kind, h = cfg["model_type"], cfg["hidden_size"]
    if kind == "deepseek_v2":
        return deepseek_v2_layer(p, cfg, n)
    if kind == "gpt_oss":
        return (dense_layer(p, cfg, bias=True)
                + [(p + "self_attn.sinks", (cfg["num_attention_heads"],)),
                   (p + "mlp.router.weight", (cfg["num_local_experts"], h)),
                   (p + "mlp.router.bias", (cfg["num_local_experts"],))]
                + gpt_oss_experts(p + "mlp.experts.", cfg))
    specs = dense_layer(p, cfg)
    if kind == "qwen3_moe":
        hd = cfg["head_dim"]
        specs += [(p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.k_norm.weight", (hd,)),
                  (p + "mlp.gate.weight", (cfg["num_experts"], h))]
        for e in range(cfg["num_experts"]):
            specs += gated_mlp(p + "mlp.experts.%d." % e, h, cfg["moe_intermediate_size"])
        return specs
    specs += gated_mlp(p + "mlp.", h, cfg["intermediate_size"])
    if kind == "gemma2":
        specs += [(p + "pre_feedforward_layernorm.weight", (h,)),
                  (p + "post_feedforward_layernorm.weight", (h,))]
    return specs


def tensor_specs(cfg):
    """(name, shape[, kind]) of every checkpoint tensor, in checkpoint naming."""
    h, vocab = cfg["hidden_size"], cfg["vocab_size"]
    specs = [("model.embed_tokens.weight", (vocab, h))]
    for n in range(cfg["num_hidden_layers"]):
        specs += layer_specs(cfg, "model.layers.%d." % n, n)
    specs.append(("model.norm.weight", (h,)))
    if not cfg.get("tie_word_embeddings"):
        specs.append(("lm_head.weight", (vocab, h)))
    return specs


# ---------------------------------------------------------------- generation (child process)

def random_tensor(torch, name, shape, kind):
    """Random values that keep a forward pass finite: small normals, unit norms, MXFP4
    scales near 2^0 (e8m0 bias 127) so dequantised experts stay in a sane range."""
    if kind == "u8":
        return torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda")
    if kind == "scale":
        return torch.randint(118, 124, shape, dtype=torch.uint8, device="cuda")
    if len(shape) == 1 and ("norm" in name or name.endswith("sinks")):
        return torch.ones(shape, dtype=torch.bfloat16, device="cuda")
    return torch.randn(shape, dtype=torch.bfloat16, device="cuda").mul_(0.02)


def write_checkpoint(cfg, path, shard_bytes=4 << 30):
    """Write safetensors shards and their index; the GPU makes the random numbers fast."""
    import torch
    from safetensors.torch import save_file
    shard, size, index, count = {}, 0, {}, 0

    def flush():
        nonlocal shard, size, count
        count += 1
        fname = "model-%05d.safetensors" % count
        save_file(shard, os.path.join(path, fname), metadata={"format": "pt"})
        index.update({name: fname for name in shard})
        shard, size = {}, 0

    for spec in tensor_specs(cfg):
        name, shape, kind = (spec + ("bf16",))[:3]
        tensor = random_tensor(torch, name, shape, kind).cpu()
        shard[name] = tensor
        size += tensor.numel() * tensor.element_size()
        if size >= shard_bytes:
            flush()
    if shard:
        flush()
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as handle:
        json.dump({"metadata": {}, "weight_map": index}, handle)


def write_tokenizer(vocab_size, path):
    """A word-level tokenizer with exactly vocab_size entries: vLLM only needs the size."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {"<t%d>" % i: i for i in range(vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<t0>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as handle:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<t0>",
                   "pad_token": "<t0>", "bos_token": "<t1>", "eos_token": "<t2>",
                   "model_max_length": 1 << 20}, handle)


def generate(case, path):
    cfg = model_config(case)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as handle:
        json.dump(cfg, handle, indent=1)
    write_tokenizer(cfg["vocab_size"], path)
    write_checkpoint(cfg, path)


def model_config(case):
    cfg = dict(case["config"], num_hidden_layers=case["layers"])
    if "layer_types" in cfg:
        cfg["layer_types"] = cfg["layer_types"][: case["layers"]]
    return cfg


# ---------------------------------------------------------------- serving (parent)

def nvidia_smi():
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,memory.used,driver_version",
         "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True).stdout
    name, total, used, driver = [field.strip() for field in out.splitlines()[0].split(",")]
    return {"gpu_name": name, "memory_total_mib": int(total), "memory_used_mib": int(used),
            "driver_version": driver}


def server_command(case, path):
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path,
            "--served-model-name", case["name"], "--port", str(PORT), "--dtype", "bfloat16",
            "--gpu-memory-utilization", str(util(case)), "--tensor-parallel-size", "1",
            "--max-model-len", str(case["max_model_len"])] + case["args"]


def util(case):
    return case.get("util", UTIL)


def server_env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", VLLM_USE_FLASHINFER_SAMPLER="0",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1",
               DO_NOT_TRACK="1", VLLM_LOGGING_LEVEL="DEBUG")
    # Multicast NVLink can take a shared host's GPUs down; keep it off in every child.
    env.update(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
               NVSHMEM_DISABLE_NVLS="1")
    return env


def http(path, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (PORT, path), data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_ready(proc, deadline):
    """True once /health answers 200; False when the server dies or time runs out."""
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if http("/health")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(1)
    return False


def try_completion(case):
    """One short completion: proves the engine serves, not only that it started."""
    try:
        status, text = http("/v1/completions", {"model": case["name"], "prompt": "<t5> <t6> <t7>",
                                                "max_tokens": 16, "temperature": 0}, timeout=60)
        usage = json.loads(text).get("usage", {})
        return {"status": status, "completion_tokens": usage.get("completion_tokens")}
    except Exception as exc:  # the record says what went wrong instead of stopping the run
        return {"error": repr(exc)[:300]}


def stop(proc):
    """SIGINT the server's process group, then SIGKILL what is left; wait for the GPU."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for _second in range(30):  # the engine core exits after the API server; memory frees late
        if nvidia_smi()["memory_used_mib"] < 1024:
            break
        time.sleep(1)


def serve(case, path, log_path, timeout):
    """Start, measure at ready, stop. Returns the measurements taken outside the log."""
    result = {"command": server_command(case, path)}
    started = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(result["command"], stdout=log, stderr=subprocess.STDOUT,
                                env=server_env(), start_new_session=True)
        ready = wait_ready(proc, started + timeout)
        result["ready"] = ready
        if ready:
            result["startup_s"] = round(time.time() - started, 1)
            result["nvidia_smi_at_ready"] = nvidia_smi()
            result["completion"] = try_completion(case)
            result["nvidia_smi_after_completion_mib"] = nvidia_smi()["memory_used_mib"]
        else:
            result["exit_code"] = proc.poll()
            result["failed_after_s"] = round(time.time() - started, 1)
        stop(proc)
    return result


# ---------------------------------------------------------------- one case, the run

def shape_fields(case):
    cfg = model_config(case)
    keys = ("model_type", "hidden_size", "num_attention_heads", "num_key_value_heads",
            "head_dim", "intermediate_size", "moe_intermediate_size", "num_experts",
            "num_local_experts", "num_experts_per_tok", "vocab_size", "sliding_window",
            "layer_types", "tie_word_embeddings", "quantization_config")
    fields = {key: cfg[key] for key in keys if cfg.get(key) is not None}
    if cfg["model_type"] == "deepseek_v2":  # MLA and the expert layout; q_lora_rank may be null
        fields.update({key: cfg.get(key) for key in (
            "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
            "n_routed_experts", "n_shared_experts", "first_k_dense_replace", "moe_layer_freq")})
    fields.update(num_hidden_layers=case["layers"],
                  real_num_hidden_layers=case["config"]["num_hidden_layers"])
    return fields


def run_case(case, work, out, timeout, environment):
    path = os.path.join(work, case["model"])
    record = {"case": case["name"], "shape_of": case["shape_of"], "note": case["note"],
              "shape": shape_fields(case),
              "max_model_len": case["max_model_len"], "gpu_memory_utilization": util(case),
              "tensor_parallel_size": 1, "extra_args": case["args"], "environment": environment}
    started, record["generate_s"] = time.time(), None  # None: made ahead with --generate
    if not os.path.exists(os.path.join(path, "model.safetensors.index.json")):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--generate", case["name"],
                        "--work", work], check=True)
        record["generate_s"] = round(time.time() - started, 1)
    record["checkpoint_gib"] = round(dir_bytes(path) / 2**30, 2)
    log_path = os.path.join(work, case["name"] + ".log")
    record.update(serve(case, path, log_path, timeout))
    with open(log_path, errors="replace") as handle:
        log_text = handle.read()
    record["scraped"], record["lines"] = scrape(log_text)
    if not record["ready"]:
        record["log_tail"] = [ANSI.sub("", line) for line in log_text.splitlines()[-60:]]
    with gzip.open(os.path.join(out, case["name"] + ".log.gz"), "wt") as handle:
        handle.write(log_text)
    with open(os.path.join(out, case["name"] + ".json"), "w") as handle:
        json.dump(record, handle, indent=1)
    return record


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def environment():
    """Versions of what ran, asked of a child so this process never initialises CUDA."""
    probe = ("import json, torch, transformers, importlib.metadata as m; print(json.dumps({"
             "'torch': torch.__version__, 'torch_cuda': torch.version.cuda, "
             "'transformers': transformers.__version__, 'vllm': m.version('vllm')}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False)
    versions = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}
    smi = nvidia_smi()
    versions.update({key: smi[key] for key in ("gpu_name", "memory_total_mib", "driver_version")})
    versions["python"] = sys.version.split()[0]
    return versions


def table(records):
    """Markdown side by side: one row per case, vLLM's own numbers."""
    head = ("| case | layers | max_model_len | weights GiB | KV GiB | KV tokens | max concurrency "
            "| graphs GiB (s) | nvidia-smi at ready MiB | startup s |\n|" + "---|" * 10)
    rows = [head]
    for rec in records:
        s, smi = rec.get("scraped", {}), rec.get("nvidia_smi_at_ready", {})
        rows.append("| %s | %s/%s | %s | %s | %s | %s | %s | %s (%s) | %s | %s |" % (
            rec["case"], rec["shape"]["num_hidden_layers"], rec["shape"]["real_num_hidden_layers"],
            rec["max_model_len"], s.get("weights_gib"), s.get("available_kv_gib"),
            s.get("kv_tokens"), s.get("max_concurrency"), s.get("graph_capture_gib"),
            s.get("graph_capture_s"), smi.get("memory_used_mib"), rec.get("startup_s")))
    return "\n".join(rows) + "\n"


def derived(record):
    """nvidia-smi at ready against the budget vLLM sizes itself to (utilization x total)."""
    smi = record.get("nvidia_smi_at_ready")
    if not smi:
        return {}
    budget = record.get("gpu_memory_utilization", UTIL) * smi["memory_total_mib"]
    return {"budget_mib": round(budget), "at_ready_minus_budget_gib":
            round((smi["memory_used_mib"] - budget) / 1024, 2)}


NOTES = {case["name"]: case["note"] for case in CASES}


def merge(dirs, fixture):
    """One fixture from the per-case records of one or more runs, logs scraped anew."""
    cases, machine = [], {}
    for directory in dirs:
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(directory, name)) as handle:
                record = json.load(handle)
            with gzip.open(os.path.join(directory, record["case"] + ".log.gz"), "rt") as handle:
                record["scraped"], record["lines"] = scrape(handle.read())
            machine = record.pop("environment")
            record["note"] = record.get("note") or NOTES[record["case"]]
            if not record["generate_s"]:  # a first-version record: 0.0 meant made ahead
                record["generate_s"] = None
            record["derived"] = derived(record)
            cases.append(record)
    order = [case["name"] for case in CASES]
    cases.sort(key=lambda record: order.index(record["case"]))
    with open(fixture, "w") as handle:
        json.dump({"script": "tests/hardware/vllm_memory_check.py", "machine": machine,
                   "cases": cases}, handle, indent=1)
        handle.write("\n")
    print(table(cases))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="vllm-check-out")
    parser.add_argument("--work", default="/tmp/vllm-check-models")
    parser.add_argument("--cases", default=",".join(case["name"] for case in CASES))
    parser.add_argument("--budget", type=float, default=0,
                        help="seconds; start no case that might not end within them")
    parser.add_argument("--case-timeout", type=float, default=480)
    parser.add_argument("--keep-models", action="store_true")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--merge", nargs="+", metavar="DIR",
                        help="merge the records of these output dirs into --fixture")
    parser.add_argument("--fixture", default="vllm-fixture.json")
    parser.add_argument("--list", action="store_true")
    return parser.parse_args()


def main():
    args = parse_args()
    by_name = {case["name"]: case for case in CASES}
    if args.generate:
        case = by_name[args.generate]
        return generate(case, os.path.join(args.work, case["model"]))
    if args.list:
        return print("\n".join(by_name))
    if args.merge:
        return merge(args.merge, args.fixture)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    started, env, records = time.time(), environment(), []
    chosen = [by_name[name] for name in args.cases.split(",")]
    for n, case in enumerate(chosen):
        left = args.budget - (time.time() - started) if args.budget else args.case_timeout + 200
        if left < 240:  # generation plus a start plus a stop take about that
            print("skipping %s: %.0f s left" % (case["name"], left), flush=True)
            continue
        timeout = min(args.case_timeout, left - 40)
        print("== %s (timeout %.0f s)" % (case["name"], timeout), flush=True)
        records.append(run_case(case, args.work, args.out, timeout, env))
        print(json.dumps(records[-1].get("scraped")), records[-1].get("startup_s"), flush=True)
        later = {c["model"] for c in chosen[n + 1:]}
        if not args.keep_models and case["model"] not in later:
            shutil.rmtree(os.path.join(args.work, case["model"]), ignore_errors=True)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(table(records))
    print(table(records))


if __name__ == "__main__":
    sys.exit(main())
