# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Record what the GPU memory preflight (module gpu_memory) reads on a real GPU host while another
process holds GPU memory.

Runs ON a host with one NVIDIA GPU, torch and nvidia-ml-py; PYTHONPATH must resolve
ansible_collections.gpufleet.vllm and ansible-core (the module runs as Ansible would run it).
Starts a Python process that allocates HOLD_GIB with torch and sleeps, then writes into the
directory given as the only argument:
  nvml.json                    NVML's raw answers, the compute processes included (format in
                               tests/unit/nvml_recording.py);
  nvidia-smi-gpus.csv,
  nvidia-smi-compute-apps.csv  nvidia-smi's answers to the module's two queries;
  module-nvml.json,
  module-nvidia-smi.json       what the module returned for one replica on the GPU at
                               gpu_memory_utilization 0.9, through NVML and through nvidia-smi alone;
  run.json                     the holder's pid and size.
Exits 1 when the replayed recording does not give what the live NVML gave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata

import pynvml

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_processes

# The recording format and its replay live with the unit tests that read them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "unit"))
import nvml_recording  # noqa: E402

HOLD_GIB = 20
HOLD = ("import sys, time, torch\n"
        "held = torch.ones(int(sys.argv[1]) << 30, dtype=torch.uint8, device='cuda')\n"
        "torch.cuda.synchronize()\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n")
MODULE = "ansible_collections.gpufleet.vllm.plugins.modules.gpu_memory"


def write(out_dir, name, text):
    with open(os.path.join(out_dir, name), "w") as handle:
        handle.write(text)


def write_json(out_dir, name, data):
    write(out_dir, name, json.dumps(data, indent=2, sort_keys=True) + "\n")


def nvidia_smi(args):
    return subprocess.run(["nvidia-smi"] + list(args), check=True, capture_output=True, text=True).stdout


def run_module(args):
    """The module's result, run as Ansible runs it: a file with ANSIBLE_MODULE_ARGS as its argument."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    # A module that fails exits 1 and prints its result all the same.
    done = subprocess.run([sys.executable, "-m", MODULE, handle.name], capture_output=True, text=True, check=False)
    os.unlink(handle.name)
    if not done.stdout.strip():
        sys.exit("the module printed nothing; stderr: %s" % done.stderr)
    return json.loads(done.stdout)


def record(out_dir):
    recording = nvml_recording.record_nvml(pynvml)
    recording["recorded_with"] = {"nvidia-ml-py": metadata.version("nvidia-ml-py"), "python": sys.version.split()[0]}
    write_json(out_dir, "nvml.json", recording)
    live = _gpu_processes.query_nvml_memory(pynvml)
    # Through JSON, as the unit tests will read it.
    replayed = _gpu_processes.query_nvml_memory(nvml_recording.FakeNvmlReplay(json.loads(json.dumps(recording))))
    write(out_dir, "nvidia-smi-gpus.csv", nvidia_smi(_gpu_processes.NVIDIA_SMI_GPU_ARGS))
    write(out_dir, "nvidia-smi-compute-apps.csv", nvidia_smi(_gpu_processes.NVIDIA_SMI_APP_ARGS))
    return live, replayed


def main():
    out_dir = sys.argv[1]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(HOLD_GIB)], stdout=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "ready":
            sys.exit("the holder did not allocate %d GiB" % HOLD_GIB)
        live, replayed = record(out_dir)
        if live[0] is None:
            sys.exit("NVML did not answer: %s" % live[1])
        uuid = live[0][0]["uuid"]
        args = {"replicas": [{"unit": "vllm-tiny-0", "gpus": [uuid]}], "gpu_memory_utilization": 0.9}
        results = {"nvml": run_module(args), "nvidia-smi": run_module(dict(args, use_nvml=False))}
    finally:
        holder.kill()
        holder.wait()
    for source, result in results.items():
        write_json(out_dir, "module-%s.json" % source, result)
    write_json(out_dir, "run.json", {"holder_pid": holder.pid, "hold_gib": HOLD_GIB})
    print(json.dumps({"holder_pid": holder.pid, "live": live, "results": results}, indent=2))
    if replayed != live:
        sys.exit("the NVML recording replays to %s, the live NVML gave %s" % (replayed, live))


if __name__ == "__main__":
    main()
