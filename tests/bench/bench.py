# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: what the systemd-managed deployment costs, on the sandbox host that `make demo` deployed.

The host serves its model from two replica units, vllm-tiny-0 (port 8001, core 0) and vllm-tiny-1
(port 8002, core 1), behind the router unit vllm-tiny-router (port 8000). Same image, model and arguments
throughout:
  1. replica 0's unit against its own `docker run` line started by hand, detached, as vllm-by-hand on
     127.0.0.1:8009 (same core, secrets file, shared memory and compile cache): seconds from start to
     /health OK, and completion throughput at a fixed concurrency. The router and replica 1 are stopped
     for these measurements and the two servers run one at a time, so that only one server uses the
     machine's two cores; all three units are started again afterwards, also when a measurement fails;
  2. completion throughput at the same concurrency straight to replica 0, through the router sending to
     replica 0 alone (replica 1 out of its rotation: what the extra hop costs), and through the router
     sending to both (what it gives); the router and replica 1 keep running throughout;
  3. wall time of a first site.yml run, of the re-run (the fast path: the host holds what the first run
     left) and of a re-run that takes every stage (gpufleet_full_run). The first run finds the image built,
     the router installed and the compile caches filled, but no replica or router unit, no secrets file and
     no model copy.
`bench.py unit`, `bench.py router` or `bench.py rerun` measures those parts alone. Load comes from load.py, run on the
sandbox host. Writes .build/bench/results.json and prints a Markdown
summary. Exits non-zero when the unit / by-hand or the router / replica 0 throughput ratio is below 0.95, or when the
re-run takes more than 15 % of the first run or more than 15 s.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HOST = "gpufleet-sandbox-1"
SERVED = "tiny"
REPLICA, REPLICA_URL = "vllm-tiny-0", "http://127.0.0.1:8001"
OTHER_REPLICA, OTHER_REPLICA_URL = "vllm-tiny-1", "http://127.0.0.1:8002"
ROUTER, ROUTER_URL = "vllm-tiny-router", "http://127.0.0.1:8000"
BY_HAND, BY_HAND_PORT = "vllm-by-hand", 8009
BY_HAND_URL = "http://127.0.0.1:%d" % BY_HAND_PORT
SECRETS = "/etc/gpufleet/secrets/vllm-tiny.env"
STARTS = 3
REQUESTS, CONCURRENCY, MAX_TOKENS = 256, 4, 32
TARGET = 0.95
RERUN_TARGET_RATIO, RERUN_TARGET_S = 0.15, 15
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build")
LOAD = "python3 /tmp/load.py"
PARTS = {"unit", "router", "rerun"}


def run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), result.returncode, result.stderr.strip()))
    return result.stdout


def on_host(command):
    return run(["docker", "exec", HOST, "bash", "-c", command])


def timed(command):
    start = time.monotonic()
    output = on_host(command)
    return time.monotonic() - start, output


def throughput(url, key):
    return json.loads(on_host("%s throughput %s %s %s %d %d %d" % (
        LOAD, url, shlex.quote(key), SERVED, REQUESTS, CONCURRENCY, MAX_TOKENS)))


def hand_command(unit_text):
    """The unit's `docker run`, detached, under another name and port: the same server, no systemd."""
    exec_start = re.search(r"^ExecStart=(.*)$", unit_text.replace("\\\n", " "), re.M).group(1)
    # The unit template escapes % and $ for systemd (%% and $$) and quotes words with spaces as shlex reads them.
    words = [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(exec_start)]
    words[words.index("--name") + 1] = BY_HAND
    publish = words.index("--publish") + 1
    words[publish] = "127.0.0.1:%d:%s" % (BY_HAND_PORT, words[publish].rsplit(":", 1)[1])
    words.insert(2, "--detach")
    return " ".join(shlex.quote(word) for word in words)


def machine():
    with open("/proc/cpuinfo") as handle:
        model = re.search(r"^model name\s*:\s*(.*)$", handle.read(), re.M).group(1)
    with open("/proc/meminfo") as handle:
        memory_kib = int(re.search(r"^MemTotal:\s*(\d+)", handle.read(), re.M).group(1))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 1048576, 1),
            "kernel": platform.release(), "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()}


