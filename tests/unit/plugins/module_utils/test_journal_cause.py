# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The cause of a failed replica out of the end of its journal, case by case, on excerpts shaped as journalctl prints
them (by default, and with --output cat)."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._journal_cause import Cause, failure_cause, failure_headline, message

# What systemd and vllm-wait-ready add to every failed start, whatever the cause.
SYSTEMD_TAIL = """\
Sep 05 10:00:02 gpu-1 systemd[1]: vllm-tiny-0.service: Main process exited, code=exited, status=1/FAILURE
Sep 05 10:00:02 gpu-1 vllm-tiny-0[20330]: the server exited before http://127.0.0.1:8001/health answered
Sep 05 10:00:02 gpu-1 systemd[1]: vllm-tiny-0.service: Control process exited, code=exited, status=1/FAILURE
Sep 05 10:00:02 gpu-1 systemd[1]: vllm-tiny-0.service: Failed with result 'exit-code'.
Sep 05 10:00:02 gpu-1 systemd[1]: Failed to start vllm-tiny-0.service - vLLM OpenAI-compatible server tiny, replica 0 (a40).
"""

UNKNOWN_FLAG = """\
Sep 05 10:00:01 gpu-1 vllm-tiny-0[20311]: usage: vllm serve [model_tag] [options]
Sep 05 10:00:01 gpu-1 vllm-tiny-0[20311]: vllm serve: error: unrecognized arguments: --definitely-not-a-flag
""" + SYSTEMD_TAIL

BAD_CHOICE = """\
usage: api_server.py [-h] [--host HOST] [--port PORT] [--dtype {auto,half,float16,bfloat16,float,float32}]
api_server.py: error: argument --dtype: invalid choice: 'float8' (choose from 'auto', 'half', 'float16', 'bfloat16', 'float', 'float32')
"""

PORT_ALLOCATED = ("docker: Error response from daemon: driver failed programming external connectivity on endpoint vllm-tiny-1 "
                  "(5c1f0d2a9b3e): Bind for 0.0.0.0:8002 failed: port is already allocated.")

PORT_IN_USE = ("Sep 05 10:00:01 gpu-1 vllm-tiny-0[20311]: docker: Error response from daemon: driver failed programming external "
               "connectivity on endpoint vllm-tiny-0 (9ab1c2d3e4f5): Error starting userland proxy: listen tcp4 0.0.0.0:8001: bind: "
               "address already in use.")

UVICORN_PORT = "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use"

FREE_MEMORY = """\
(EngineCore_DP0 pid=211) INFO 09-05 10:01:10 [gpu_model_runner.py:2007] Loading model from scratch...
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] Traceback (most recent call last):
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py", line 190, \
in init_device
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708]     raise ValueError(
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] ValueError: Free memory on device cuda:0 (7.34/44.35 GiB) on startup \
is less than desired GPU memory utilization (0.9, 39.92 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""

KV_TOO_SMALL = ("ERROR 09-05 10:02:40 [core.py:708] ValueError: To serve at least one request with the models's max seq len (32768), "
                "(3.50 GiB KV cache is needed, which is larger than the available KV cache memory (1.20 GiB). Based on the available "
                "memory, the estimated maximum model length is 11232. Try increasing `gpu_memory_utilization` or decreasing "
                "`max_model_len` when initializing the engine.")

NVML_LOST = """\
Sep 05 11:20:41 gpu-1 vllm-tiny-0[31877]: (EngineCore_DP0 pid=215) WARNING 09-05 11:20:41 [cuda.py:140] Failed to initialize NVML: Unknown Error
Sep 05 11:20:41 gpu-1 vllm-tiny-0[31877]: RuntimeError: No CUDA GPUs are available
"""

FABRIC_MANAGER = ("/usr/local/lib/python3.12/dist-packages/torch/cuda/__init__.py:182: UserWarning: CUDA initialization: Unexpected "
                  "error from cudaGetDeviceCount(). Did you run some cuda functions before calling NumCudaDevices() that might have "
                  "already set an error? Error 802: system not yet initialized (Triggered internally at /pytorch/c10/cuda/"
                  "CUDAFunctions.cpp:109.)")

OUT_OF_MEMORY = """\
(EngineCore_DP0 pid=211) ERROR 09-05 10:03:55 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. \
GPU 0 has a total capacity of 44.35 GiB of which 1.02 GiB is free. Process 211 has 43.31 GiB memory in use.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""

