# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which Python runs the check in an image, the docker run it makes, and what its output means."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._server_args import (
    ACCEPTED,
    REJECTED,
    UNCHECKED,
    Outcome,
    check_command,
    entrypoint_python,
    outcome,
    rejection,
    unchecked,
)

# The recipes' entrypoint (roles/vllm_image/files/*/Dockerfile), upstream's old and new ones.
RECIPE = ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]


@pytest.mark.parametrize("entrypoint, python", [
    (RECIPE, "/opt/vllm/bin/python"),
    (["python3", "-m", "vllm.entrypoints.openai.api_server"], "python3"),
    (["/usr/bin/python3.12", "-m", "vllm.entrypoints.openai.api_server"], "/usr/bin/python3.12"),
    (["vllm", "serve"], "python3"),
    (["/bin/bash", "entrypoint.sh"], None),
    (["/opt/vllm/bin/pythonista"], None),
    (None, None),
    ([], None),
])
def test_the_python_comes_from_the_entrypoint(entrypoint, python):
    assert entrypoint_python(entrypoint) == python


def test_the_check_runs_without_network_and_mounts_read_only():
    assert check_command("/usr/bin/docker", "img:1", "/opt/vllm/bin/python", "PROGRAM", ["--model", "/m", "--port", "8000"],
                         ["/var/lib/hf:/root/.cache/huggingface"]) == [
        "/usr/bin/docker", "run", "--rm", "--network", "none", "--entrypoint", "/opt/vllm/bin/python",
        "--volume", "/var/lib/hf:/root/.cache/huggingface:ro", "img:1", "-c", "PROGRAM", "--model", "/m", "--port", "8000"]


def test_the_last_verdict_line_counts_whatever_vllm_logged_before_it():
    stdout = 'INFO 12-03 [__init__.py:1] Automatically detected platform cpu.\n{"verdict": "rejected", "reason": ' \
             '"unrecognized arguments: --definitely-not-a-flag"}\n'
    assert outcome(2, stdout, "Found duplicate keys --max-model-len\n") == Outcome(
        REJECTED, "unrecognized arguments: --definitely-not-a-flag")


def test_accepted_arguments_have_no_reason():
    assert outcome(0, '{"verdict": "accepted", "reason": ""}\n', "") == Outcome(ACCEPTED, "")


@pytest.mark.parametrize("status, stdout, stderr, reason", [
    (127, "", 'docker: Error response from daemon: exec: "python3": executable file not found in $PATH\n',
     'the check exited with status 127 without a verdict: docker: Error response from daemon: exec: "python3": '
     'executable file not found in $PATH'),
    (1, "", "Traceback (most recent call last):\nModuleNotFoundError: No module named 'json'\n",
     "the check exited with status 1 without a verdict: ModuleNotFoundError: No module named 'json'"),
    (0, '{"verdict": "maybe"}\n[1, 2]\n', "", "the check exited with status 0 without a verdict: [1, 2]"),
    (137, "", "", "the check exited with status 137 without a verdict"),
])
def test_no_verdict_leaves_the_arguments_unchecked_with_the_last_words(status, stdout, stderr, reason):
    assert outcome(status, stdout, stderr) == Outcome(UNCHECKED, reason)


def test_a_rejection_names_deployment_image_reason_then_what_to_fix():
    assert rejection("tiny", "gpufleet/vllm-cpu:0.32.0-a13380092829", "unrecognized arguments: --definitely-not-a-flag") == (
        "Deployment tiny, image gpufleet/vllm-cpu:0.32.0-a13380092829: vLLM rejects the server arguments (unrecognized "
        "arguments: --definitely-not-a-flag); correct vllm_service_extra_args, or the gpufleet_plan setting that adds the "
        "argument (no replica was stopped).")


def test_unchecked_arguments_say_what_still_catches_a_bad_one():
    assert unchecked("tiny", "vllm/vllm-openai:v0.9.0", "vLLM 0.9.0 keeps its parser elsewhere.") == (
        "Deployment tiny, image vllm/vllm-openai:v0.9.0: the server arguments were not checked before the update (vLLM "
        "0.9.0 keeps its parser elsewhere); a replica that rejects them fails its start and is put back on its previous unit.")
