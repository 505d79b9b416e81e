# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When each host's driver roll ran, from a site.yml run's ansible.posix.json output.

Usage: roll_order.py RUN.json -> prints, per host, {"stages": [...], "plays": [...], "drained": bool,
"start": ..., "end": ...} as JSON: the roll stages the host went through in order, the plays they ran in,
whether the drain stopped a unit, and when its first stage began and its last one ended.
"""

import json
import sys

# Role tasks are named "<role> : <task>"; each stage is told by its task names.
STAGES = (
    ("drain", ("Stop the drained replicas",)),
    ("install", ("Install the driver packages",)),
    ("verify", ("Check the driver that stays", "Check that the installed driver answers")),
    ("serve", ("Serve the drained replicas again",)),
)


def stage_of(task_name):
    name = task_name.split(" : ", 1)[-1]
    for stage, names in STAGES:
        if name in names:
            return stage
    return None


def order(run):
    hosts = {}
    for play in run["plays"]:
        for task in play["tasks"]:
            stage = stage_of(task["task"]["name"])
            if stage is None:
                continue
            for host, result in task["hosts"].items():
                # A skipped include is no stage run; a skipped check inside verify.yml is that stage's answer there.
                if result.get("skipped") and stage != "verify":
                    continue
                seen = hosts.setdefault(host, {"stages": [], "plays": [], "drained": False, "start": None, "end": None})
                if stage not in seen["stages"]:
                    seen["stages"].append(stage)
                if play["play"]["name"] not in seen["plays"]:
                    seen["plays"].append(play["play"]["name"])
                seen["drained"] = seen["drained"] or (stage == "drain" and bool(result.get("changed")))
                seen["start"] = min(filter(None, (seen["start"], task["task"]["duration"]["start"])))
                seen["end"] = max(filter(None, (seen["end"], task["task"]["duration"]["end"])))
    return hosts


def main():
    with open(sys.argv[1]) as handle:
        text = handle.read()
    # Warnings may precede the JSON document.
    print(json.dumps(order(json.loads(text[text.index("{"):]))))


if __name__ == "__main__":
    main()