PULL_DENIED = """\
Unable to find image 'registry.example:5000/gpufleet/vllm-k80:0.10.1' locally
docker: Error response from daemon: pull access denied for registry.example:5000/gpufleet/vllm-k80, repository does not exist or \
may require 'docker login': denied: requested access to the resource is denied.
See 'docker run --help'.
"""

REGISTRY_DOWN = """\
Unable to find image 'registry.example:5000/gpufleet/vllm-k80:0.10.1' locally
docker: Error response from daemon: Get "https://registry.example:5000/v2/": dial tcp 10.0.0.5:5000: connect: connection refused.
See 'docker run --help'.
"""

UNSUPPORTED_MODEL = """\
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] Traceback (most recent call last):
(EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] ValueError: Model architectures ['FooForCausalLM'] are not supported for now.
(APIServer pid=1) Traceback (most recent call last):
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
""" + SYSTEMD_TAIL

TIMED_OUT = """\
Sep 05 10:15:02 gpu-1 vllm-tiny-0[20330]: http://127.0.0.1:8001/health did not answer 200 within 900 s
Sep 05 10:15:02 gpu-1 systemd[1]: vllm-tiny-0.service: Control process exited, code=exited, status=1/FAILURE
"""


def cause(text, **options):
    found = failure_cause(text, **options)
    assert found is not None
    return found.sentence


def test_unknown_argument_is_named_and_its_line_kept():
    found = failure_cause(UNKNOWN_FLAG)
    assert found == Cause(
        "vLLM does not know the arguments --definitely-not-a-flag; drop them from vllm_service_extra_args, or serve a vLLM "
        "version that has them.",
        "Sep 05 10:00:01 gpu-1 vllm-tiny-0[20311]: vllm serve: error: unrecognized arguments: --definitely-not-a-flag")


def test_rejected_argument_value_names_the_argument_and_why():
    assert cause(BAD_CHOICE) == (
        "vLLM rejected its argument --dtype (invalid choice: 'float8' (choose from 'auto', 'half', 'float16', 'bfloat16', "
        "'float', 'float32')); correct that value.")


def test_port_another_container_publishes():
    assert cause(PORT_ALLOCATED) == (
        "Docker could not publish port 8002 on 0.0.0.0 because another container publishes it; stop that container "
        "(docker ps --filter publish=8002), or set port so that the router and replicas take other ports.")


def test_port_another_process_holds():
    found = failure_cause(PORT_IN_USE)
    assert found.sentence == (
        "Port 8001 on 0.0.0.0 is taken, so Docker could not publish the replica there; stop what holds it "
        "(ss -ltnp 'sport = :8001'), or set port so that the router and replicas take other ports.")
    assert found.line == PORT_IN_USE


def test_port_the_server_itself_could_not_bind():
    assert cause(UVICORN_PORT).startswith("The server could not bind port 8000 on 0.0.0.0, which something else holds;")


def test_free_memory_below_the_utilization_reads_vllms_numbers():
    found = failure_cause(FREE_MEMORY)
    assert found.sentence == (
        "The GPU had 7.34 of its 44.35 GiB free at start, less than the 39.92 GiB that gpu_memory_utilization 0.9 asks for; "
        "stop what else uses the GPU (nvidia-smi), or lower gpu_memory_utilization.")
    assert "ValueError: Free memory on device cuda:0" in found.line


def test_free_memory_without_a_device_name():
    line = ("ValueError: Free memory on device (3.27/15.98 GiB) on startup is less than desired GPU memory utilization "
            "(0.9, 14.39 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.")
    assert cause(line).startswith("The GPU had 3.27 of its 15.98 GiB free at start, less than the 14.39 GiB")


