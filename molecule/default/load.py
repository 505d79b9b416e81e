# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep a router busy until told to stop, and count what clients would have seen fail.

  python3 load.py URL KEY_FILE MODEL STOP_FILE [CONCURRENCY]

Completions go to URL/v1/completions from CONCURRENCY threads (default 1) until STOP_FILE exists, each
thread pausing PAUSE_S between requests, so that a replica restarting on the same two cores still
gets to start; then one JSON line: requests that succeeded, requests that failed and the first few
failures.
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

PAUSE_S = 0.2


def complete(url, key, model):
    body = json.dumps({"model": model, "prompt": "Hello", "max_tokens": 4, "temperature": 0}).encode()
    request = urllib.request.Request(url + "/v1/completions", data=body, headers={
        "Content-Type": "application/json", "Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=120) as response:
        json.load(response)


def worker(url, key, model, stop_file, tally, lock):
    while not os.path.exists(stop_file):
        try:
            complete(url, key, model)
            outcome = None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            outcome = "%s: %s" % (type(exc).__name__, exc)
        with lock:
            if outcome is None:
                tally["succeeded"] += 1
            else:
                tally["failed"] += 1
                tally["failures"] = (tally["failures"] + [outcome])[:5]
        time.sleep(PAUSE_S)


def main():
    url, key_file, model, stop_file = sys.argv[1:5]
    concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    with open(key_file) as handle:
        key = handle.read().strip()
    tally = {"succeeded": 0, "failed": 0, "failures": []}
    lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(url, key, model, stop_file, tally, lock)) for _index in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(tally))


if __name__ == "__main__":
    main()
