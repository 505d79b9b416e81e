# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""vllm_args_check with Docker's answers stood in for: the entrypoint it inspects, and what the check container said."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpufleet.vllm.plugins.modules import vllm_args_check

IMAGE = "gpufleet/vllm-cpu:0.32.0-a13380092829"
ARGS = {"image": IMAGE, "deployment": "tiny", "arguments": ["--model", "/models/tiny"], "program": "PROGRAM",
        "volumes": ["/var/lib/gpufleet/huggingface:/root/.cache/huggingface"]}
RECIPE_ENTRYPOINT = '["/opt/vllm/bin/python","-m","vllm.entrypoints.openai.api_server"]\n'


@pytest.fixture
def docker(monkeypatch):
    """Answers for `docker image inspect` and `docker run`, and the commands the module ran."""
    monkeypatch.setattr(module_warnings, "_global_warnings", {})
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, arg, required=False, opt_dirs=None: "/usr/bin/docker")
    answers = {"inspect": (0, RECIPE_ENTRYPOINT, ""), "run": (0, '{"verdict": "accepted", "reason": ""}\n', ""), "ran": []}

    def run_command(self, args, **kwargs):
        answers["ran"].append(args)
        return answers[args[1] if args[1] == "run" else "inspect"]
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return answers


def run_module(capsys, args=None):
    with patch_module_args(dict(ARGS, **(args or {}))):
        with pytest.raises(SystemExit) as exit_info:
            vllm_args_check.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def warnings_of(result):
    # ansible-core 2.19 wraps each warning in an event; older releases give the text.
    return [item["event"]["msg"] if isinstance(item, dict) else item for item in result.get("warnings", [])]


def test_accepted_arguments_pass_after_one_run_of_the_image_under_its_python(capsys, docker):
    code, result = run_module(capsys)
    assert (code, result["checked"], result["changed"]) == (0, True, False)
    assert docker["ran"][1] == ["/usr/bin/docker", "run", "--rm", "--network", "none", "--entrypoint", "/opt/vllm/bin/python",
                                "--volume", "/var/lib/gpufleet/huggingface:/root/.cache/huggingface:ro", IMAGE, "-c", "PROGRAM",
                                "--model", "/models/tiny"]


def test_rejected_arguments_fail_with_one_sentence(capsys, docker):
    docker["run"] = (2, '{"verdict": "rejected", "reason": "unrecognized arguments: --definitely-not-a-flag"}\n', "")
    code, result = run_module(capsys)
    assert (code, result["failed"], result["reason"]) == (1, True, "unrecognized arguments: --definitely-not-a-flag")
    assert result["msg"].startswith("Deployment tiny, image %s: vLLM rejects the server arguments (unrecognized arguments: "
                                    "--definitely-not-a-flag); correct vllm_service_extra_args" % IMAGE)


def test_an_entrypoint_without_python_is_not_run_and_warns(capsys, docker):
    docker["inspect"] = (0, '["/bin/bash","entrypoint.sh"]\n', "")
    code, result = run_module(capsys)
    assert (code, result["checked"], len(docker["ran"])) == (0, False, 1)
    assert warnings_of(result) == [
        "Deployment tiny, image %s: the server arguments were not checked before the update (its entrypoint "
        "[\"/bin/bash\", \"entrypoint.sh\"] names no Python to run the check with); a replica that rejects them fails its "
        "start and is put back on its previous unit." % IMAGE]


def test_an_image_docker_cannot_inspect_warns(capsys, docker):
    docker["inspect"] = (1, "", "Error: No such image: %s\n" % IMAGE)
    code, result = run_module(capsys)
    assert (code, result["checked"]) == (0, False)
    assert "(Docker could not inspect the image: Error: No such image: %s)" % IMAGE in warnings_of(result)[0]


def test_a_vllm_without_the_parser_warns_with_its_reason(capsys, docker):
    docker["run"] = (3, '{"verdict": "unchecked", "reason": "vLLM 0.5.0 keeps its server argument parser elsewhere"}\n', "")
    code, result = run_module(capsys)
    assert (code, result["checked"], result["reason"]) == (0, False, "vLLM 0.5.0 keeps its server argument parser elsewhere")
    assert len(warnings_of(result)) == 1


def test_check_mode_runs_nothing_and_says_so(capsys, docker):
    code, result = run_module(capsys, {"_ansible_check_mode": True})
    assert (code, result["checked"], docker["ran"]) == (0, False, [])
    assert result["reason"].startswith("Deployment tiny: a real run checks the server arguments with image %s" % IMAGE)
