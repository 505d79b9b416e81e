# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Why a replica failed, in one sentence read out of the end of its journal, to lead the failure message.

A failed start leaves sixty journal lines of tracebacks, Docker and systemd chatter; the cause is usually one of them.
Known causes are matched most specific first and each gets a sentence that says what to do; otherwise the last Python
or Docker error line is quoted, and failing that the exit status speaks. Lines may come as journalctl prints them by
default ("Sep 05 10:00:01 gpu-1 vllm-tiny-0[1234]: ...") or with --output cat (the message alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ansible_collections.gpufleet.vllm.plugins.module_utils._start_limit import refusal_sentence


@dataclass(frozen=True)
class Cause:
    """sentence: what went wrong and what to do. line: the journal line it was read from, as the journal gave it (None
    when only the exit status spoke)."""

    sentence: str
    line: Optional[str]


_FREE_PORT = "stop what holds it (ss -ltnp 'sport = :{port}'), or set port so that the router and replicas take other ports"
_OTHER_IMAGE = "rerun the play so that the image role puts it on the host, or log in to its registry"

# (pattern, sentence): most specific first; a sentence fills in the pattern's named groups.
RULES = tuple((re.compile(pattern), sentence) for pattern, sentence in (
    (r"error: unrecognized arguments: (?P<arguments>.+?)\s*$",
     "vLLM does not know the arguments {arguments}; drop them from vllm_service_extra_args, or serve a vLLM version that has "
     "them."),
    (r"error: argument (?P<argument>\S+?): (?P<reason>.+?)\s*$",
     "vLLM rejected its argument {argument} ({reason}); correct that value."),
    (r"Bind for (?P<address>\S+?):(?P<port>\d+) failed: port is already allocated",
     "Docker could not publish port {port} on {address} because another container publishes it; stop that container "
     "(docker ps --filter publish={port}), or set port so that the router and replicas take other ports."),
    (r"listen tcp[46]? (?P<address>\S+?):(?P<port>\d+): bind: address already in use",
     "Port {port} on {address} is taken, so Docker could not publish the replica there; " + _FREE_PORT + "."),
    (r"error while attempting to bind on address \('(?P<address>[^']*)', (?P<port>\d+)\): address already in use",
     "The server could not bind port {port} on {address}, which something else holds; " + _FREE_PORT + "."),
    (r"Free memory on device(?: \S+)? \((?P<free>[\d.]+)/(?P<total>[\d.]+) GiB\) on startup is less than desired GPU "
     r"memory utilization \((?P<utilization>[\d.]+), (?P<requested>[\d.]+) GiB\)",
     "The GPU had {free} of its {total} GiB free at start, less than the {requested} GiB that gpu_memory_utilization "
     "{utilization} asks for; stop what else uses the GPU (nvidia-smi), or lower gpu_memory_utilization."),
    (r"estimated maximum model length is (?P<length>\d+)",
     "The KV cache vLLM could allocate holds no sequence of max_model_len; set max_model_len to at most {length}, or raise "
     "gpu_memory_utilization."),
    (r"No available memory for the cache blocks",
     "Nothing was left for the KV cache after the weights and activations; raise gpu_memory_utilization, serve the model on "
     "more GPUs (tensor_parallel_size), or serve a smaller one."),
    (r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory",
     "The GPU ran out of memory while vLLM started (CUDA out of memory); lower max_model_len or gpu_memory_utilization, serve "
     "the model on more GPUs, or stop what else uses them."),
    (r"Failed to initialize NVML: Driver/library version mismatch",
     "The loaded NVIDIA kernel module differs from the driver libraries, as after a driver upgrade without a reboot; reboot "
     "the host."),
    (r"Failed to initialize NVML: Unknown Error",
     "The container lost its GPUs (Failed to initialize NVML: Unknown Error), as happens after a systemctl daemon-reload "
     "under Docker's systemd cgroup driver when /dev/char has no links to the NVIDIA devices "
     "(NVIDIA/nvidia-container-toolkit#48); run nvidia-ctk system create-dev-char-symlinks --create-all and restart the "
     "replica."),
    (r"system not yet initialized",
     "CUDA reports the system not yet initialized (error 802), which on NVSwitch machines (HGX, DGX) means the NVIDIA "
     "Fabric Manager is not running; install nvidia-fabricmanager of the driver's exact version and start it."),
    (r"no kernel image is available for execution on the device",
     "The image holds no GPU code for this GPU's architecture (no kernel image is available); serve the image variant the "
     "plan picks for it, or add its compute capability to TORCH_CUDA_ARCH_LIST and rebuild."),
    (r"the provided PTX was compiled with an unsupported toolchain",
     "The host's driver is older than the CUDA toolkit that built the image's kernels; upgrade the driver, or serve an "
     "image built for the driver's CUDA version."),
    (r"unsatisfied condition: (?P<condition>cuda>=[\d.]+)",
     "The image requires {condition}, more than the host's driver offers; upgrade the driver, or serve an image built "
     "for the driver's CUDA version."),
    (r"No such file or directory: '(?P<path>[^']*config\.json)'",
     "The model has no {path}; copy a complete Hugging Face model directory, or name a Hugging Face model id."),
    (r"does not appear to have a file named config\.json",
     "The model has no config.json; copy a complete Hugging Face model directory, or name a Hugging Face model id."),
    (r"GatedRepoError|401 Client Error",
     "Hugging Face refused to hand out the model, which is gated or private; set vllm_service_hf_token to a token with "
     "access to it."),
    (r"RepositoryNotFoundError|Repository Not Found for url",
     "Hugging Face has no such model repository; check the model id."),
    (r"pull access denied for (?P<image>[^,\s]+)",
     "Docker has no image {image} and may not pull it (pull access denied); " + _OTHER_IMAGE + "."),
    (r"manifest for (?P<image>\S+) not found",
     "The registry has no image {image}; " + _OTHER_IMAGE + "."),
    (r"(?P<url>\S+) did not answer 200 within (?P<seconds>\d+) s",
     "vLLM did not answer {url} within {seconds} s of its start; the lines before show where loading stopped, and a "
     "large model may need a longer vllm_service_start_timeout."),
    (r"start(?:-post)? operation timed out",
     "systemd ended the start when TimeoutStartSec ran out; the lines before show where loading stopped, and a large "
     "model may need a longer vllm_service_start_timeout."),
))

# What journalctl puts before the message by default: date, host, "identifier[pid]: ".
_JOURNAL_PREFIX = re.compile(r"^(?:[^\[\]]*? )?[\w@.:-]+\[\d+\]: ")
# What vLLM's logger puts before its messages, with the process it came from in multiprocess engines.
_VLLM_PREFIX = re.compile(r"^(?:\([\w-]+ pid=\d+\) )?(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\d-]+ [\d:.]+ \[[^\]]*\] ")
# The last line of a Python traceback, or Docker's own error.
_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)(?:\[\w+\])?: |docker: Error response from daemon: )\S")
# vLLM's front end ends on this after its engine core failed; the engine core's own error came earlier.
_SEE_ABOVE = "See root cause above"
_NO_IMAGE = re.compile(r"Unable to find image '(?P<image>[^']+)' locally")
# systemd names the exit code of a process that exited and the signal of one that was killed.
_MAIN_EXIT = re.compile(r"Main process exited, code=(?P<code>\w+), status=(?P<number>\d+)/(?P<name>\w+)")

