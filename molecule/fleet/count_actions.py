# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Count what a site.yml run did to images, from its ansible.posix.json output: builds, pulls, copies, changes.

Usage: count_actions.py RUN.json  -> prints {"builds": n, "pulls": n, "copies": n, "changed": {host: n}} as JSON.
"""

import json
import sys

# The json callback replaces each result's "action" with the module name, so the tasks of the vllm_image
# role that make or move an image are told apart by name; a changed result is one image made or moved.
TASKS = (("builds", "Ask whether this build ended "), ("pulls", "Pull "), ("copies", "Load the image and check its ID"))


def count(run):
    counts = dict((kind, 0) for kind, dummy in TASKS)
    for play in run["plays"]:
        for task in play["tasks"]:
            # Role tasks are named "<role> : <task>".
            name = task["task"]["name"].split(" : ", 1)[-1]
            for kind, prefix in TASKS:
                if name.startswith(prefix):
                    counts[kind] += sum(1 for result in task["hosts"].values() if result.get("changed"))
    counts["changed"] = dict((host, stats["changed"]) for host, stats in run["stats"].items())
    return counts


def main():
    with open(sys.argv[1]) as handle:
        text = handle.read()
    # Warnings may precede the JSON document.
    print(json.dumps(count(json.loads(text[text.index("{"):]))))


if __name__ == "__main__":
    main()
