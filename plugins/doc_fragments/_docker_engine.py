# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: documentation fragments may change without notice.

from __future__ import annotations


class ModuleDocFragment:

    # Modules that talk to the Docker engine API through module_utils/_docker_engine.py. Each module documents timeout
    # itself: its explanation names that module's long engine calls (a build, a load).
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - Docker engine API endpoint, such as V(unix:///var/run/docker.sock) or V(tcp://127.0.0.1:2375) (no TLS).
    type: str
    default: unix:///var/run/docker.sock
requirements:
  - Docker SDK for Python 5.0.3 or newer (C(python3-docker) on Debian 12) on the host.
  - A Docker engine answering on O(docker_host).
"""
