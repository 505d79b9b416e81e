# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _gpu_catalog as catalog

from conftest import fixture_path


@pytest.mark.parametrize("device_id, name, chip, architecture, cc, memory", [
    ("0x102d", "Tesla K80", "GK210", "kepler", "3.7", 11441),
    ("0x17fd", "Tesla M40", "GM200", "maxwell", "5.2", None),
    ("0x13f2", "Tesla M60", "GM204", "maxwell", "5.2", 8192),
    ("0x1b38", "Tesla P40", "GP102", "pascal", "6.1", 24576),
    ("0x15f7", "Tesla P100 PCIe 12GB", "GP100", "pascal", "6.0", 12288),
    ("0x15f8", "Tesla P100 PCIe 16GB", "GP100", "pascal", "6.0", 16384),
    ("0x1db1", "Tesla V100 SXM2 16GB", "GV100", "volta", "7.0", 16384),
    ("0x1df6", "Tesla V100S PCIe 32GB", "GV100", "volta", "7.0", 32768),
    ("0x1eb8", "Tesla T4", "TU104", "turing", "7.5", 16384),
    ("0x2236", "A10", "GA102", "ampere", "8.6", 24576),
    ("0x20b7", "A30 PCIe", "GA100", "ampere", "8.0", 24576),
    ("0x2235", "A40", "GA102", "ampere", "8.6", 46068),
    ("0x20b2", "A100 SXM4 80GB", "GA100", "ampere", "8.0", 81920),
    ("0x27b8", "L4", "AD104", "ada", "8.9", 24576),
    ("0x26b5", "L40", "AD102", "ada", "8.9", 49152),
    ("0x26b9", "L40S", "AD102", "ada", "8.9", 49152),
    ("0x2330", "H100 SXM5 80GB", "GH100", "hopper", "9.0", 81559),
    ("0x2331", "H100 PCIe", "GH100", "hopper", "9.0", 81920),
    ("0x2335", "H200 SXM 141GB", "GH100", "hopper", "9.0", 143771),
    ("0x2901", "B200", "GB100", "blackwell", "10.0", None),
    ("0x2204", "GeForce RTX 3090", "GA102", "ampere", "8.6", 24576),
    ("0x2684", "GeForce RTX 4090", "AD102", "ada", "8.9", 24576),
    ("0x2b85", "GeForce RTX 5090", "GB202", "blackwell", "12.0", 32607),
    ("0x2bb5", "RTX PRO 6000 Blackwell Server Edition", "GB202", "blackwell", "12.0", 98304),
])
def test_catalog_entry(device_id, name, chip, architecture, cc, memory):
    entry = catalog.catalog_entry(device_id)
    assert entry == {
        "pci_device_id": device_id,
        "name": name,
        "chip": chip,
        "architecture": architecture,
        "compute_capability": cc,
        "memory_mib": memory,
    }


@pytest.mark.parametrize("ids, architecture, cc", [
    (["0x1db1", "0x1db4", "0x1db5", "0x1db6", "0x1df6", "0x1db8", "0x1df5"], "volta", "7.0"),
    (["0x20b0", "0x20b1", "0x20b2", "0x20b3", "0x20b5", "0x20f1"], "ampere", "8.0"),
    (["0x2330", "0x2331", "0x2321", "0x2336", "0x2337", "0x2338", "0x2339", "0x2335", "0x233b"], "hopper", "9.0"),
    (["0x2901", "0x2909"], "blackwell", "10.0"),
    (["0x2b85", "0x2b87", "0x2b8c", "0x2bb1", "0x2bb5"], "blackwell", "12.0"),
])
def test_required_id_families_are_listed(ids, architecture, cc):
    assert [(catalog.catalog_entry(i)["architecture"], catalog.catalog_entry(i)["compute_capability"]) for i in ids] == \
        [(architecture, cc)] * len(ids)


@pytest.mark.parametrize("device_id, host", [("0x2330", "h100"), ("0x2335", "h200")])
def test_rows_marked_nvml_hold_what_nvml_reported_on_the_recorded_host(device_id, host):
    # Before a driver is loaded the catalog is all gpu_facts knows; it must give what NVML gives after.
    with open(fixture_path(host, "raw.json")) as handle:
        recorded = [gpu for gpu in json.load(handle)["nvml"]["gpus"] if gpu["pci_device_id"] == device_id]
    assert recorded
    assert [catalog.catalog_entry(device_id)["memory_mib"]] * len(recorded) == [gpu["memory_mib"] for gpu in recorded]


def test_every_catalog_row_resolves_through_its_chip():
    unresolved = [i for i in sorted(catalog._GPU_ROWS)
                  if catalog.catalog_entry(i)["architecture"] == "unknown" or catalog.catalog_entry(i)["compute_capability"] is None]
    assert unresolved == []


