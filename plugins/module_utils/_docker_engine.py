# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""The Docker engine client of the image modules (Docker SDK for Python 5.0.3 or newer)."""

from __future__ import annotations

import traceback

from ansible.module_utils.common.text.converters import to_native

MISSING_SDK = "docker (the Docker SDK for Python, python3-docker on Debian)"

DOCKER_IMPORT_ERROR = None
try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    # The modules fail on DOCKER_IMPORT_ERROR before they touch the engine; these stand-ins, ordered
    # as the SDK's own, keep their except clauses importable.
    class DockerException(Exception):
        """Stands in for docker.errors.DockerException."""

    class APIError(DockerException):
        """Stands in for docker.errors.APIError."""

    class NotFound(APIError):
        """Stands in for docker.errors.NotFound."""


def connect(docker_host, timeout, error):
    """A low-level client of the engine at docker_host; raises error (an exception class) with one sentence."""
    try:
        # "auto" asks the engine for its API version: SDK 5 would otherwise assume 1.41 and SDK 7
        # a version newer than Debian 12's engine (20.10, API 1.41) accepts.
        return docker.APIClient(base_url=docker_host, version="auto", timeout=timeout)
    except DockerException as exc:
        raise error("The Docker engine does not answer at %s (%s); install and start Docker, or set docker_host."
                    % (docker_host, to_native(exc)))


def image_id(api, reference, error):
    """The engine's ID of the image reference, None when it has none; raises error when the engine fails."""
    try:
        return api.inspect_image(reference)["Id"]
    except NotFound:
        return None
    except APIError as exc:
        raise error("The Docker engine could not inspect %s (%s); check the engine's health." % (reference, to_native(exc)))
