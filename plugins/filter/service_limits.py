# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils._journal_cause import failure_cause as _failure_cause
from ansible_collections.gpufleet.vllm.plugins.module_utils._journal_cause import failure_headline
from ansible_collections.gpufleet.vllm.plugins.module_utils._start_limit import start_limit


def failure_cause(lines):
    cause = _failure_cause(lines)
    return cause.sentence if cause else None


class FilterModule:
    def filters(self):
        return {"start_limit": start_limit, "failure_cause": failure_cause, "failure_headline": failure_headline}
