# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet_plan module on real files: hashing on the controller, git refs resolved in a real repository."""

from __future__ import annotations

import functools
import json
import re
import subprocess

import pytest
import yaml

from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.gpufleet.vllm.plugins.module_utils._digest_cache import DigestCache
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import merge_gpus, summarize_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import plan_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import CPU_VLLM_VERSION
from ansible_collections.gpufleet.vllm.plugins.modules import fleet_plan

from conftest import run_main

K80 = "0x102d"


def planned(host, device_ids=(), overrides=None):
    gpus = merge_gpus([{"pci_bus_id": "0000:%02x:00.0" % (5 + index), "pci_device_id": device_id}
                       for index, device_id in enumerate(device_ids)])
    facts = {"gpus": gpus, "gpu_host": summarize_host(gpus), "distribution": "Debian", "distribution_version": "12.7",
             "architecture": "x86_64", "kernel": "6.1.0-40-amd64", "vcpus": 2, "memory_mib": 24576}
    settings = {"model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "overrides": overrides or {}, "cuda_repository_url": "https://x",
                "recipes": ["cpu", "k80", "k80-builder"], "service": {"name": "tiny"}}
    return plan_host(host, facts, settings)


@pytest.fixture
def inputs(tmp_path):
    """Build inputs on the controller: recipes, a wheelhouse and a CA certificate."""
    recipes = tmp_path / "recipes"
    for recipe in ("cpu", "k80", "k80-builder"):
        (recipes / recipe).mkdir(parents=True)
        (recipes / recipe / "Dockerfile").write_text("FROM scratch\nARG VLLM_VERSION\n")
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "tiny_dep-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 fake wheel")
    (wheelhouse / "README").write_text("not a wheel")
    cert = tmp_path / "corp-ca.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return {"recipes_dir": str(recipes), "wheelhouse": str(wheelhouse), "ca_certificates": [str(cert)], "root": tmp_path}


def module_args(inputs, plans, **extra):
    args = dict(plans=plans, hosts=list(plans), recipes_dir=inputs["recipes_dir"], wheelhouse=inputs["wheelhouse"],
                ca_certificates=inputs["ca_certificates"])
    args.update(extra)
    return args


def run_module(capsys, args):
    return run_main(fleet_plan, capsys, args)


def cpu_fleet():
    return {"cpu-01": planned("cpu-01"), "cpu-02": planned("cpu-02"), "cpu-03": planned("cpu-03")}


def reference(capsys, args):
    code, result = run_module(capsys, args)
    assert code == 0, result.get("msg")
    return result["plans"]["cpu-01"]["image"]["reference"]


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com"] + list(args), cwd=str(cwd), check=True,
                   capture_output=True)


@pytest.fixture
def k80_repository(tmp_path):
    """A real git repository with a branch main, standing in for the K80 fork."""
    repository = tmp_path / "vllm37"
    repository.mkdir()
    git("init", "-q", "-b", "main", cwd=repository)
    (repository / "setup.py").write_text("print('vllm')\n")
    git("add", "setup.py", cwd=repository)
    git("commit", "-q", "-m", "first", cwd=repository)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(repository), capture_output=True, text=True, check=True).stdout.strip()
    return "file://%s" % repository, commit


def test_one_cpu_build_serves_three_hosts_with_a_summary_each(capsys, inputs):
    code, result = run_module(capsys, module_args(inputs, cpu_fleet()))
    assert code == 0
    assert result["changed"] is False
    (build,) = result["builds"]
    assert re.match(r"^gpufleet/vllm-cpu:%s-[0-9a-f]{12}$" % re.escape(CPU_VLLM_VERSION), build["reference"])
    assert (build["build_host"], build["hosts"]) == ("cpu-01", ["cpu-01", "cpu-02", "cpu-03"])
    assert [result["plans"][host]["image"]["transfer"] for host in ("cpu-01", "cpu-02", "cpu-03")] == ["build", "copy", "copy"]
    assert result["summaries"]["cpu-02"].startswith(
        "cpu-02: no GPU on Debian 12; no driver; image cpu %s (copied from cpu-01, which builds it)" % build["reference"])


@pytest.mark.parametrize("change", ["recipe", "wheel", "cert", "build_arg", "index"])
def test_reference_changes_with_every_build_input(capsys, inputs, change):
    before = reference(capsys, module_args(inputs, cpu_fleet()))
    plans, args = cpu_fleet(), {}
    if change == "recipe":
        with open(inputs["recipes_dir"] + "/cpu/Dockerfile", "a") as handle:
            handle.write("RUN true\n")
    elif change == "wheel":
        (inputs["root"] / "wheels" / "tiny_dep-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 rebuilt wheel")
    elif change == "cert":
        other = inputs["root"] / "other-ca.crt"
        other.write_text("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n")
        args["ca_certificates"] = [str(other)]
    elif change == "build_arg":
        plans = dict((host, planned(host, overrides={"build_args": {"VLLM_CPU_AVX512BF16": "1"}})) for host in plans)
    else:
        args["pip_extra_index_urls"] = ["https://pypi.example.com/simple"]
    assert reference(capsys, module_args(inputs, plans, **args)) != before


def test_reference_ignores_files_that_are_no_wheels_and_index_credentials(capsys, inputs):
    one = module_args(inputs, cpu_fleet(), pip_extra_index_urls=["https://build:s3cr3t-one@pypi.example.com/simple"])
    two = module_args(inputs, cpu_fleet(), pip_extra_index_urls=["https://build:s3cr3t-two@pypi.example.com/simple"])
    before = reference(capsys, one)
    (inputs["root"] / "wheels" / "notes.txt").write_text("ignored")
    assert reference(capsys, two) == before
    code, result = run_module(capsys, one)
    assert "s3cr3t-one" not in json.dumps(result)


