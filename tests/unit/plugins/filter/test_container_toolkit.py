# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import yaml

from ansible_collections.gpufleet.vllm.plugins.filter.container_toolkit import FilterModule
from ansible_collections.gpufleet.vllm.plugins.module_utils._toolkit_floor import FLOOR

FILTERS = FilterModule().filters()
FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")


def test_the_warning_filter_is_documented():
    with open(os.path.join(FILTER_DIR, "container_toolkit_warning.yml")) as handle:
        assert yaml.safe_load(handle)["DOCUMENTATION"]["name"] == "container_toolkit_warning"


def test_an_old_installed_toolkit_draws_a_warning_naming_the_version_to_upgrade_to():
    warning = FILTERS["container_toolkit_warning"]("1.17.4-1")
    assert warning.startswith("The installed NVIDIA Container Toolkit 1.17.4-1 lacks the container-escape fixes of CVE-2025-23266")
    assert "upgrade it to %s or newer" % FLOOR in warning


def test_a_toolkit_at_the_floor_or_none_installed_draws_no_warning():
    assert FILTERS["container_toolkit_warning"]("%s-1" % FLOOR) is None
    assert FILTERS["container_toolkit_warning"](None) is None