_EXIT_STATUS = {
    "137": "The server was killed (exit status 137, SIGKILL) without a message, most often by the kernel's out-of-memory "
           "killer; look for \"Out of memory\" in journalctl -k, and give the host more memory or run fewer replicas.",
    "139": "The server crashed (exit status 139, a segmentation fault); the lines before show what it ran last.",
    "125": "docker run failed before the server started (exit status 125); the lines before hold Docker's reason.",
    "126": "The image's entrypoint could not be run (exit status 126); check the image's ENTRYPOINT.",
    "127": "The image's entrypoint was not found (exit status 127); check the image's ENTRYPOINT.",
}
_EXIT_STATUS.update(KILL=_EXIT_STATUS["137"], SEGV=_EXIT_STATUS["139"])


def message(line):
    """A journal line without journalctl's and vLLM's prefixes."""
    text = _JOURNAL_PREFIX.sub("", line.rstrip(), count=1)
    return _VLLM_PREFIX.sub("", text, count=1).strip()


def failure_cause(lines, exit_status=None):
    """The Cause of a failed replica, from its last journal lines and the exit status of its container; None if neither
    tells.

    lines: a list of lines or the text journalctl printed. exit_status: the container's exit code when known; otherwise
    systemd's "Main process exited" line supplies it.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    lines = [line.rstrip() for line in lines]
    return (_known_cause(lines) or _last_error(lines) or _missing_image(lines)
            or _exit_cause(lines, exit_status))


def failure_headline(unit, lines, unit_status=None):
    """The sentence that leads a failed unit's last journal lines: that systemd gave it up at its start limit, where it
    did, then the cause read from the lines.

    unit: the unit's name without ".service". lines: as for failure_cause. unit_status: the unit's properties as
    systemctl show gives them; they name the start limit.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    cause = failure_cause(lines)
    cause_sentence = cause.sentence + " " if cause else ""
    refusal = refusal_sentence(unit, lines, unit_status or {})
    if refusal:
        return "%s %sIts last journal lines:" % (refusal, cause_sentence)
    return "%svLLM unit %s is not serving; its last journal lines:" % (cause_sentence, unit)


def _known_cause(lines):
    for pattern, sentence in RULES:
        for line in lines:
            found = pattern.search(line)
            if found:
                return Cause(sentence.format(**found.groupdict()), line)
    return None


def _last_error(lines):
    for line in reversed(lines):
        text = message(line)
        if _ERROR_LINE.match(text) and _SEE_ABOVE not in text:
            return Cause('The replica failed with "%s"; the lines before show what led to it.' % text.rstrip("."), line)
    return None


def _missing_image(lines):
    for line in lines:
        found = _NO_IMAGE.search(line)
        if found:
            return Cause("Docker has no image %s on the host and could not pull it; %s." % (found.group("image"), _OTHER_IMAGE), line)
    return None


def _exit_cause(lines, exit_status):
    if exit_status is not None:
        sentence = _EXIT_STATUS.get(str(exit_status))
        return Cause(sentence, None) if sentence else None
    for line in reversed(lines):
        found = _MAIN_EXIT.search(line)
        if found:
            status = found.group("number") if found.group("code") == "exited" else found.group("name")
            return Cause(_EXIT_STATUS[status], line) if status in _EXIT_STATUS else None
    return None
