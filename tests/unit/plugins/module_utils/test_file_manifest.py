# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.gpufleet.vllm.plugins.filter.file_manifest import FilterModule
from ansible_collections.gpufleet.vllm.plugins.module_utils._file_manifest import file_manifest

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")

# What ansible.builtin.find returns for a model directory on the host (only the keys the manifest reads, and isdir).
FOUND = [
    {"path": "/var/lib/gpufleet/models/tiny/tokenizer.json", "size": 22044, "mtime": 1764704583.5, "isdir": False},
    {"path": "/var/lib/gpufleet/models/tiny/config.json", "size": 557, "mtime": 1764704583.25, "isdir": False},
    {"path": "/var/lib/gpufleet/models/tiny/sub", "size": 4096, "mtime": 1764704583.0, "isdir": True},
    {"path": "/var/lib/gpufleet/models/tiny/sub/.hidden", "size": 1, "mtime": 1764704583.0, "isdir": False},
]
# What the community.general.filetree lookup returns for the same tree on the controller.
TREE = [
    {"path": "config.json", "src": "/srv/tiny/config.json", "state": "file", "size": 557, "mtime": 1764704500.125},
    {"path": "sub", "src": "/srv/tiny/sub", "state": "directory", "size": 4096, "mtime": 1764704500.0},
    {"path": "sub/.hidden", "src": "/srv/tiny/sub/.hidden", "state": "file", "size": 1, "mtime": 1764704500.0},
    {"path": "model.safetensors", "src": "/srv/tiny/model.safetensors", "state": "link", "size": 60, "mtime": 1764704500.5},
]


def test_find_results_become_relative_sorted_entries_without_directories():
    assert file_manifest(FOUND, "/var/lib/gpufleet/models/tiny") == [
        ["config.json", 557, 1764704583.25],
        ["sub/.hidden", 1, 1764704583.0],
        ["tokenizer.json", 22044, 1764704583.5],
    ]


def test_filetree_items_keep_their_relative_paths_and_links():
    assert file_manifest(TREE) == [
        ["config.json", 557, 1764704500.125],
        ["model.safetensors", 60, 1764704500.5],
        ["sub/.hidden", 1, 1764704500.0],
    ]


def test_the_order_of_the_listing_does_not_matter():
    assert file_manifest(list(reversed(FOUND)), "/var/lib/gpufleet/models/tiny") == file_manifest(FOUND, "/var/lib/gpufleet/models/tiny")


@pytest.mark.parametrize("change", [{"size": 558}, {"mtime": 1764704583.26}, {"path": "/var/lib/gpufleet/models/tiny/conf.json"}],
                         ids=["size", "mtime", "name"])
def test_any_change_of_a_file_changes_the_manifest(change):
    changed = [dict(FOUND[1], **change)] + FOUND[2:] + FOUND[:1]
    assert file_manifest(changed, "/var/lib/gpufleet/models/tiny") != file_manifest(FOUND, "/var/lib/gpufleet/models/tiny")


def test_an_empty_listing_gives_an_empty_manifest():
    assert file_manifest([], "/var/lib/gpufleet/models/tiny") == []


def test_the_filter_module_offers_file_manifest_with_its_documentation():
    filters = FilterModule().filters()
    assert filters == {"file_manifest": file_manifest}
    with open(os.path.join(FILTER_DIR, "file_manifest.yml")) as handle:
        assert yaml.safe_load(handle)["DOCUMENTATION"]["name"] == "file_manifest"
