# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: what the systemd-managed deployment costs against vLLM started by hand.

On the sandbox host that `make demo` deployed, with the same image, model and arguments:
  1. seconds from `systemctl start` to /health OK, against `docker run` of the image by hand;
  2. completion throughput at a fixed concurrency through the unit and through the hand-started
     server (one at a time: the machine has two cores);
  3. wall time of a first site.yml run (service removed, image cached) and of the re-run.
Writes .build/bench/results.json and prints a Markdown summary.
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
UNIT = "vllm-tiny"
BY_HAND = "vllm-by-hand"
SERVED = "tiny"
STARTS = 3
REQUESTS, CONCURRENCY, MAX_TOKENS = 256, 4, 32
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build")


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


def hand_command(unit_text):
    """The unit's `docker run`, detached, under another name and port: the same server, no systemd."""
    exec_start = re.search(r"^ExecStart=(.*?)\n(?=\S)", unit_text.replace("\\\n", " "), re.M | re.S).group(1)
    words = shlex.split(exec_start)
    words[words.index("--name") + 1] = BY_HAND
    publish = words.index("--publish") + 1
    words[publish] = "127.0.0.1:8001:8000"
    words.insert(2, "--detach")
    return " ".join(shlex.quote(word) for word in words)


def machine():
    with open("/proc/cpuinfo") as handle:
        model = re.search(r"^model name\s*:\s*(.*)$", handle.read(), re.M).group(1)
    with open("/proc/meminfo") as handle:
        memory_kib = int(re.search(r"^MemTotal:\s*(\d+)", handle.read(), re.M).group(1))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 1048576, 1),
            "kernel": platform.release(), "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()}


def site_run():
    start = time.monotonic()
    subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "site.yml", "-i", "inventories/sandbox"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main():
    with open(os.path.join(BUILD, "sandbox", "api-key")) as handle:
        key = handle.read().split()[0]
    run(["docker", "cp", os.path.join(ROOT, "tests", "bench", "load.py"), HOST + ":/tmp/load.py"])
    by_hand = hand_command(on_host("cat /etc/systemd/system/%s.service" % UNIT))
    load = "python3 /tmp/load.py"
    results = {"machine": machine(), "unit_start_s": [], "by_hand_start_s": []}

    # Each server is measured right after its last timed start, the same way.
    for dummy in range(STARTS):
        on_host("systemctl stop %s" % UNIT)
        seconds, dummy_output = timed("systemctl --no-block start %s && %s health http://127.0.0.1:8000 900" % (UNIT, load))
        results["unit_start_s"].append(round(seconds, 2))
    results["unit_throughput"] = json.loads(on_host("%s throughput http://127.0.0.1:8000 %s %s %d %d %d" % (
        load, key, SERVED, REQUESTS, CONCURRENCY, MAX_TOKENS)))
    on_host("systemctl stop %s" % UNIT)
    try:
        for dummy in range(STARTS):
            # `docker run --rm` removes a stopped container in the background: wait for it first.
            on_host("docker rm --force %s >/dev/null 2>&1; while docker inspect %s >/dev/null 2>&1; do sleep 0.2; done"
                    % (BY_HAND, BY_HAND))
            seconds, dummy_output = timed("%s >/dev/null && %s health http://127.0.0.1:8001 900" % (by_hand, load))
            results["by_hand_start_s"].append(round(seconds, 2))
            if len(results["by_hand_start_s"]) < STARTS:
                on_host("docker stop --time 30 %s" % BY_HAND)
        results["by_hand_throughput"] = json.loads(on_host("%s throughput http://127.0.0.1:8001 %s %s %d %d %d" % (
            load, key, SERVED, REQUESTS, CONCURRENCY, MAX_TOKENS)))
    finally:
        on_host("docker stop --time 30 %s >/dev/null 2>&1 || true" % BY_HAND)

    # The first run finds the image built but no service, model copy or secrets.
    on_host("systemctl disable --now %s; rm -f /etc/systemd/system/%s.service /etc/gpufleet/secrets/%s.env; "
            "rm -rf /var/lib/gpufleet/models; systemctl daemon-reload" % (UNIT, UNIT, UNIT))
    results["site_first_run_s"] = round(site_run(), 1)
    results["site_rerun_s"] = round(site_run(), 1)

    unit_tp, hand_tp = results["unit_throughput"], results["by_hand_throughput"]
    results["throughput_ratio"] = round(unit_tp["tokens_per_s"] / hand_tp["tokens_per_s"], 3)
    os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
    with open(os.path.join(BUILD, "bench", "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)

    print("| Measure | systemd unit | by hand | unit / by hand |")
    print("| --- | --- | --- | --- |")
    unit_start, hand_start = statistics.median(results["unit_start_s"]), statistics.median(results["by_hand_start_s"])
    print("| start to /health OK, median of %d (s) | %.1f | %.1f | %.2f |" % (STARTS, unit_start, hand_start, unit_start / hand_start))
    print("| requests/s (%d requests, concurrency %d, %d tokens each) | %.2f | %.2f | %.3f |" % (
        REQUESTS, CONCURRENCY, MAX_TOKENS, unit_tp["requests_per_s"], hand_tp["requests_per_s"],
        unit_tp["requests_per_s"] / hand_tp["requests_per_s"]))
    print("| tokens/s | %.1f | %.1f | %.3f |" % (unit_tp["tokens_per_s"], hand_tp["tokens_per_s"], results["throughput_ratio"]))
    print("\nsite.yml: first run %.1f s, re-run %.1f s (%.0f %%)" % (
        results["site_first_run_s"], results["site_rerun_s"], 100 * results["site_rerun_s"] / results["site_first_run_s"]))
    print(json.dumps(results, indent=2))
    return 0 if results["throughput_ratio"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
