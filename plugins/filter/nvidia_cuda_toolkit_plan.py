# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._cuda_toolkit import plan_for_facts


def nvidia_cuda_toolkit_plan(gpu_host, facts, version=None):
    """The cuda_toolkit role's decisions for a host; see nvidia_cuda_toolkit_plan.yml."""
    return plan_for_facts(facts, (gpu_host or {}).get("architectures", []), version,
                          (gpu_host or {}).get("driver_branch"))


class FilterModule:
    def filters(self):
        return {"nvidia_cuda_toolkit_plan": nvidia_cuda_toolkit_plan}
