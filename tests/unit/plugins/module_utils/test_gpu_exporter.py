# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import catalog_entry
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_exporter import (
    DCGM_EXPORTER,
    DCGM_EXPORTER_PORT,
    TEXTFILE,
    dcgm_supports,
    gpu_exporter,
    profiling_metrics,
)


def gpu(device_id, bus_id="0000:05:00.0"):
    """A GPU as gpu_facts reports it before the driver loads: name and architecture from the catalog."""
    entry = catalog_entry(device_id)
    return {"pci_bus_id": bus_id, "pci_device_id": device_id, "name": entry["name"], "architecture": entry["architecture"],
            "compute_capability": entry["compute_capability"]}


K80 = [gpu("0x102d", "0000:05:00.0"), gpu("0x102d", "0000:06:00.0")]
A40 = gpu("0x2235", "0000:17:00.0")
RTX5090 = gpu("0x2b85", "0000:09:00.0")
# A consumer Kepler card and a GPU of no known architecture, as gpu_facts reports them.
GT710 = {"pci_bus_id": "0000:02:00.0", "name": "GK208B [GeForce GT 710]", "architecture": "kepler", "compute_capability": "3.5"}
NOWHERE = {"pci_bus_id": "0000:42:00.0", "name": None, "architecture": "unknown", "compute_capability": None}


@pytest.mark.parametrize("device_id", ["0x102d", "0x1023", "0x13f2", "0x1b38", "0x1db4", "0x1eb8", "0x2235", "0x2684", "0x26b9",
                                       "0x2330", "0x2901", "0x2b85", "0x2bb5"])
def test_dcgm_supports_every_gpu_of_the_catalog(device_id):
    assert dcgm_supports(gpu(device_id))


@pytest.mark.parametrize("unsupported", [GT710, NOWHERE, {"name": "Quadro K5000", "architecture": "kepler"}],
                         ids=["geforce kepler", "unknown", "quadro kepler"])
def test_dcgm_refuses_kepler_outside_the_tesla_line_and_unknown_gpus(unsupported):
    assert not dcgm_supports(unsupported)


@pytest.mark.parametrize("device_id, expected", [
    ("0x102d", False),  # Tesla K80: Kepler
    ("0x13f2", False),  # Tesla M60: Maxwell
    ("0x1b38", False),  # Tesla P40: Pascal
    ("0x1db4", True),   # V100
    ("0x1eb8", True),   # T4
    ("0x2235", True),   # A40
    ("0x2684", False),  # GeForce RTX 4090
    ("0x2330", True),   # H100
    ("0x2b85", False),  # GeForce RTX 5090
    ("0x2bb5", True),   # RTX PRO 6000 Blackwell Server Edition
])
def test_profiling_metrics_need_volta_or_newer_and_no_geforce(device_id, expected):
    assert profiling_metrics(gpu(device_id)) is expected


def test_a_k80_host_gets_dcgm_exporter_without_profiling_and_is_told_about_r470():
    choice = gpu_exporter(K80)
    assert (choice["exporter"], choice["port"]) == (DCGM_EXPORTER, DCGM_EXPORTER_PORT)
    assert choice["no_profiling_metrics"] == ["Tesla K80 (0000:05:00.0)", "Tesla K80 (0000:06:00.0)"]
    assert "no profiling fields" in choice["reason"]
    assert "R470" in choice["reason"]


def test_an_a40_host_gets_every_field():
    choice = gpu_exporter([A40])
    assert choice == {"exporter": DCGM_EXPORTER, "port": 9400, "no_profiling_metrics": [],
                      "reason": "DCGM supports every GPU of the host."}


def test_an_rtx5090_host_gets_dcgm_exporter_without_profiling():
    choice = gpu_exporter([RTX5090])
    assert choice["exporter"] == DCGM_EXPORTER
    assert choice["no_profiling_metrics"] == ["GeForce RTX 5090 (0000:09:00.0)"]
    assert "R470" not in choice["reason"]


def test_a_mixed_host_names_only_the_gpus_without_profiling():
    choice = gpu_exporter(K80[:1] + [A40])
    assert choice["exporter"] == DCGM_EXPORTER
    assert choice["no_profiling_metrics"] == ["Tesla K80 (0000:05:00.0)"]


@pytest.mark.parametrize("gpus", [[GT710], [A40, NOWHERE]], ids=["geforce kepler", "unknown beside an a40"])
def test_a_host_with_a_gpu_dcgm_does_not_support_gets_the_textfile_exporter(gpus):
    choice = gpu_exporter(gpus)
    assert (choice["exporter"], choice["port"]) == (TEXTFILE, None)
    assert "dcgm-exporter stops at such a GPU" in choice["reason"]
    assert len(choice["no_profiling_metrics"]) == len(gpus)


def test_a_host_without_gpus_needs_no_gpu_exporter():
    assert gpu_exporter([]) == {"exporter": None, "port": None, "no_profiling_metrics": [],
                                "reason": "No NVIDIA GPU: the node exporter is all the host needs."}
