# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The deployment name that names systemd units and containers, case by case."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._unit_names import (
    MAX_LENGTH,
    UnitNameError,
    deployment_name,
)


def refused(*args):
    with pytest.raises(UnitNameError) as caught:
        deployment_name(*args)
    return str(caught.value)


@pytest.mark.parametrize("served, name", [
    # The served names of the collection's own inventories keep the deployment names they had.
    ("qwen2.5-7b", "qwen2.5-7b"),
    ("llama-3.1-8b", "llama-3.1-8b"),
    ("tinyllama", "tinyllama"),
    ("Llama 3.1 8B Instruct", "llama-3.1-8b-instruct"),
    ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama-llama-3.1-8b-instruct"),
    ("  My Model  ", "my-model"),
    ("qwen / 7b", "qwen-7b"),
    ("a--b", "a--b"),
    ("-_.gemma:2b!", "gemma-2b"),
    ("Mistral 7B (v0.3)", "mistral-7b-v0.3"),
    ("modèle français", "mod-le-fran-ais"),
])
def test_served_model_names_become_unit_names(served, name):
    assert deployment_name(None, served) == name


def test_a_given_name_wins_over_the_served_model_name():
    assert deployment_name("chat", "Llama 3.1 8B Instruct") == "chat"
    assert deployment_name("qwen_2.5", None) == "qwen_2.5"


@pytest.mark.parametrize("name, served", [(None, None), ("", ""), (None, "")])
def test_nothing_given_names_the_deployment_vllm(name, served):
    assert deployment_name(name, served) == "vllm"


def test_a_served_model_name_without_letter_or_digit_is_refused():
    assert refused(None, "日本語") == (
        "The served model name '日本語' has no letter or digit to name the deployment's systemd units and containers "
        "(vllm-<name>-<index>): set vllm_service_name to a name of lowercase letters, digits and '-'.")
    assert "has no letter or digit" in refused(None, " -- ")


def test_a_given_name_that_cannot_name_units_is_refused_with_a_suggestion():
    assert refused("My Model", None) == (
        "vllm_service_name 'My Model' cannot name the deployment's systemd units and containers: use at most %d lowercase "
        "letters, digits, '.', '_' and '-', starting with a letter or digit, for example 'my-model'." % MAX_LENGTH)
    assert refused("-x", None).endswith("for example 'x'.")
    assert refused("???", None).endswith("starting with a letter or digit.")


def test_long_names_fit_the_longest_unit_name_systemd_takes():
    derived = deployment_name(None, "x" * 300)
    assert len("vllm-%s-router.service" % derived) == 255
    assert refused("y" * (MAX_LENGTH + 1), None).startswith("vllm_service_name 'yyy")
    assert deployment_name(None, "a" * (MAX_LENGTH - 1) + " b") == "a" * (MAX_LENGTH - 1)
