# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import recovery_after_reload


def gpu_recovery(probe_results):
    """The replicas to recreate and those to look at, from the registered results of a loop of GPU probes over replicas."""
    return recovery_after_reload([
        {"replica": result["item"]["unit"], "gpus": len(result["item"]["gpus"]), "rc": result.get("rc"),
         "output": "\n".join(part for part in (result.get("stdout"), result.get("stderr"), result.get("msg")) if part)}
        for result in probe_results])


class FilterModule:
    def filters(self):
        return {"gpu_recovery": gpu_recovery}