@pytest.fixture
def later_clock(monkeypatch):
    """Digests taken long after the test wrote its files, so that the cache may keep them (a real run hashes older files)."""
    monkeypatch.setattr(fleet_plan, "DigestCache", functools.partial(DigestCache, clock_ns=lambda: 4 * 10 ** 18))


def test_digest_cache_is_written_and_gives_the_same_reference(capsys, inputs, later_clock):
    cache = inputs["root"] / "cache" / "image-digests.json"
    plain = reference(capsys, module_args(inputs, cpu_fleet()))
    assert not cache.exists()
    assert reference(capsys, module_args(inputs, cpu_fleet(), digest_cache=str(cache))) == plain
    wheel = str(inputs["root"] / "wheels" / "tiny_dep-1.0-py3-none-any.whl")
    assert wheel in json.loads(cache.read_text())["files"]
    assert reference(capsys, module_args(inputs, cpu_fleet(), digest_cache=str(cache))) == plain


def test_a_wheel_changed_under_the_cache_changes_the_reference(capsys, inputs, later_clock):
    cache = str(inputs["root"] / "image-digests.json")
    before = reference(capsys, module_args(inputs, cpu_fleet(), digest_cache=cache))
    (inputs["root"] / "wheels" / "tiny_dep-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 other wheel")
    assert reference(capsys, module_args(inputs, cpu_fleet(), digest_cache=cache)) != before


def test_unwritable_digest_cache_only_warns(capsys, inputs, later_clock, monkeypatch):
    # Module warnings collect in a process-wide store: a fresh one keeps this warning out of later tests.
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    blocker = inputs["root"] / "not-a-directory"
    blocker.write_text("")
    code, result = run_module(capsys, module_args(inputs, cpu_fleet(), digest_cache=str(blocker / "image-digests.json")))
    assert code == 0
    assert "Cannot write the digest cache" in json.dumps(result["warnings"])


def test_unreadable_certificate_fails_in_one_sentence(capsys, inputs):
    missing = str(inputs["root"] / "absent.crt")
    code, result = run_module(capsys, module_args(inputs, cpu_fleet(), ca_certificates=[missing]))
    assert code == 1
    assert result["msg"].startswith("Cannot read the image's build inputs on the controller")
    assert missing in result["msg"]


def test_k80_ref_is_resolved_in_the_real_repository(capsys, inputs, k80_repository):
    url, commit = k80_repository
    overrides = {"build_args": {"VLLM_REPO": url}}
    code, result = run_module(capsys, module_args(inputs, {"k80-01": planned("k80-01", [K80] * 4, overrides)}))
    assert code == 0, result.get("msg")
    builder, runtime = result["builds"]
    assert runtime["build_args"]["VLLM_COMMIT"] == commit
    assert runtime["reference"].startswith("gpufleet/vllm-k80:%s-" % commit[:12])
    assert runtime["build_args"]["BUILDER_IMAGE"] == builder["reference"]


def test_k80_ref_that_does_not_resolve_is_refused(capsys, inputs, k80_repository):
    url, dummy = k80_repository
    overrides = {"build_args": {"VLLM_REPO": url}, "vllm_version": "no-such-branch"}
    code, result = run_module(capsys, module_args(inputs, {"k80-01": planned("k80-01", [K80] * 4, overrides)}))
    assert code == 1
    assert result["msg"] == ("k80-01: The git ref no-such-branch does not resolve in %s: set gpufleet_plan.vllm_version to a branch, "
                             "tag or commit that exists there." % url)


def test_unreachable_k80_repository_is_refused_naming_it(capsys, inputs, tmp_path):
    url = "file://%s" % (tmp_path / "nowhere")
    code, result = run_module(capsys, module_args(inputs, {"k80-01": planned("k80-01", [K80] * 4, {"build_args": {"VLLM_REPO": url}})}))
    assert code == 1
    assert result["msg"].startswith("k80-01: The vLLM repository %s cannot be read from the controller" % url)


def test_source_dir_counts_for_the_tag(capsys, inputs, tmp_path):
    source = tmp_path / "vllm-src"
    source.mkdir()
    (source / "setup.py").write_text("print('v1')\n")
    plans = {"k80-01": planned("k80-01", [K80] * 4)}
    code, first = run_module(capsys, module_args(inputs, plans, source_dir=str(source)))
    assert code == 0, first.get("msg")
    (source / "setup.py").write_text("print('v2')\n")
    code, second = run_module(capsys, module_args(inputs, plans, source_dir=str(source)))
    assert first["builds"][1]["reference"].startswith("gpufleet/vllm-k80:local-")
    assert first["builds"][1]["reference"] != second["builds"][1]["reference"]
    assert first["builds"][0]["reference"] == second["builds"][0]["reference"]


def test_missing_source_dir_is_refused(capsys, inputs, tmp_path):
    missing = str(tmp_path / "no-src")
    code, result = run_module(capsys, module_args(inputs, cpu_fleet(), source_dir=missing))
    assert code == 1
    assert result["msg"] == ("vllm_image_source_dir %s is no directory on the controller: point it at a vLLM source tree, or "
                             "leave it unset to build from git." % missing)


def test_argument_spec_matches_the_documentation(check_documented_options):
    check_documented_options(fleet_plan)
    yaml.safe_load(fleet_plan.EXAMPLES)
    assert {"plans", "builds", "summaries"} <= set(yaml.safe_load(fleet_plan.RETURN))
