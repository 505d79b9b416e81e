# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Before a replica is stopped: does the image's vLLM take the server arguments its unit will pass.

An argument vLLM does not know is otherwise found only when the updated replica starts, after it stopped, and the
rollback puts the old unit back. The check runs the image once, without network, under the Python its entrypoint
names, with a program (roles/vllm_service/files/vllm-check-args) that parses the arguments with vLLM's own server
parser and prints one JSON line: {"verdict": "accepted" | "rejected" | "unchecked", "reason": ...}.

Only vLLM's own refusal stops the play. Whatever keeps the program from answering (an image whose Python is not
where its entrypoint says, a vLLM that keeps its parser elsewhere) leaves the arguments unchecked: the replica's
start still finds a bad argument, and its rollback still puts the old unit back.
"""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple, Optional, Sequence

ACCEPTED, REJECTED, UNCHECKED = "accepted", "rejected", "unchecked"
_PYTHON = re.compile(r"^python[0-9.]*$")
# vllm/vllm-openai images start `vllm serve`, a console script installed with vLLM beside the python3 on their PATH.
_CONSOLE_SCRIPT_PYTHON = {"vllm": "python3"}


class Outcome(NamedTuple):
    verdict: str
    reason: str


def entrypoint_python(entrypoint: Optional[Sequence[str]]) -> Optional[str]:
    """The Python that runs vLLM in an image with this ENTRYPOINT (a list, as `docker image inspect` gives it);
    None where the entrypoint names neither a Python nor a console script of vLLM."""
    if not entrypoint:
        return None
    command = os.path.basename(entrypoint[0])
    if _PYTHON.match(command):
        return entrypoint[0]
    return _CONSOLE_SCRIPT_PYTHON.get(command)


def check_command(docker: str, image: str, python: str, program: str, arguments: Sequence[str],
                  volumes: Sequence[str] = ()) -> list:
    """The `docker run` that parses the arguments: no network, nothing left behind, the volumes read-only."""
    command = [docker, "run", "--rm", "--network", "none", "--entrypoint", python]
    for volume in volumes:
        command += ["--volume", volume + ":ro"]
    return command + [image, "-c", program] + list(arguments)


def outcome(status: int, stdout: str, stderr: str) -> Outcome:
    """What the check program said, from its last verdict line; unchecked, with Docker's or Python's last words, when
    it said nothing."""
    for line in reversed(stdout.splitlines()):
        try:
            said = json.loads(line)
        except ValueError:
            continue
        if isinstance(said, dict) and said.get("verdict") in (ACCEPTED, REJECTED, UNCHECKED):
            return Outcome(said["verdict"], str(said.get("reason") or ""))
    last_words = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    return Outcome(UNCHECKED, "the check exited with status %d without a verdict%s"
                   % (status, ": " + last_words[-1] if last_words else ""))


def rejection(deployment: str, image: str, reason: str) -> str:
    """One sentence: the deployment, the image, vLLM's reason, then what to fix."""
    return ("Deployment %s, image %s: vLLM rejects the server arguments (%s); correct vllm_service_extra_args, or the "
            "gpufleet_plan setting that adds the argument (no replica was stopped)." % (deployment, image, reason.rstrip(".")))


def unchecked(deployment: str, image: str, reason: str) -> str:
    """One sentence for arguments the image could not check, saying what still catches a bad one."""
    return ("Deployment %s, image %s: the server arguments were not checked before the update (%s); a replica that "
            "rejects them fails its start and is put back on its previous unit." % (deployment, image, reason.rstrip(".")))


def not_in_check_mode(deployment: str, image: str) -> str:
    return ("Deployment %s: a real run checks the server arguments with image %s before it writes any unit; a check run "
            "does not run the image, which may not be on the host yet." % (deployment, image))