def test_kv_cache_too_small_for_one_sequence_names_the_length_that_fits():
    assert cause(KV_TOO_SMALL) == (
        "The KV cache vLLM could allocate holds no sequence of max_model_len; set max_model_len to at most 11232, or raise "
        "gpu_memory_utilization.")


def test_lost_gpus_point_at_the_dev_char_links():
    found = failure_cause(NVML_LOST)
    assert found.sentence.startswith("The container lost its GPUs (Failed to initialize NVML: Unknown Error)")
    assert "nvidia-ctk system create-dev-char-symlinks --create-all" in found.sentence
    assert found.line == NVML_LOST.splitlines()[0]


def test_driver_library_mismatch_asks_for_a_reboot():
    assert cause("Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95") == (
        "The loaded NVIDIA kernel module differs from the driver libraries, as after a driver upgrade without a reboot; "
        "reboot the host.")


def test_error_802_points_at_the_fabric_manager():
    assert cause(FABRIC_MANAGER) == (
        "CUDA reports the system not yet initialized (error 802), which on NVSwitch machines (HGX, DGX) means the NVIDIA "
        "Fabric Manager is not running; install nvidia-fabricmanager of the driver's exact version and start it.")


def test_out_of_memory_comes_before_the_front_ends_summary():
    assert cause(OUT_OF_MEMORY).startswith("The GPU ran out of memory while vLLM started (CUDA out of memory);")


@pytest.mark.parametrize("line", [
    "FileNotFoundError: [Errno 2] No such file or directory: '/models/tiny/config.json'",
    "OSError: /models/tiny does not appear to have a file named config.json. Checkout 'https://huggingface.co//models/tiny/tree/None' "
    "for available files.",
])
def test_model_directory_without_config_json(line):
    assert cause(line).startswith("The model has no ")
    assert "config.json; copy a complete Hugging Face model directory, or name a Hugging Face model id." in cause(line)


def test_image_that_may_not_be_pulled():
    found = failure_cause(PULL_DENIED)
    assert found.sentence == (
        "Docker has no image registry.example:5000/gpufleet/vllm-k80 and may not pull it (pull access denied); rerun the "
        "play so that the image role puts it on the host, or log in to its registry.")


def test_registry_that_does_not_answer_is_quoted_from_dockers_error():
    assert cause(REGISTRY_DOWN) == (
        'The replica failed with "docker: Error response from daemon: Get "https://registry.example:5000/v2/": dial tcp '
        '10.0.0.5:5000: connect: connection refused"; the lines before show what led to it.')


def test_missing_image_alone_still_says_so():
    assert cause("Unable to find image 'gpufleet/vllm-cpu:0.32.0' locally") == (
        "Docker has no image gpufleet/vllm-cpu:0.32.0 on the host and could not pull it; rerun the play so that the image "
        "role puts it on the host, or log in to its registry.")


def test_unknown_python_error_quotes_the_engine_cores_not_the_front_ends():
    found = failure_cause(UNSUPPORTED_MODEL)
    assert found.sentence == ('The replica failed with "ValueError: Model architectures [\'FooForCausalLM\'] are not '
                              'supported for now"; the lines before show what led to it.')
    assert found.line == UNSUPPORTED_MODEL.splitlines()[1]


def test_health_that_never_answered_names_the_start_timeout():
    assert cause(TIMED_OUT) == (
        "vLLM did not answer http://127.0.0.1:8001/health within 900 s of its start; the lines before show where loading "
        "stopped, and a large model may need a longer vllm_service_start_timeout.")


def test_start_timed_out_by_systemd():
    line = "Sep 05 10:16:02 gpu-1 systemd[1]: vllm-tiny-0.service: start-post operation timed out. Terminating."
    assert cause(line).startswith("systemd ended the start when TimeoutStartSec ran out;")