@pytest.mark.parametrize("value, expected", [
    ("0x102D", "0x102d"),
    ("102d", "0x102d"),
    (0x2B85, "0x2b85"),
    ("0x2B8510DE", "0x2b85"),
    (0x2B8510DE, "0x2b85"),
    ("", None),
    (None, None),
    ("zz", None),
])
def test_normalize_device_id(value, expected):
    assert catalog.normalize_device_id(value) == expected


@pytest.mark.parametrize("chip, architecture, cc, normalized", [
    ("GK104GL", "kepler", "3.0", "GK104"),
    ("GK107GLM", "kepler", "3.0", "GK107"),
    ("GK110BGL", "kepler", "3.5", "GK110"),
    ("GK180GL", "kepler", "3.5", "GK180"),
    ("GK210GL", "kepler", "3.7", "GK210"),
    ("GM107", "maxwell", "5.0", "GM107"),
    ("GM108M", "maxwell", "5.0", "GM108"),
    ("GM206GL", "maxwell", "5.2", "GM206"),
    ("GP100GL", "pascal", "6.0", "GP100"),
    ("GP104BM", "pascal", "6.1", "GP104"),
    ("GV100GL", "volta", "7.0", "GV100"),
    ("TU117M", "turing", "7.5", "TU117"),
    ("GA100", "ampere", "8.0", "GA100"),
    ("GA107BM", "ampere", "8.6", "GA107"),
    ("AD103M / AD104M", "ada", "8.9", "AD103"),
    ("GH100", "hopper", "9.0", "GH100"),
    ("GB102", "blackwell", "10.0", "GB102"),
    ("GB203M / GN22", "blackwell", "12.0", "GB203"),
    ("GB207GLM", "blackwell", "12.0", "GB207"),
])
def test_chip_rules(chip, architecture, cc, normalized):
    assert catalog.chip_info(chip) == {"chip": normalized, "architecture": architecture, "compute_capability": cc}


@pytest.mark.parametrize("chip, expected", [
    # Known family, chip number no rule covers: architecture kept, CC not guessed.
    ("GB110", {"chip": "GB110", "architecture": "blackwell", "compute_capability": None}),
    ("GK11x", {"chip": None, "architecture": "unknown", "compute_capability": None}),
    ("GB20B", {"chip": None, "architecture": "unknown", "compute_capability": None}),
    ("NV43M", {"chip": None, "architecture": "unknown", "compute_capability": None}),
    ("", {"chip": None, "architecture": "unknown", "compute_capability": None}),
    (None, {"chip": None, "architecture": "unknown", "compute_capability": None}),
    # Alternatives from different families: refuse to choose.
    ("GK106 / GM107", {"chip": None, "architecture": "unknown", "compute_capability": None}),
])
def test_chip_rules_never_guess(chip, expected):
    assert catalog.chip_info(chip) == expected


@pytest.mark.parametrize("text, expected", [
    ("GB202 [GeForce RTX 5090]", ("GB202", "GeForce RTX 5090")),
    ("AD103M / GN21-X11 [GeForce RTX 4090 Laptop GPU]", ("AD103M / GN21-X11", "GeForce RTX 4090 Laptop GPU")),
    ("GA102GL", ("GA102GL", None)),
    ("", (None, None)),
])
def test_split_pci_ids_name(text, expected):
    assert catalog.split_pci_ids_name(text) == expected


def test_resolve_device_prefers_catalog_then_pci_ids_then_unknown():
    assert catalog.resolve_device("0x102d", "GK110GL [Wrong name]")["known_by"] == "catalog"
    assert catalog.resolve_device("0x2230", "GA102GL [RTX A6000]") == {
        "pci_device_id": "0x2230", "name": "RTX A6000", "chip": "GA102", "architecture": "ampere",
        "compute_capability": "8.6", "memory_mib": None, "known_by": "pci.ids"}
    assert catalog.resolve_device("0x2e12", "GB20B [GB10]") == {
        "pci_device_id": "0x2e12", "name": "GB10", "chip": None, "architecture": "unknown",
        "compute_capability": None, "memory_mib": None, "known_by": None}
    assert catalog.resolve_device("0x3f00") == {
        "pci_device_id": "0x3f00", "name": None, "chip": None, "architecture": "unknown",
        "compute_capability": None, "memory_mib": None, "known_by": None}


def test_pci_ids_chip_wins_over_marketing_name():
    # pci.ids names two different chips "GeForce GTX 750 Ti"; the chip code decides.
    assert catalog.resolve_device("0x11c7", "GK106 [GeForce GTX 750 Ti]")["architecture"] == "kepler"
    assert catalog.resolve_device("0x1380", "GM107 [GeForce GTX 750 Ti]")["architecture"] == "maxwell"