def site_run(*options):
    start = time.monotonic()
    subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "site.yml", "-i", "inventories/sandbox"]
                   + list(options), check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def unit_against_by_hand(results, key, by_hand):
    """Replica 0's unit, then the same server by hand; each measured right after its last timed start."""
    on_host("systemctl stop %s %s" % (ROUTER, OTHER_REPLICA))
    try:
        for dummy in range(STARTS):
            on_host("systemctl stop %s" % REPLICA)
            seconds, dummy_output = timed("systemctl --no-block start %s && %s health %s 900" % (REPLICA, LOAD, REPLICA_URL))
            results["unit_start_s"].append(round(seconds, 2))
        results["unit_throughput"] = throughput(REPLICA_URL, key)
        on_host("systemctl stop %s" % REPLICA)
        for dummy in range(STARTS):
            # `docker run --rm` removes a stopped container in the background: wait for it first.
            on_host("docker rm --force %s >/dev/null 2>&1; while docker inspect %s >/dev/null 2>&1; do sleep 0.2; done"
                    % (BY_HAND, BY_HAND))
            seconds, dummy_output = timed("%s >/dev/null && %s health %s 900" % (by_hand, LOAD, BY_HAND_URL))
            results["by_hand_start_s"].append(round(seconds, 2))
            if len(results["by_hand_start_s"]) < STARTS:
                on_host("docker stop --time 30 %s" % BY_HAND)
        results["by_hand_throughput"] = throughput(BY_HAND_URL, key)
    finally:
        on_host("docker stop --time 30 %s >/dev/null 2>&1 || true" % BY_HAND)
        # Returns once both replicas answer /health and the router /readiness (their ExecStartPost).
        on_host("systemctl start %s %s %s" % (REPLICA, OTHER_REPLICA, ROUTER))


def router_against_replica(results, key):
    """Through the router and straight to replica 0, with both replicas and the router running in all three.

    What the router costs: it sends to replica 0 alone (replica 1 out of its rotation) against straight
    to replica 0. What it gives: it sends to both against straight to replica 0.
    """
    # The router's /health answers 200 only once it has seen every replica healthy.
    on_host("%s health %s 900 >/dev/null" % (LOAD, ROUTER_URL))
    results["replica_throughput"] = throughput(REPLICA_URL, key)
    results["router_both_throughput"] = throughput(ROUTER_URL, key)
    rotation("remove", OTHER_REPLICA_URL)
    try:
        results["router_throughput"] = throughput(ROUTER_URL, key)
    finally:
        rotation("add", OTHER_REPLICA_URL)


def rotation(action, replica_url):
    """Take a replica out of the router's rotation (remove) or put it back (add)."""
    url = "%s/%s_worker?url=%s" % (ROUTER_URL, action, replica_url)
    on_host("python3 -c \"import urllib.request as r; r.urlopen(r.Request('%s', method='POST'))\"" % url)


def first_run_and_rerun(results):
    """The first run finds the image built but no replica or router unit, secrets file or model copy."""
    # `;`: the files are removed even when systemctl fails on one of the units.
    on_host("systemctl disable --now %s %s %s; rm -f /etc/systemd/system/vllm-tiny-*.service %s && "
            "rm -rf /var/lib/gpufleet/models && systemctl daemon-reload" % (ROUTER, REPLICA, OTHER_REPLICA, SECRETS))
    results["site_first_run_s"] = round(site_run(), 1)
    results["site_rerun_s"] = round(site_run(), 1)
    results["site_full_rerun_s"] = round(site_run("-e", "gpufleet_full_run=true"), 1)


def ratio(numerator, denominator):
    return round(numerator / denominator, 3)


def report(results):
    load = "%d requests, concurrency %d, %d tokens each" % (REQUESTS, CONCURRENCY, MAX_TOKENS)
    if "throughput_ratio" in results:
        report_unit(results, load)
    if "router_throughput_ratio" in results:
        report_router(results, load)
    if "site_rerun_ratio" in results:
        report_rerun(results)
    print(json.dumps(results, indent=2))


