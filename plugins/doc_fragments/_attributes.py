# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: documentation fragments may change without notice.

from __future__ import annotations


class ModuleDocFragment:

    # The three attributes every module of the collection declares.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Whether the module can run with C(--check) and predict, without touching the host, what a real run would change.
  diff_mode:
    description: Whether the module returns a before/after view of what it changes (or would change in check mode) when run with C(--diff).
  idempotent:
    description:
      - Whether a second run with the same options, on a host nothing else has changed, reports no change.
"""

    # Modules that read and never write; combine with the default fragment.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - The module only reads the host.
  diff_mode:
    support: N/A
    details:
      - The module only reads the host.
  idempotent:
    support: full
"""

    # Modules that return ansible_facts; combine with the default fragment and INFO_MODULE.
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Whether the module returns its findings as C(ansible_facts), available to later tasks without C(register).
    support: full
"""