def test_silent_kill_is_read_from_systemds_exit_line():
    found = failure_cause("Sep 05 10:20:00 gpu-1 systemd[1]: vllm-tiny-0.service: Main process exited, code=exited, status=137/n/a")
    assert found.sentence.startswith("The server was killed (exit status 137, SIGKILL) without a message")
    assert found.line.endswith("status=137/n/a")


def test_kill_by_signal_is_read_from_systemds_exit_line():
    assert cause("vllm-tiny-0.service: Main process exited, code=killed, status=9/KILL").startswith("The server was killed")


def test_exit_status_given_by_the_caller():
    assert failure_cause([], exit_status=139) == Cause(
        "The server crashed (exit status 139, a segmentation fault); the lines before show what it ran last.", None)


def test_nothing_to_go_by_gives_none():
    assert failure_cause(SYSTEMD_TAIL.replace("status=1/FAILURE", "status=0/SUCCESS")) is None
    assert failure_cause(SYSTEMD_TAIL) is None
    assert failure_cause("", exit_status=1) is None


@pytest.mark.parametrize("line, text", [
    ("Sep 05 10:00:01 gpu-1 vllm-tiny-0[20311]: (EngineCore_DP0 pid=211) ERROR 09-05 10:01:12 [core.py:708] ValueError: x",
     "ValueError: x"),
    ("2026-09-05T10:00:01+0000 gpu-1 vllm-tiny-0[20311]: INFO 09-05 10:00:01 [api_server.py:1890] vLLM API server version 0.20.1",
     "vLLM API server version 0.20.1"),
    ("vllm-tiny-0[20311]: usage: vllm serve", "usage: vllm serve"),
    ("INFO 09-05 10:00:01 [api_server.py:1890] Starting vLLM API server 0 on http://0.0.0.0:8000",
     "Starting vLLM API server 0 on http://0.0.0.0:8000"),
])
def test_message_drops_journal_and_vllm_prefixes(line, text):
    assert message(line) == text


# A replica whose model lost its config.json, after systemd refused its restart (journalctl --output cat).
CRASH_LOOP = """\
FileNotFoundError: [Errno 2] No such file or directory: '/models/tiny/config.json'
vllm-tiny-0.service: Main process exited, code=exited, status=1/FAILURE
vllm-tiny-0.service: Failed with result 'exit-code'.
vllm-tiny-0.service: Scheduled restart job, restart counter is at 3.
vllm-tiny-0.service: Start request repeated too quickly.
vllm-tiny-0.service: Failed with result 'exit-code'.
Failed to start vllm-tiny-0.service - vLLM OpenAI-compatible server tiny, replica 0 (cpu).
"""
LIMIT = {"StartLimitBurst": "3", "StartLimitIntervalUSec": "10min", "Result": "exit-code"}


def test_a_unit_given_up_leads_with_its_start_limit_then_the_cause():
    assert failure_headline("vllm-tiny-0", CRASH_LOOP, LIMIT) == (
        "vLLM unit vllm-tiny-0 gave up after 3 starts in 600 s (its start limit), so systemd starts it no more. "
        "The model has no /models/tiny/config.json; copy a complete Hugging Face model directory, or name a Hugging Face "
        "model id. Its last journal lines:")


def test_a_unit_given_up_without_a_known_cause_still_leads_with_its_start_limit():
    lines = CRASH_LOOP.splitlines()[1:]
    assert failure_headline("vllm-tiny-0", lines, LIMIT) == (
        "vLLM unit vllm-tiny-0 gave up after 3 starts in 600 s (its start limit), so systemd starts it no more. "
        "Its last journal lines:")


def test_a_unit_that_is_not_given_up_leads_with_the_cause():
    lines = UNKNOWN_FLAG + SYSTEMD_TAIL
    assert failure_headline("vllm-tiny-0", lines, LIMIT) == (
        failure_cause(lines).sentence + " vLLM unit vllm-tiny-0 is not serving; its last journal lines:")


def test_a_unit_without_a_cause_or_a_refusal_is_said_not_to_serve():
    assert failure_headline("vllm-tiny-router", []) == "vLLM unit vllm-tiny-router is not serving; its last journal lines:"