def report_unit(results, load):
    unit_tp, hand_tp = results["unit_throughput"], results["by_hand_throughput"]
    print("| Measure | systemd unit %s | by hand | unit / by hand |" % REPLICA)
    print("| --- | --- | --- | --- |")
    unit_start, hand_start = statistics.median(results["unit_start_s"]), statistics.median(results["by_hand_start_s"])
    print("| start to /health OK, median of %d (s) | %.1f | %.1f | %.2f |" % (STARTS, unit_start, hand_start, unit_start / hand_start))
    print("| requests/s (%s) | %.2f | %.2f | %.3f |" % (
        load, unit_tp["requests_per_s"], hand_tp["requests_per_s"], ratio(unit_tp["requests_per_s"], hand_tp["requests_per_s"])))
    print("| tokens/s | %.1f | %.1f | %.3f |" % (unit_tp["tokens_per_s"], hand_tp["tokens_per_s"], results["throughput_ratio"]))


def report_router(results, load):
    router_tp, replica_tp = results["router_throughput"], results["replica_throughput"]
    both_tp = results["router_both_throughput"]
    print("\n| Measure (%s) | straight to replica 0 (port 8001) | router (port 8000) to replica 0 alone | router to both replicas |"
          % load)
    print("| --- | --- | --- | --- |")
    print("| requests/s | %.2f | %.2f | %.2f |" % (replica_tp["requests_per_s"], router_tp["requests_per_s"], both_tp["requests_per_s"]))
    print("| tokens/s | %.1f | %.1f | %.1f |" % (replica_tp["tokens_per_s"], router_tp["tokens_per_s"], both_tp["tokens_per_s"]))
    print("| against straight to replica 0 | 1 | %.3f | %.3f |" % (
        results["router_throughput_ratio"], ratio(both_tp["tokens_per_s"], replica_tp["tokens_per_s"])))


def report_rerun(results):
    print("\n| site.yml run | Wall time (s) |")
    print("| --- | --- |")
    print("| first run (image built; replica and router units, secrets and model copy removed) | %.1f |"
          % results["site_first_run_s"])
    print("| re-run, fast path (`changed=0`) | %.1f (%.0f %% of the first) |"
          % (results["site_rerun_s"], 100 * results["site_rerun_ratio"]))
    print("| re-run taking every stage (`-e gpufleet_full_run=true`, `changed=0`) | %.1f |" % results["site_full_rerun_s"])


def main(parts):
    with open(os.path.join(BUILD, "sandbox", "api-key")) as handle:
        key = handle.read().split()[0]
    run(["docker", "cp", os.path.join(ROOT, "tests", "bench", "load.py"), HOST + ":/tmp/load.py"])
    by_hand = hand_command(on_host("cat /etc/systemd/system/%s.service" % REPLICA))
    results = {"machine": machine(), "by_hand_command": by_hand, "unit_start_s": [], "by_hand_start_s": []}

    # In this order: the second part needs the units that the first starts again, the third removes them.
    if "unit" in parts:
        unit_against_by_hand(results, key, by_hand)
        results["throughput_ratio"] = ratio(results["unit_throughput"]["tokens_per_s"],
                                            results["by_hand_throughput"]["tokens_per_s"])
    if "router" in parts:
        router_against_replica(results, key)
        results["router_throughput_ratio"] = ratio(results["router_throughput"]["tokens_per_s"],
                                                   results["replica_throughput"]["tokens_per_s"])
    if "rerun" in parts:
        first_run_and_rerun(results)
        results["site_rerun_ratio"] = ratio(results["site_rerun_s"], results["site_first_run_s"])
    os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
    with open(os.path.join(BUILD, "bench", "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    report(results)

    failed = ["%s %.3f < %.2f" % (name, results[name], TARGET) for name in ("throughput_ratio", "router_throughput_ratio")
              if name in results and results[name] < TARGET]
    failed += ["%s %.3f > %.2f" % (name, results[name], limit)
               for name, limit in (("site_rerun_ratio", RERUN_TARGET_RATIO), ("site_rerun_s", RERUN_TARGET_S))
               if name in results and results[name] > limit]
    if failed:
        sys.stderr.write("Missed target: %s\n" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    # Parts to measure again after a change that touches only them: unit, router, rerun; all by default.
    sys.exit(main(set(sys.argv[1:]) or PARTS))
