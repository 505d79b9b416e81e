# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`, image distribution: the wall time of getting the cpu image onto three hosts against onto one.

Three sandbox hosts (tests/sandbox/host.yml) with empty engines; `site.yml --tags image` with the
sandbox inventory's variables, first for one host (it builds the image), then, with every engine
emptied again, for all three (the first builds it, the other two get a copy: no registry, the
air-gapped path). The build starts from the base image each time, with no layer cache. Target: three
hosts take at most 1.5 times as long as one. Writes .build/bench/distribution.json and prints a
Markdown summary; exits non-zero above the target.

Then the re-run cost across hosts: a whole site.yml run of the one-host fleet of `make demo` and of the three
hosts, then five no-op re-runs of each, in turn, and their medians. Target: the three-host re-run takes at
most 1.5 times the one-host re-run.

`distribution.py image` or `distribution.py rerun` measures one part alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

HOSTS = ["gpufleet-bench-%d" % number for number in (1, 2, 3)]
TARGET_RATIO = 1.5
RERUNS = 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build")
BENCH = os.path.join(BUILD, "bench")
PLAYBOOK = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")


def run(argv, **kwargs):
    # The bench inventory lies under .build/bench, where the sandbox variables' fallback for the build
    # directory would point two levels too deep: name it, as the Makefile does.
    environment = dict(os.environ, GPUFLEET_BUILD_DIR=os.environ.get("GPUFLEET_BUILD_DIR") or BUILD)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=environment, **kwargs)
    if result.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), result.returncode, (result.stderr or result.stdout).strip()[-2000:]))
    return result.stdout


def start_hosts():
    for index, host in enumerate(HOSTS):
        run([PLAYBOOK, "-i", "localhost,", os.path.join(ROOT, "tests", "sandbox", "host.yml"),
             "-e", "sandbox_name=%s" % host, "-e", "sandbox_vllm_port=%d" % (18100 + index)], cwd=ROOT)


def stop_hosts():
    for host in HOSTS:
        run([PLAYBOOK, "-i", "localhost,", os.path.join(ROOT, "tests", "sandbox", "host.yml"),
             "-e", "sandbox_name=%s" % host, "-e", "sandbox_state=absent", "-e", "sandbox_purge=true"], cwd=ROOT)


def write_inventory():
    """The sandbox inventory's variables for the bench hosts."""
    directory = os.path.join(BENCH, "inventory")
    os.makedirs(directory, exist_ok=True)
    group_vars = os.path.join(directory, "group_vars")
    if not os.path.islink(group_vars):
        os.symlink(os.path.join(ROOT, "inventories", "sandbox", "group_vars"), group_vars)
    hosts = dict((host, {"ansible_connection": "community.docker.docker", "ansible_user": "root",
                         "ansible_python_interpreter": "/usr/bin/python3"}) for host in HOSTS)
    with open(os.path.join(directory, "hosts.yml"), "w") as handle:
        json.dump({"all": {"hosts": hosts}}, handle, indent=2)
    return directory


def empty_engines():
    """Every vLLM image and the build cache go; the base image the build starts from stays."""
    for host in HOSTS:
        run(["docker", "exec", host, "bash", "-c",
             "ids=$(docker image ls --quiet --filter 'reference=*gpufleet/vllm-*'); [ -z \"$ids\" ] || docker image rm --force $ids;"
             " docker image prune --force >/dev/null; rm -rf /var/log/gpufleet /var/lib/gpufleet/images"])


def timed_site_run(inventory, limit):
    empty_engines()
    start = time.monotonic()
    run([PLAYBOOK, "site.yml", "-i", inventory, "--tags", "image", "--limit", limit], cwd=ROOT)
    return round(time.monotonic() - start, 1)


def site_run(inventory, limit):
    start = time.monotonic()
    run([PLAYBOOK, "site.yml", "-i", inventory, "--limit", limit], cwd=ROOT)
    return round(time.monotonic() - start, 1)


def reruns(inventory):
    """Median no-op re-runs of a one-host fleet (the demo's sandbox host, inventories/sandbox) and of the three-host
    fleet, taken in turn after a whole run of each, so that both see the machine as it is at that moment: on two
    shared cores one run varies by a second or two."""
    one_host = os.path.join(ROOT, "inventories", "sandbox")
    three_hosts = ",".join(HOSTS)
    site_run(one_host, "all")
    site_run(inventory, three_hosts)
    pairs = [(site_run(one_host, "all"), site_run(inventory, three_hosts)) for dummy in range(RERUNS)]
    return statistics.median(one for one, dummy in pairs), statistics.median(three for dummy, three in pairs)


def image_size(host):
    output = run(["docker", "exec", host, "docker", "image", "ls", "--format", "{{.Size}}", "--filter", "reference=gpufleet/vllm-cpu"])
    return output.split()[0] if output.split() else None


def measure(parts):
    results = {"target": TARGET_RATIO}
    start_hosts()
    try:
        inventory = write_inventory()
        if "image" in parts:
            one = timed_site_run(inventory, HOSTS[0])
            three = timed_site_run(inventory, ",".join(HOSTS))
            results.update(one_host_s=one, three_hosts_s=three, ratio=round(three / one, 3), image_size=image_size(HOSTS[2]))
        if "rerun" in parts:
            rerun_one, rerun_three = reruns(inventory)
            results.update(rerun_one_host_s=rerun_one, rerun_three_hosts_s=rerun_three,
                           rerun_ratio=round(rerun_three / rerun_one, 3))
    finally:
        stop_hosts()
    return results


def main(parts):
    results = measure(parts)
    os.makedirs(BENCH, exist_ok=True)
    with open(os.path.join(BENCH, "distribution.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    if "ratio" in results:
        print("| Hosts | `site.yml --tags image` (s) |\n| --- | --- |\n| 1 (build) | %.1f |\n| 3 (build, 2 copies) | %.1f |"
              % (results["one_host_s"], results["three_hosts_s"]))
        print("\nratio %.2f (target <= %.1f); image %s" % (results["ratio"], TARGET_RATIO, results["image_size"]))
    if "rerun_ratio" in results:
        print("\n| Hosts | no-op `site.yml` re-run (s) |\n| --- | --- |\n| 1 | %.1f |\n| 3 | %.1f |"
              % (results["rerun_one_host_s"], results["rerun_three_hosts_s"]))
        print("\nratio %.2f (target <= %.1f)" % (results["rerun_ratio"], TARGET_RATIO))
    over = [name for name in ("ratio", "rerun_ratio") if results.get(name, 0) > TARGET_RATIO]
    if over:
        sys.exit("Three hosts took more than %.1f times as long as one: %s."
                 % (TARGET_RATIO, ", ".join("%s %.2f" % (name, results[name]) for name in over)))


if __name__ == "__main__":
    # Parts to measure again after a change that touches only them: image, rerun; both by default.
    main(set(sys.argv[1:]) or {"image", "rerun"})
