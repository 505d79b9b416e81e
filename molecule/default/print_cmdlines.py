# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print the argument list of every process, one line each (what `ps` shows; the host has no ps)."""

import glob

for path in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        with open(path, "rb") as handle:
            print(handle.read().replace(b"\0", b" ").decode(errors="replace"))
    except OSError:
        # The process ended while the list was read.
        pass
