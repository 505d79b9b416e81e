# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure one vLLM endpoint: start-up wait and completion throughput at a fixed concurrency.

Runs on the host that serves (the sandbox host has python3 but no extra packages), so that the
endpoints under comparison (a replica, the router, a server started by hand) are reached the same
way. Prints one JSON object.

  python3 load.py health URL TIMEOUT_S             seconds until URL/health answers 200
  python3 load.py throughput URL KEY MODEL REQUESTS CONCURRENCY MAX_TOKENS
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request


def wait_healthy(url, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise SystemExit("%s/health did not answer within %s s" % (url, timeout))


def complete(url, key, model, max_tokens):
    body = json.dumps({"model": model, "prompt": "The capital of France is", "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True}).encode()
    request = urllib.request.Request(url + "/v1/completions", data=body, headers={
        "Content-Type": "application/json", "Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)["usage"]["completion_tokens"]


def throughput(url, key, model, requests, concurrency, max_tokens):
    # Warm-up at the measured concurrency: the first batches of each size compile kernels.
    run_batch(url, key, model, 4 * concurrency, concurrency, max_tokens)
    elapsed, tokens = run_batch(url, key, model, requests, concurrency, max_tokens)
    return {"requests": requests, "concurrency": concurrency, "max_tokens": max_tokens, "seconds": round(elapsed, 3),
            "requests_per_s": round(requests / elapsed, 3), "tokens_per_s": round(sum(tokens) / elapsed, 2)}


def run_batch(url, key, model, requests, concurrency, max_tokens):
    remaining = list(range(requests))
    lock = threading.Lock()
    tokens = []

    def worker():
        while True:
            with lock:
                if not remaining:
                    return
                remaining.pop()
            count = complete(url, key, model, max_tokens)
            with lock:
                tokens.append(count)

    threads = [threading.Thread(target=worker) for dummy in range(concurrency)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if len(tokens) != requests:
        raise SystemExit("only %d of %d requests completed" % (len(tokens), requests))
    return elapsed, tokens


def main():
    mode = sys.argv[1]
    if mode == "health":
        print(json.dumps({"seconds": round(wait_healthy(sys.argv[2], float(sys.argv[3])), 2)}))
    elif mode == "throughput":
        url, key, model = sys.argv[2:5]
        requests, concurrency, max_tokens = (int(value) for value in sys.argv[5:8])
        print(json.dumps(throughput(url, key, model, requests, concurrency, max_tokens)))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
