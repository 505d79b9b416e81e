# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""roles/vllm_service/files/vllm-check-args against stand-in vllm packages laid out as vLLM's releases lay out the server
parser: 0.32 (vllm.entrypoints.launchers.cli_args), 0.11 to 0.31 (vllm.entrypoints.openai.cli_args beside
vllm.utils.argparse_utils), 0.10 and the K80 build (FlexibleArgumentParser in vllm.utils), and one that has none."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROGRAM = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "vllm_service", "files", "vllm-check-args")

PARSER = "import argparse\n\nclass FlexibleArgumentParser(argparse.ArgumentParser):\n    pass\n"
SERVER_ARGUMENTS = """
def make_arg_parser(parser):
    parser.add_argument("--model")
    parser.add_argument("--port", type=int)
    parser.add_argument("--enable-auto-tool-choice", action="store_true")
    parser.add_argument("--tool-call-parser")
    return parser

def validate_parsed_serve_args(args):
    if args.enable_auto_tool_choice and not args.tool_call_parser:
        raise TypeError("Error: --enable-auto-tool-choice requires --tool-call-parser")
"""
# module path (relative to the package root) -> source, per release layout.
LAYOUTS = {
    "0.32": {"vllm/utils/argparse_utils.py": PARSER, "vllm/entrypoints/launchers/cli_args.py": SERVER_ARGUMENTS},
    "0.15": {"vllm/utils/argparse_utils.py": PARSER, "vllm/entrypoints/openai/cli_args.py": SERVER_ARGUMENTS},
    "0.10": {"vllm/utils/__init__.py": PARSER, "vllm/entrypoints/openai/cli_args.py": SERVER_ARGUMENTS},
    "none": {"vllm/entrypoints/openai/__init__.py": ""},
}


def check(tmp_path, layout, *arguments):
    for path, source in LAYOUTS[layout].items():
        for parent in range(1, path.count("/") + 1):
            package = tmp_path.joinpath(*path.split("/")[:parent])
            package.mkdir(exist_ok=True)
            if not package.joinpath("__init__.py").exists():
                package.joinpath("__init__.py").write_text("__version__ = '9.9.9'\n" if parent == 1 else "")
        tmp_path.joinpath(path).write_text(source)
    with open(PROGRAM) as handle:
        program = handle.read()
    done = subprocess.run([sys.executable, "-c", program] + list(arguments), capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    return done.returncode, json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("layout", ["0.32", "0.15", "0.10"])
def test_arguments_the_parser_knows_are_accepted(tmp_path, layout):
    assert check(tmp_path, layout, "--model", "/models/tiny", "--port", "8000") == (0, {"verdict": "accepted", "reason": ""})


@pytest.mark.parametrize("layout", ["0.32", "0.15", "0.10"])
def test_an_unknown_argument_is_rejected_with_argparse_s_message(tmp_path, layout):
    assert check(tmp_path, layout, "--model", "/m", "--definitely-not-a-flag") == (
        2, {"verdict": "rejected", "reason": "unrecognized arguments: --definitely-not-a-flag"})


def test_a_bad_value_is_rejected_with_argparse_s_message(tmp_path):
    assert check(tmp_path, "0.32", "--port", "eighty") == (
        2, {"verdict": "rejected", "reason": "argument --port: invalid int value: 'eighty'"})


def test_what_validate_parsed_serve_args_refuses_is_rejected(tmp_path):
    assert check(tmp_path, "0.15", "--enable-auto-tool-choice") == (
        2, {"verdict": "rejected", "reason": "Error: --enable-auto-tool-choice requires --tool-call-parser"})


def test_a_vllm_without_the_parser_leaves_the_arguments_unchecked_and_says_where_it_looked(tmp_path):
    status, said = check(tmp_path, "none", "--definitely-not-a-flag")
    assert (status, said["verdict"]) == (3, "unchecked")
    assert said["reason"].startswith("vLLM 9.9.9 keeps its server argument parser where this check does not look (")
    assert "vllm.entrypoints.launchers.cli_args: No module named 'vllm.entrypoints.launchers'" in said["reason"]
    assert "vllm.entrypoints.openai.cli_args: No module named 'vllm.entrypoints.openai.cli_args'" in said["reason"]
