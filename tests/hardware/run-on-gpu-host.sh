#!/usr/bin/env bash
# Validate detection and planning on a real GPU host that has no network.
# Usage: tests/hardware/run-on-gpu-host.sh WHEEL_DIR OUTPUT_DIR
# WHEEL_DIR holds ansible-core and the dependencies the host lacks; the host's python3
# must already have nvidia-ml-py (pynvml), PyYAML and Jinja2.
set -euo pipefail
wheels=$1
out=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)

python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/site" "$wheels"/*.whl
export PYTHONPATH=$work/site:$work/collections
export PATH=$work/site/bin:$PATH
mkdir -p "$work/collections/ansible_collections/gpufleet"
ln -s "$repo" "$work/collections/ansible_collections/gpufleet/vllm"
ANSIBLE_PYTHON_INTERPRETER=$(command -v python3)
export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_PYTHON_INTERPRETER

export LC_ALL=C.UTF-8
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/nvidia-smi.txt"
python3 "$repo/tests/hardware/record.py" "$out"
RECORD_DIR=$out python3 -m ansible.cli.playbook -i localhost, "$repo/tests/hardware/validate.yml"
python3 -m ansible.cli.playbook --check --diff -i localhost, "$repo/tests/hardware/driver-check.yml" \
  | tee "$out/driver-check.txt"
