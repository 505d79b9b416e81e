# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._cuda_toolkit import ToolkitPlanError, toolkit_plan


@pytest.mark.parametrize("platform, architectures, branch, version, expected", [
    ("el8", ["kepler"], "470", None, "11.4"),
    ("el8", ["ampere"], "570", None, "12.8"),
    ("debian12", ["blackwell"], "570", None, "12.8"),
    ("ubuntu2404", ["hopper"], "580", None, "12.8"),
    ("ubuntu2404", [], "570", None, "12.8"),
    ("ubuntu2404", None, "570", None, "12.8"),
    ("el8", ["ampere"], "470", "11.4", "11.4"),
    ("el8", ["ampere"], "580", "11.4", "11.4"),
    ("debian12", ["ampere"], "580", "12.8", "12.8"),
])
def test_toolkit_plan(platform, architectures, branch, version, expected):
    plan = toolkit_plan(platform, architectures, branch, version)
    assert plan == {
        "version": expected,
        "package": "cuda-toolkit-%s" % expected.replace(".", "-"),
        "prefix": "/usr/local/cuda-%s" % expected,
    }


@pytest.mark.parametrize("branch, expected", [
    ("470", "11.4"),   # R470 runs up to CUDA 11.4
    ("535", "11.4"),   # R535 runs 12.2, which the collection does not install: the newest below it
    ("570", "12.8"),
    ("580", "12.8"),   # R580 runs 13.0, the newest the collection installs is 12.8
])
def test_default_is_the_newest_toolkit_the_driver_branch_runs(branch, expected):
    assert toolkit_plan("el8", ["ampere"], branch)["version"] == expected


def test_version_given_as_a_yaml_number_is_accepted():
    assert toolkit_plan("el8", ["kepler"], "470", 11.4)["package"] == "cuda-toolkit-11-4"


@pytest.mark.parametrize("platform, architectures, branch, version, words", [
    ("el8", ["kepler"], "470", "12.8", "cuda_toolkit_version 12.8 cannot build for Kepler GPUs"),
    ("debian12", ["kepler"], "470", None, "NVIDIA publishes CUDA 11.4 for rhel8 but not for Debian 12"),
    ("ubuntu2404", ["kepler"], "470", None, "NVIDIA publishes CUDA 11.4 for rhel8 but not for Ubuntu 24.04"),
    ("debian12", ["ampere"], "535", "12.8",
     "cuda_toolkit_version 12.8 needs driver 570.26 or newer but the host's driver is of branch 535: "
     "pin a newer driver_branch or set cuda_toolkit_version to 11.4."),
    ("el8", ["ampere"], "470", "12.8", "needs driver 570.26 or newer but the host's driver is of branch 470"),
    ("el8", ["ampere"], "580", "13.0", "cuda_toolkit_version 13.0 is not one the collection installs: use one of 11.4, 12.8."),
    ("el8", ["ampere"], "580", "12.4", "cuda_toolkit_version 12.4 is not one"),
])
def test_toolkit_plan_refuses(platform, architectures, branch, version, words):
    with pytest.raises(ToolkitPlanError) as caught:
        toolkit_plan(platform, architectures, branch, version)
    message = str(caught.value)
    assert words in message
    assert message.endswith(".")


def test_toolkit_plan_error_is_a_value_error():
    # The host plan turns every ValueError into a refusal naming the host.
    assert issubclass(ToolkitPlanError, ValueError)