@pytest.mark.parametrize("architecture, flavors, low, high", [
    ("kepler", ("proprietary",), None, "470"),
    ("maxwell", ("proprietary",), None, "580"),
    ("pascal", ("proprietary",), None, "580"),
    ("volta", ("proprietary",), None, "580"),
    ("turing", ("proprietary", "open"), None, None),
    ("ampere", ("proprietary", "open"), None, None),
    ("ada", ("proprietary", "open"), "525", None),
    ("hopper", ("proprietary", "open"), "525", None),
    ("blackwell", ("open",), "570", None),
])
def test_architecture_requirements(architecture, flavors, low, high):
    req = catalog.architecture_requirements(architecture)
    assert (req["flavors"], req["branch_min"], req["branch_max"]) == (flavors, low, high)


def test_unknown_architecture_has_no_requirements():
    assert catalog.architecture_requirements("unknown") is None
    assert catalog.describe_requirements("unknown") == "an unknown driver"


@pytest.mark.parametrize("architecture, text", [
    ("kepler", "proprietary kernel modules of branch <= 470"),
    ("blackwell", "open kernel modules of branch >= 570"),
    ("hopper", "either kernel module flavor of branch >= 525"),
    ("ampere", "either kernel module flavor of any branch"),
])
def test_describe_requirements(architecture, text):
    assert catalog.describe_requirements(architecture) == text


@pytest.mark.parametrize("cc, architecture", [
    ("3.7", "kepler"), ("3.0", "kepler"), ("5.2", "maxwell"), ("6.1", "pascal"), ("7.0", "volta"), ("7.2", "volta"),
    ("7.5", "turing"), ("8.0", "ampere"), ("8.6", "ampere"), ("8.7", "ampere"), ("8.9", "ada"), ("9.0", "hopper"),
    ("10.0", "blackwell"), ("10.3", "blackwell"), ("12.0", "blackwell"), ((12, 0), "blackwell"), ((3, 7), "kepler"),
    ("2.1", "unknown"), ("8.8", "unknown"), (None, "unknown"), ("", "unknown"),
])
def test_architecture_for_cc(cc, architecture):
    assert catalog.architecture_for_cc(cc) == architecture


@pytest.mark.parametrize("cuda, driver", [
    ("11.4", "470.42.01"), ("11.8", "520.61.05"), ("12.0", "525.60.13"), ("12.2", "535.54.03"),
    ("12.8", "570.26"), ("12.8.1", "570.26"), ("12.9", "575.51.03"), ("13.0", "580.65.06"),
    ("13.1", "590.44.01"), ("13.2", "595.45.04"),
])
def test_cuda_min_driver(cuda, driver):
    assert catalog.cuda_min_driver(cuda) == driver


@pytest.mark.parametrize("cuda", ["12.7", "10.2", "12"])
def test_cuda_min_driver_rejects_unknown_versions(cuda):
    with pytest.raises(ValueError):
        catalog.cuda_min_driver(cuda)


@pytest.mark.parametrize("driver, cuda", [
    ("470.256.02", "11.4"), ("470.42.01", "11.4"), ("470.42.00", None), ("460.106.00", None),
    ("520.61.05", "11.8"), ("535.261.03", "12.2"), ("550.163.01", "12.4"), ("570.26", "12.8"),
    ("570.124.06", "12.8"), ("575.57.08", "12.9"), ("580.95.05", "13.0"), ("580.159.04", "13.0"),
    ("590.48.01", "13.1"), ("595.45.04", "13.2"),
])
def test_driver_max_cuda(driver, cuda):
    assert catalog.driver_max_cuda(driver) == cuda


@pytest.mark.parametrize("branch, cuda", [
    ("470", "11.4"), ("535", "12.2"), ("550", "12.4"), ("560", "12.6"), ("565", "12.6"), ("570", "12.8"),
    ("575", "12.9"), ("580", "13.0"), ("590", "13.1"), (595, "13.2"),
])
def test_branch_max_cuda(branch, cuda):
    assert catalog.branch_max_cuda(branch) == cuda


def test_branch_max_cuda_rejects_branches_before_470():
    with pytest.raises(ValueError, match="older than R470"):
        catalog.branch_max_cuda("460")


def test_version_key_compares_numerically():
    assert catalog.version_key("12.10") > catalog.version_key("12.8")
    assert catalog.version_key("570.124.06") == (570, 124, 6)
    assert catalog.version_key("470.256.02") < catalog.version_key("570.26")
    assert catalog.version_key(580) == (580,)


@pytest.mark.parametrize("architectures, branch", [
    (["kepler"], "470"),
    (["kepler", "ampere"], "470"),
    (("ampere", "blackwell"), "570"),
    (["hopper"], "570"),
    ([], "570"),
])
def test_default_driver_branch(architectures, branch):
    assert catalog.default_driver_branch(architectures) == branch


@pytest.mark.parametrize("flavors, label", [
    (("proprietary", "open"), "any"), (("open",), "open"), (["proprietary"], "proprietary"), ((), None),
])
def test_flavor_label(flavors, label):
    assert catalog.flavor_label(flavors) == label
