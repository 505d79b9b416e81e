# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""gpu_facts and vllm_plan through real ansible-playbook runs.

The GPUs are a sysfs tree written by the test (there is no GPU here); everything else, from option
parsing through AnsiballZ to check mode and the failure message, is what a user's run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# Two K80 boards: four GK210 functions behind their PCIe switches, as sysfs shows them.
K80_HOST = {
    "0000:05:00.0": ("0x10de", "0x102d", "0x030200"),
    "0000:06:00.0": ("0x10de", "0x102d", "0x030200"),
    "0000:85:00.0": ("0x10de", "0x102d", "0x030200"),
    "0000:86:00.0": ("0x10de", "0x102d", "0x030200"),
    "0000:03:00.0": ("0x10b5", "0x8747", "0x060400"),
}

PLAY = """
- name: Detect and plan
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Detect
      gpufleet.vllm.gpu_facts:
        sysfs_root: {sysfs}
        use_nvml: false
        use_nvidia_smi: false
    - name: Plan
      gpufleet.vllm.vllm_plan:
        gpus: "{{{{ ansible_facts.gpufleet_gpus }}}}"
        gpu_host: "{{{{ ansible_facts.gpufleet_gpu_host }}}}"
        model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
        tensor_parallel_size: {tp}
      register: planned
    - name: Record
      ansible.builtin.copy:
        dest: {record}
        content: "{{{{ {{'facts': ansible_facts, 'plan': planned.plan}} | to_json }}}}"
        mode: "0644"
      check_mode: false
"""


def write_sysfs(root, functions):
    for bus_id, (vendor, device, pci_class) in functions.items():
        path = os.path.join(root, "bus", "pci", "devices", bus_id)
        os.makedirs(path)
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            with open(os.path.join(path, name), "w") as handle:
                handle.write(value + "\n")


def run_play(tmp_path, tp, *options):
    sysfs = tmp_path / "sys"
    write_sysfs(str(sysfs), K80_HOST)
    record = tmp_path / "record.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(sysfs=sysfs, record=record, tp=tp))
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    result = subprocess.run([PLAYBOOK, "-i", "localhost,", str(playbook)] + list(options),
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    recorded = json.loads(record.read_text()) if record.exists() else None
    return result, recorded


def test_k80_host_gets_the_k80_plan_in_check_mode(tmp_path):
    result, recorded = run_play(tmp_path, 2, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed=1" in result.stdout  # only the record file, written outside check mode
    host = recorded["facts"]["gpufleet_gpu_host"]
    assert (host["gpu_count"], host["kernel_module_flavor"], host["driver_branch_max"], host["compatible"]) == (4, "proprietary", "470", True)
    assert [gpu["pci_bus_id"] for gpu in recorded["facts"]["gpufleet_gpus"]] == sorted(K80_HOST)[1:]
    # A flat tree has no sysfs links: the topology is unknown, and the plan pairs the dies in bus order.
    assert [gpu["pci_bridges"] for gpu in recorded["facts"]["gpufleet_gpus"]] == [None] * 4
    plan = recorded["plan"]
    assert (plan["variant"], plan["cuda_version"], plan["dtype"], plan["tensor_parallel_size"]) == ("k80", "11.4", "float32", 2)
    assert plan["env"]["NCCL_P2P_DISABLE"] == "1"
    assert "--enforce-eager" in plan["args"]


def test_bad_tensor_parallel_size_fails_with_one_sentence(tmp_path):
    result, recorded = run_play(tmp_path, 3)
    assert result.returncode == 2
    assert recorded is None
    failure = [line for line in result.stdout.splitlines() if line.startswith("fatal:")]
    assert len(failure) == 1 and "tensor_parallel_size 3 would span 2 Tesla K80 boards" in result.stdout, result.stdout
