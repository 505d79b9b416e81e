# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host our build machines cannot reach, but it first
looks for a cached copy. Installed at that cache path, this script bootstraps pip from the
interpreter's bundled ensurepip and then lets pip install the version ansible-test asked
for from the package index.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip options that plain pip does not understand.
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    pip_arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + pip_arguments)


if __name__ == "__main__":
    main()
