# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Which GPU exporter serves a host's GPUs, from their architecture and product line (docs/metrics.md).

Sources: DCGM = NVIDIA DCGM documentation, "Supported Platforms" (latest, and the same list since 2.x): "All Kepler (K80)
and newer NVIDIA datacenter (previously, Tesla) GPUs", "All Maxwell and newer non-datacenter (e.g. GeForce or Quadro)
GPUs", "NVIDIA Driver R450+"; DCGMSRC = repository NVIDIA/DCGM, DcgmCacheManager::IsGpuAllowlisted (minimum Kepler for
the Tesla brand, Maxwell for every other brand, with a unit test for exactly that); DCGMEOL = NVIDIA/DCGM
docs/support_EOL.md (each release is validated against the active driver branches); EXP5 = NVIDIA/dcgm-exporter#5 and
EXP404 = #404 (profiling metrics on datacenter Volta and newer, Quadro RTX and Titan RTX, not on GeForce); EXP61 =
NVIDIA/DCGM#61 (dcgm-exporter stops with "This GPU is not supported by DCGM" at such a GPU).
"""

from __future__ import annotations

DCGM_EXPORTER = "dcgm-exporter"
TEXTFILE = "nvidia-smi-textfile"
# dcgm-exporter's default listen address is :9400.
DCGM_EXPORTER_PORT = 9400

_GENERATIONS = ("kepler", "maxwell", "pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell")


def _generation(gpu):
    architecture = gpu.get("architecture")
    return _GENERATIONS.index(architecture) if architecture in _GENERATIONS else None


def _label(gpu):
    return "%s (%s)" % (gpu.get("name") or "GPU", gpu.get("pci_bus_id") or "?")


def dcgm_supports(gpu):
    """DCGM's host engine takes Tesla-brand GPUs from Kepler on and every other brand from Maxwell on (DCGM, DCGMSRC)."""
    generation = _generation(gpu)
    if generation is None:
        return False
    tesla = "tesla" in (gpu.get("name") or "").lower()
    return generation >= _GENERATIONS.index("kepler" if tesla else "maxwell")


def profiling_metrics(gpu):
    """DCGM's profiling fields (DCGM_FI_PROF_*: SM, tensor and DRAM activity) need Volta or newer, not GeForce (EXP5, EXP404)."""
    generation = _generation(gpu)
    geforce = "geforce" in (gpu.get("name") or "").lower()
    # (derived) RTX PRO Blackwell cards count with the Quadro RTX line EXP5 names; not confirmed by NVIDIA for them.
    return generation is not None and generation >= _GENERATIONS.index("volta") and not geforce


def gpu_exporter(gpus):
    """The exporter for one host's GPUs (gpu_facts' gpufleet_gpus): a dict with exporter, port, no_profiling_metrics and reason.

    exporter: DCGM_EXPORTER where DCGM supports every GPU of the host; TEXTFILE (nvidia-smi's readings written for
    the node exporter's textfile collector, scraped with the node job) where it does not, because dcgm-exporter stops
    at a GPU DCGM does not support (EXP61); None on a host without NVIDIA GPUs.
    """
    if not gpus:
        return {"exporter": None, "port": None, "no_profiling_metrics": [],
                "reason": "No NVIDIA GPU: the node exporter is all the host needs."}
    unsupported = [_label(gpu) for gpu in gpus if not dcgm_supports(gpu)]
    if unsupported:
        return {"exporter": TEXTFILE, "port": None, "no_profiling_metrics": [_label(gpu) for gpu in gpus],
                "reason": "DCGM does not support %s (it takes Tesla GPUs from Kepler on and others from Maxwell on), and "
                          "dcgm-exporter stops at such a GPU: nvidia-smi's readings go through the node exporter's textfile "
                          "collector." % ", ".join(unsupported)}
    without = [_label(gpu) for gpu in gpus if not profiling_metrics(gpu)]
    reason = "DCGM supports every GPU of the host."
    if without:
        reason += " %s get%s DCGM's device fields but no profiling fields, which need Volta or newer and no GeForce." % (
            ", ".join(without), "" if len(without) > 1 else "s")
    if any(gpu.get("architecture") == "kepler" for gpu in gpus):
        # DCGMEOL: R470, the Kepler branch, is past its support, so no current DCGM release was validated on it.
        reason += " Kepler runs driver R470, which DCGM admits (R450 or newer) but no current DCGM release was validated on."
    return {"exporter": DCGM_EXPORTER, "port": DCGM_EXPORTER_PORT, "no_profiling_metrics": without, "reason": reason}
