# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""Reading the host's procfs, sysfs and systemd files, which may vanish or refuse between listing and reading them."""

from __future__ import annotations


def read_text(path):
    """A file's text, or None where it is gone (a process that ended since it was listed) or unreadable.

    Bytes that are not UTF-8 are replaced rather than refused: a stray byte in a unit file or a process name must not
    hide the rest of it.
    """
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
