# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""The deployment name, which names a deployment's systemd units and containers (vllm-<name>-<index>,
vllm-<name>-router) and the key by which the service role finds them again.

A served model name is free text ("Llama 3.1 8B Instruct", "meta-llama/Llama-3.1-8B-Instruct") that may hold
characters no unit or container name can; the deployment name derived from it cannot.
"""

from __future__ import annotations

import re

# systemd takes letters, digits and ":-_.\" in unit names (systemd.unit(5)), Docker [a-zA-Z0-9][a-zA-Z0-9_.-]+ in container
# names. Lowercase letters, digits, '.', '_' and '-' suit both and are what vllm_service_name has always accepted, so
# that deployments named before keep their names, and with them their units.
_DEPLOYMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# A run of characters no name may hold becomes one '-', together with any '-' around it.
_UNFIT_RUN = re.compile(r"[^a-z0-9_.]*[^a-z0-9_.-][^a-z0-9_.]*")
_SEPARATORS = "-_."
# systemd refuses unit names longer than 255 characters, and vllm-<name>-router.service is the longest one.
MAX_LENGTH = 255 - len("vllm-") - len("-router.service")
DEFAULT_NAME = "vllm"


class UnitNameError(ValueError):
    """A name that cannot name a deployment's units and containers; the text is one sentence."""


def deployment_name(name=None, served_model_name=None):
    """The deployment name: vllm_service_name as given, else derived from the served model name, else "vllm".

    A given name must already be one (lowercase letters, digits, '.', '_' and '-', starting with a letter or digit), for
    the operator chose it; a served model name is lowercased, each run of other characters becomes one '-', separators
    are trimmed from both ends, and the result is cut to MAX_LENGTH. Raises UnitNameError.
    """
    if name not in (None, ""):
        return _checked(str(name))
    if served_model_name in (None, ""):
        return DEFAULT_NAME
    derived = _derived(str(served_model_name))
    if not derived:
        raise UnitNameError(
            "The served model name %r has no letter or digit to name the deployment's systemd units and containers "
            "(vllm-<name>-<index>): set vllm_service_name to a name of lowercase letters, digits and '-'."
            % (served_model_name,))
    return derived


def _derived(text):
    return _UNFIT_RUN.sub("-", text.lower()).strip(_SEPARATORS)[:MAX_LENGTH].rstrip(_SEPARATORS)


def _checked(name):
    if _DEPLOYMENT_NAME.match(name) and len(name) <= MAX_LENGTH:
        return name
    suggestion = _derived(name)
    instead = ", for example %r" % suggestion if suggestion else ""
    raise UnitNameError(
        "vllm_service_name %r cannot name the deployment's systemd units and containers: use at most %d lowercase letters, "
        "digits, '.', '_' and '-', starting with a letter or digit%s." % (name, MAX_LENGTH, instead))
