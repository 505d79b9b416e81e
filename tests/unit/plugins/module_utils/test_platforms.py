# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._platforms import (
    PLATFORMS,
    PlatformError,
    cuda_repository,
    platform_key,
)

NVIDIA = "https://developer.download.nvidia.com/compute/cuda/repos"


@pytest.mark.parametrize("distribution, version, expected", [
    ("Debian", "12", "debian12"),
    ("Debian", "12.7", "debian12"),
    ("Ubuntu", "24.04", "ubuntu2404"),
    ("Rocky", "8.10", "el8"),
    ("Rocky", "8", "el8"),
    ("AlmaLinux", "8.9", "el8"),
    ("RedHat", "8.10", "el8"),
    ("OracleLinux", "8.10", "el8"),
    ("CentOS", "8.5", "el8"),
])
def test_supported_distributions_have_a_platform(distribution, version, expected):
    assert platform_key(distribution, version) == expected


def test_aarch64_hosts_are_supported():
    assert platform_key("Ubuntu", "24.04", "aarch64") == "ubuntu2404"


@pytest.mark.parametrize("distribution, version, words", [
    # Ubuntu's minor version is another release: 24.10 is not 24.04, nor is 24 alone.
    ("Ubuntu", "24.10", "not Ubuntu 24.10"),
    ("Ubuntu", "24", "not Ubuntu 24:"),
    ("Ubuntu", "22.04", "not Ubuntu 22.04"),
    ("Debian", "11.11", "not Debian 11.11"),
    ("Debian", "13.1", "not Debian 13.1"),
    ("Rocky", "9.6", "not Rocky 9.6"),
    ("CentOS", "7", "not CentOS 7"),
    ("Fedora", "40", "not Fedora 40"),
    ("Debian", None, "not Debian"),
])
def test_other_releases_are_refused_by_name(distribution, version, words):
    with pytest.raises(PlatformError, match=words) as caught:
        platform_key(distribution, version)
    assert str(caught.value).startswith("gpufleet.vllm installs on Rocky Linux 8, Ubuntu 24.04 and Debian 12")


@pytest.mark.parametrize("architecture", ["ppc64le", "armv7l", "s390x"])
def test_unsupported_architecture_is_refused_before_the_distribution(architecture):
    with pytest.raises(PlatformError, match="on x86_64 and aarch64 hosts, not %s" % architecture):
        platform_key("Debian", "12.7", architecture)


def test_platform_error_is_a_value_error():
    # The host plan turns every ValueError into a refusal naming the host.
    assert issubclass(PlatformError, ValueError)


@pytest.mark.parametrize("platform, architecture, url, key", [
    ("debian12", "x86_64", NVIDIA + "/debian12/x86_64", NVIDIA + "/debian12/x86_64/3bf863cc.pub"),
    ("ubuntu2404", "x86_64", NVIDIA + "/ubuntu2404/x86_64", NVIDIA + "/ubuntu2404/x86_64/3bf863cc.pub"),
    ("el8", "x86_64", NVIDIA + "/rhel8/x86_64", NVIDIA + "/rhel8/x86_64/D42D0685.pub"),
    # NVIDIA names the aarch64 server repositories sbsa.
    ("ubuntu2404", "aarch64", NVIDIA + "/ubuntu2404/sbsa", NVIDIA + "/ubuntu2404/sbsa/3bf863cc.pub"),
])
def test_cuda_repository_of_each_platform(platform, architecture, url, key):
    repository = cuda_repository(platform, architecture, NVIDIA)
    assert repository["url"] == url
    assert repository["key_url"] == key
    assert repository["name"] == "cuda-%s" % PLATFORMS[platform]["cuda_repository"]
    assert repository["directory"] == PLATFORMS[platform]["cuda_repository"]
    assert PLATFORMS[platform]["label"] in repository["description"]


def test_cuda_repository_follows_a_mirror_with_or_without_trailing_slash():
    for base in ("https://mirror.example.com/cuda/repos", "https://mirror.example.com/cuda/repos/"):
        assert cuda_repository("el8", "x86_64", base)["url"] == "https://mirror.example.com/cuda/repos/rhel8/x86_64"


@pytest.mark.parametrize("platform, family, docker, sdk, pinning", [
    ("debian12", "apt", ["docker.io", "python3-docker", "python3-requests"], "package", True),
    ("ubuntu2404", "apt", ["docker.io", "python3-docker", "python3-requests"], "package", True),
    ("el8", "dnf", ["docker-ce", "docker-ce-cli", "containerd.io"], "pip", False),
])
def test_platform_table_install_methods(platform, family, docker, sdk, pinning):
    data = PLATFORMS[platform]
    assert data["family"] == family
    assert data["docker_packages"] == docker
    assert data["docker_sdk"] == sdk
    assert data["toolkit_pinning"] is pinning
