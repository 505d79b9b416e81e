# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PRIVATE to the collection: the distributions the collection installs on, and how each one installs.

The one table every stage reads: the driver, the CUDA toolkit and the container runtime take their
repository names, package families and Docker packages from here. Sources as in _driver_plan
(gpu-driver-facts.md sections 9-12) and ansible-conventions.md section 1 (EL8 Python).
"""

from __future__ import annotations

# NVIDIA names its repository directories after the distribution, and the aarch64 server ones sbsa
# (gpu-driver-facts.md 9); the container toolkit's flat apt repository uses Debian's names.
CUDA_REPOSITORY_ARCH = {"x86_64": "x86_64", "aarch64": "sbsa"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

# Debian 12 and Ubuntu 24.04 package Docker Engine as docker.io and its SDK as python3-docker
# (community.docker needs python3-requests too). EL8 has no Docker Engine of its own, so Docker CE
# comes from Docker's repository and the SDK from PyPI: EL8 ships python3-docker only for the
# platform Python 3.6, which ansible-core 2.19 cannot use.
_APT_DOCKER = {"docker_packages": ["docker.io", "python3-docker", "python3-requests"], "docker_sdk": "package"}

# The vLLM router runs from a virtual environment on the host. It needs Python >= 3.8: Debian and
# Ubuntu's python3 is new enough and needs only its venv module; EL8's platform Python is 3.6, so
# there it gets the AppStream python3.11. pip is pointed at the system CA store, where a site adds the
# CA of its TLS-inspecting proxy.
_APT_ROUTER_PYTHON = {"router_python": {"interpreter": "python3", "packages": ["python3-venv"],
                                        "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}}

# docker_engine: the Docker Engine the platform's package source installs, which decides how a bare host's containers get
# their GPUs (_device_injection) before Docker is there to ask; once it is, the installed version decides. Only the
# range a version falls in matters there (before 25.0, before 28.2, 28.2 or newer), so a value holds while its source
# stays in that range.
PLATFORMS = {
    "debian12": dict(_APT_DOCKER, **_APT_ROUTER_PYTHON, **{
        "label": "Debian 12",
        "family": "apt",
        "cuda_repository": "debian12",
        "cuda_repository_key": "3bf863cc.pub",
        # Debian's archive carries R470 as nvidia-tesla-470-* and R535 as nvidia-tesla-535-*,
        # proprietary only; nothing >= 570 (DEBARC).
        "archive_branches": {"470": ("proprietary",), "535": ("proprietary",)},
        "apt_components": ["main", "contrib", "non-free", "non-free-firmware"],
        "initramfs_command": ["update-initramfs", "-u"],
        "dkms_signing_key": "/var/lib/dkms/mok.pub",
        "toolkit_pinning": True,
        "docker_engine": {"version": "20.10.24", "source": "docker.io 20.10.24+dfsg1 of bookworm (packages.debian.org)"},
    }),
    "ubuntu2404": dict(_APT_DOCKER, **_APT_ROUTER_PYTHON, **{
        "label": "Ubuntu 24.04",
        "family": "apt",
        "cuda_repository": "ubuntu2404",
        "cuda_repository_key": "3bf863cc.pub",
        # Canonical's restricted component: 470-server and the newer -server[-open] branches (UBARC).
        "archive_branches": None,
        "apt_components": None,
        "initramfs_command": ["update-initramfs", "-u"],
        "dkms_signing_key": "/var/lib/shim-signed/mok/MOK.der",
        "toolkit_pinning": True,
        # noble itself released 24.0.7; Ubuntu backports Docker's releases to its LTS (its Docker SRU exception).
        "docker_engine": {"version": "29.1.3", "source": "docker.io-app 29.1.3-0ubuntu3~24.04.2 of noble-updates and "
                                                         "noble-security (packages.ubuntu.com)"},
    }),
    "el8": {
        "label": "Rocky Linux 8",
        "family": "dnf",
        "cuda_repository": "rhel8",
        "cuda_repository_key": "D42D0685.pub",
        "archive_branches": {},
        "apt_components": None,
        "initramfs_command": ["dracut", "--force"],
        "dkms_signing_key": "/var/lib/dkms/mok.pub",
        "docker_packages": ["docker-ce", "docker-ce-cli", "containerd.io"],
        "docker_sdk": "pip",
        "router_python": {"interpreter": "python3.11", "packages": ["python3.11"], "ca_bundle": "/etc/pki/tls/certs/ca-bundle.crt"},
        # gpufleet.vllm.el_packages installs by package name only.
        "toolkit_pinning": False,
        "docker_engine": {"version": "28.2", "source": "docker-ce of Docker's repository, whose current release is 28.2 or newer "
                                                       "(download.docker.com)"},
    },
}

_EL8_DISTRIBUTIONS = ("Rocky", "AlmaLinux", "RedHat", "OracleLinux", "CentOS")


class PlatformError(ValueError):
    """A host the collection cannot install on; the text is one sentence."""


def platform_key(distribution, version, architecture="x86_64"):
    """Platform key ("debian12", "ubuntu2404", "el8") of a distribution and its version, or raise PlatformError.

    version: Ansible's distribution_version ("12.7", "24.04", "8.10"). Ubuntu releases differ in
    their minor version (24.10 is another release), so Ubuntu needs exactly 24.04.
    """
    version = str(version or "")
    major = version.split(".", maxsplit=1)[0]
    if architecture not in CUDA_REPOSITORY_ARCH:
        raise PlatformError(
            "gpufleet.vllm installs on x86_64 and aarch64 hosts, not %s: use a supported host." % architecture)
    if distribution == "Debian" and major == "12":
        return "debian12"
    if distribution == "Ubuntu" and version == "24.04":
        return "ubuntu2404"
    if distribution in _EL8_DISTRIBUTIONS and major == "8":
        return "el8"
    raise PlatformError(
        "gpufleet.vllm installs on Rocky Linux 8, Ubuntu 24.04 and Debian 12, not %s %s: "
        "use one of those, or leave the host out of the play." % (distribution, version))


def cuda_repository(platform, architecture, base_url):
    """NVIDIA's CUDA repository of a platform under base_url (NVIDIA's or a mirror): name, URL and key URL.

    The driver and the toolkit add the same repository, so both take it from here and never
    write two definitions of one source.
    """
    data = PLATFORMS[platform]
    url = "%s/%s/%s" % (str(base_url).rstrip("/"), data["cuda_repository"], CUDA_REPOSITORY_ARCH[architecture])
    return {
        "name": "cuda-%s" % data["cuda_repository"],
        "directory": data["cuda_repository"],
        "url": url,
        "key_url": "%s/%s" % (url, data["cuda_repository_key"]),
        "description": "NVIDIA CUDA and drivers for %s" % data["label"],
    }
