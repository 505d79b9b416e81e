# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._driver_plan import (
    DriverPlanError,
    branch_of,
    choose_driver,
    driver_install,
    foreign_branch_packages,
    loaded_driver_suitable,
    parse_apt_simulation,
    plan,
    secure_boot_enabled,
    upstream_version,
)


def host(architectures, flavor, low, high, default, count=1, **loaded):
    data = {
        "gpu_count": count, "compatible": True, "problems": [], "architectures": architectures,
        "kernel_module_flavor": flavor, "driver_branch_min": low, "driver_branch_max": high,
        "default_driver_branch": default, "driver_loaded": False, "driver_version": None,
        "driver_branch": None, "loaded_kernel_module_flavor": None, "driver_fits_gpus": None,
    }
    data.update(loaded)
    return data


K80 = host(["kepler"], "proprietary", None, "470", "470", count=4)
RTX5090 = host(["blackwell"], "open", "570", None, "570")
A40 = host(["ampere"], "any", None, None, "570")
H100_580 = host(["hopper"], "any", "525", None, "570", driver_loaded=True, driver_version="580.95.05",
                driver_branch="580", loaded_kernel_module_flavor="open", driver_fits_gpus=True)
MIXED = dict(host(["blackwell", "kepler"], None, "570", "470", "470", count=2), compatible=False,
             problems=["Tesla K80 (0000:05:00.0) needs proprietary kernel modules of branch <= 470 while "
                       "GeForce RTX 5090 (0000:09:00.0) needs open kernel modules of branch >= 570: move one card."])
NO_GPU = host([], None, None, None, None, count=0)


@pytest.mark.parametrize("gpu_host, branch, flavor, expected", [
    (K80, None, None, ("470", "proprietary")),
    (RTX5090, None, None, ("570", "open")),
    (A40, None, None, ("570", "open")),
    (A40, "535", None, ("535", "proprietary")),
    (A40, "580", "proprietary", ("580", "proprietary")),
    (RTX5090, "580", None, ("580", "open")),
    (H100_580, None, None, ("570", "open")),
])
def test_choose_driver(gpu_host, branch, flavor, expected):
    choice = choose_driver(gpu_host, branch, flavor)
    assert (choice["branch"], choice["flavor"]) == expected
    assert choice["pinned"] is (branch is not None)


@pytest.mark.parametrize("gpu_host, branch, flavor, words", [
    (K80, "535", None, "Driver branch 535 cannot drive this host's GPUs \\(kepler\\), which need branch <= 470"),
    (RTX5090, "535", None, "which need branch >= 570"),
    (RTX5090, None, "proprietary", "The proprietary kernel modules cannot drive this host's GPUs \\(blackwell\\)"),
    (K80, None, "open", "need the proprietary modules"),
    (A40, "470", "open", "Open kernel modules exist from branch 515 on"),
    (A40, "latest", None, "must be a driver branch such as 470"),
    (MIXED, None, None, "no single NVIDIA driver|needs proprietary kernel modules"),
])
def test_choose_driver_refuses(gpu_host, branch, flavor, words):
    with pytest.raises(DriverPlanError, match=words):
        choose_driver(gpu_host, branch, flavor)


def test_no_gpu_needs_no_driver():
    assert choose_driver(NO_GPU) is None
    result = plan(NO_GPU, "debian12", kernel="6.1.0-40-amd64", branch="580")
    assert result["action"] == "none"
    assert (result["branch"], result["flavor"]) == (None, None)
    assert "packages" not in result


@pytest.mark.parametrize("gpu_host, branch, flavor, suitable", [
    (H100_580, None, None, True),           # 580 >= the default 570: stays
    (H100_580, "580", None, True),          # pinned to the loaded branch
    (H100_580, "570", None, False),         # pinned elsewhere: install
    (H100_580, None, "proprietary", False),  # loaded open, proprietary asked
    (dict(H100_580, driver_version="535.261.03", driver_branch="535"), None, None, False),  # older than default
    (dict(H100_580, driver_fits_gpus=False), None, None, False),
    (RTX5090, None, None, False),           # nothing loaded
])
def test_loaded_driver_suitable(gpu_host, branch, flavor, suitable):
    assert loaded_driver_suitable(gpu_host, choose_driver(gpu_host, branch, flavor)) is suitable


def test_plan_keeps_the_loaded_h100_driver():
    result = plan(H100_580, "ubuntu2404", kernel="6.8.0-85-generic")
    assert result["action"] == "keep"
    # The branch that runs is the loaded 580, not the 570 the plan would install.
    assert (result["branch"], result["flavor"]) == ("580", "open")
    assert "packages" not in result
    assert "kernel_packages" not in result


def test_plan_keeps_the_loaded_driver_when_pinned_to_its_branch():
    result = plan(H100_580, "ubuntu2404", branch="580")
    assert (result["action"], result["branch"], result["pinned"]) == ("keep", "580", True)


def test_plan_replaces_the_loaded_driver_pinned_elsewhere():
    result = plan(H100_580, "ubuntu2404", kernel="6.8.0-85-generic", branch="570")
    assert (result["action"], result["branch"], result["flavor"]) == ("install", "570", "open")
    assert result["packages"] == ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]


RTX5090_570_LOADED = dict(RTX5090, driver_loaded=True, driver_version="570.195.03", driver_branch="570",
                          loaded_kernel_module_flavor="open", driver_fits_gpus=True)
# A loaded driver the GPUs cannot run (a K80 host whose 535 came with a distribution upgrade).
K80_535_LOADED = dict(K80, driver_loaded=True, driver_version="535.247.01", driver_branch="535",
                      loaded_kernel_module_flavor="proprietary", driver_fits_gpus=False)


@pytest.mark.parametrize("gpu_host, platform, branch, flavor, action, rolls", [
    # Bare hosts get their first driver with the rest of the fleet.
    (RTX5090, "debian12", None, None, "install", False),
    (K80, "debian12", None, None, "install", False),
    (A40, "el8", "580", None, "install", False),
    # A branch change replaces the running driver: it rolls.
    (RTX5090_570_LOADED, "debian12", "580", None, "install", True),
    (H100_580, "ubuntu2404", "570", None, "install", True),
    # So does a flavor change within the loaded branch.
    (H100_580, "ubuntu2404", "580", "proprietary", "install", True),
    # And the replacement of a loaded driver that no longer drives the GPUs.
    (K80_535_LOADED, "debian12", None, None, "install", True),
    # A kept driver and a host without GPU change nothing.
    (RTX5090_570_LOADED, "debian12", "570", None, "keep", False),
    (H100_580, "ubuntu2404", None, None, "keep", False),
    (NO_GPU, "debian12", None, None, "none", False),
])
def test_plan_rolls_only_a_change_of_a_running_driver(gpu_host, platform, branch, flavor, action, rolls):
    result = plan(gpu_host, platform, branch=branch, flavor=flavor)
    assert (result["action"], result["rolls"]) == (action, rolls)


def test_plan_k80_debian_uses_tesla_470_packages():
    result = plan(K80, "debian12", kernel="6.1.0-40-amd64")
    assert result["action"] == "install"
    assert result["source"] == "distribution"
    assert result["packages"] == [
        "nvidia-tesla-470-kernel-dkms", "libnvidia-tesla-470-cuda1", "libnvidia-tesla-470-ml1",
        "libnvidia-tesla-470-cfg1", "nvidia-tesla-470-smi", "nvidia-persistenced", "nvidia-modprobe"]
    assert result["hold"] == result["packages"]
    assert result["apt_components"] == ["main", "contrib", "non-free", "non-free-firmware"]
    assert result["apt_pin"] is None
    assert result["kernel_packages"] == ["linux-headers-6.1.0-40-amd64"]
    assert result["kepler"] is True
    assert result["initramfs_command"] == ["update-initramfs", "-u"]
    assert result["unattended_upgrade_blacklist"] == [
        "nvidia", "libnvidia", "libcuda", "cuda-", "firmware-nvidia", "xserver-xorg-video-nvidia"]


def test_plan_rtx5090_debian_uses_cuda_repository_pinned_to_570():
    result = plan(RTX5090, "debian12")
    assert result["source"] == "cuda"
    assert result["apt_components"] is None
    assert result["packages"] == ["nvidia-driver-cuda", "nvidia-kernel-open-dkms", "nvidia-persistenced",
                                  "nvidia-modprobe"]
    assert result["apt_pin"] == {"packages": result["packages"], "version": "570.*"}
    assert result["version_package"] == "nvidia-kernel-open-dkms"
    assert result["kernel_packages"] == []


@pytest.mark.parametrize("platform, branch, flavor, source, expected", [
    ("ubuntu2404", "470", "proprietary", None, ["nvidia-headless-470-server", "nvidia-utils-470-server",
                                                "nvidia-modprobe"]),
    ("ubuntu2404", "570", "open", None, ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]),
    ("ubuntu2404", "580", "proprietary", None, ["nvidia-headless-580-server", "nvidia-utils-580-server"]),
    ("ubuntu2404", "570", "open", "cuda", ["nvidia-open-570"]),
    ("ubuntu2404", "570", "proprietary", "cuda", ["cuda-drivers-570"]),
    ("debian12", "535", "proprietary", None, ["nvidia-tesla-535-kernel-dkms", "libnvidia-tesla-535-cuda1",
                                              "libnvidia-tesla-535-ml1", "libnvidia-tesla-535-cfg1",
                                              "nvidia-tesla-535-smi", "nvidia-persistenced", "nvidia-modprobe"]),
    ("debian12", "535", "open", None, ["nvidia-driver-cuda", "nvidia-kernel-open-dkms", "nvidia-persistenced",
                                       "nvidia-modprobe"]),
    ("debian12", "580", "proprietary", None, ["nvidia-driver-cuda", "nvidia-kernel-dkms", "nvidia-persistenced",
                                              "nvidia-modprobe"]),
])
def test_driver_install_apt(platform, branch, flavor, source, expected):
    assert driver_install(platform, branch, flavor, source)["packages"] == expected


def test_ubuntu_canonical_packages_are_held_with_their_dkms_package():
    install = driver_install("ubuntu2404", "570", "open")
    assert install["hold"] == ["nvidia-headless-570-server-open", "nvidia-utils-570-server",
                               "nvidia-dkms-570-server-open"]
    assert install["apt_pin"] is None
    assert install["apt_components"] is None


@pytest.mark.parametrize("branch, flavor, stream, kmod", [
    ("470", "proprietary", "nvidia-driver:470-dkms", "kmod-nvidia-latest-dkms"),
    ("570", "open", "nvidia-driver:570-open", "kmod-nvidia-open-dkms"),
    ("580", "proprietary", "nvidia-driver:580-dkms", "kmod-nvidia-latest-dkms"),
])
def test_driver_install_el8_uses_a_locked_stream(branch, flavor, stream, kmod):
    install = driver_install("el8", branch, flavor)
    assert install["source"] == "cuda"
    assert install["module_stream"] == stream
    assert install["module_profile"] == "default"
    assert "latest" not in install["module_stream"]
    assert kmod in install["packages"]
    assert install["hold"] == install["packages"]


def test_plan_el8_names_kernel_devel_and_dracut():
    result = plan(K80, "el8", kernel="4.18.0-553.el8_10.x86_64")
    assert result["kernel_packages"] == ["kernel-devel-4.18.0-553.el8_10.x86_64",
                                         "kernel-headers-4.18.0-553.el8_10.x86_64"]
    assert result["module_stream"] == "nvidia-driver:470-dkms"
    assert result["initramfs_command"] == ["dracut", "--force"]
    assert result["family"] == "dnf"
    # The versionlock that keeps dnf from the driver also keeps dnf-automatic from it.
    assert result["unattended_upgrade_blacklist"] == []


@pytest.mark.parametrize("platform, branch, flavor, source, words", [
    ("el8", "570", "open", "distribution", "Rocky Linux 8 has no NVIDIA driver in its own repositories"),
    ("ubuntu2404", "470", "proprietary", "cuda", "CUDA repository for Ubuntu 24.04 has no branch 470"),
    ("debian12", "470", "proprietary", "cuda", "CUDA repository for Debian 12 has no branch 470"),
    ("debian12", "570", "open", "distribution", "archive does not carry branch 570 with open kernel modules"),
])
def test_driver_install_refuses(platform, branch, flavor, source, words):
    with pytest.raises(DriverPlanError, match=words):
        driver_install(platform, branch, flavor, source)


@pytest.mark.parametrize("gpu_host, kwargs, words", [
    (K80, {"branch": "535"}, "Driver branch 535 cannot drive"),
    (RTX5090, {"flavor": "proprietary"}, "proprietary kernel modules cannot drive"),
    (MIXED, {}, "move one card"),
])
def test_plan_raises_one_sentence(gpu_host, kwargs, words):
    with pytest.raises(DriverPlanError) as caught:
        plan(gpu_host, "debian12", **kwargs)
    message = str(caught.value)
    assert words in message
    assert message.endswith(".") and ". " not in message


def test_plan_raises_when_the_source_cannot_deliver():
    with pytest.raises(DriverPlanError, match="CUDA repository for Debian 12 has no branch 470"):
        plan(K80, "debian12", source="cuda")


APT_SIMULATION = """NOTE: This is only a simulation!
Inst nvidia-kernel-common (20220217+3~deb12u1 Debian:12.15/oldstable [amd64])
Inst nvidia-modprobe (535.309.01-0+deb12u1 Debian-Security:12/oldstable-security [amd64])
Inst liblzma5 [5.4.1-1+deb12u1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst nvidia-tesla-470-smi (470.256.02-1~deb12u1 Debian:12.15/oldstable [amd64])
Conf nvidia-tesla-470-smi (470.256.02-1~deb12u1 Debian:12.15/oldstable [amd64])
"""


def test_parse_apt_simulation():
    assert parse_apt_simulation(APT_SIMULATION) == [
        ("nvidia-kernel-common", "20220217+3~deb12u1"),
        ("nvidia-modprobe", "535.309.01-0+deb12u1"),
        ("liblzma5", "5.4.1-1+deb12u2"),
        ("nvidia-tesla-470-smi", "470.256.02-1~deb12u1"),
    ]


@pytest.mark.parametrize("packages, branch, expected", [
    (parse_apt_simulation(APT_SIMULATION), "470", []),
    ([("nvidia-headless-565-server", "565.57.01-0ubuntu1"), ("nvidia-headless-580-server", "580.95.05-0ubuntu1"),
      ("nvidia-utils-580-server", "580.95.05-0ubuntu1")], "565",
     ["nvidia-headless-580-server 580.95.05-0ubuntu1", "nvidia-utils-580-server 580.95.05-0ubuntu1"]),
    ([("nvidia-dkms-535", "535.309.01-0ubuntu0.24.04.2"), ("nvidia-dkms-580", "580.95.05-0ubuntu1")], "535",
     ["nvidia-dkms-580 580.95.05-0ubuntu1"]),
    ([("libnvidia-compute-580", "580.95.05-0ubuntu1")], "570", ["libnvidia-compute-580 580.95.05-0ubuntu1"]),
    ([("linux-headers-6.8.0-85-generic", "6.8.0-85.85")], "570", []),
    ([("nvidia-open-570", "570.195.03-1")], "570", []),
    # NVIDIA's Debian repository names no branch: the version tells it.
    ([("nvidia-kernel-open-dkms", "580.65.06-1"), ("nvidia-driver-cuda", "580.65.06-1")], "570",
     ["nvidia-kernel-open-dkms 580.65.06-1", "nvidia-driver-cuda 580.65.06-1"]),
    ([("nvidia-kernel-open-dkms", "570.195.03-1"), ("libcuda1", "570.195.03-1")], "570", []),
    ([("libnvidia-ml1", "1:580.65.06-1")], "570", ["libnvidia-ml1 1:580.65.06-1"]),
    # Helpers versioned apart from the driver, and the container toolkit, say nothing about the branch.
    ([("nvidia-persistenced", "525.85.05-1"), ("nvidia-tesla-470-kernel-dkms", "470.256.02-1~deb12u1")], "470", []),
    ([("nvidia-modprobe", "580.65.06-1")], "570", []),
    ([("libnvidia-container1", "1.17.8-1"), ("nvidia-container-toolkit", "1.17.8-1")], "570", []),
    ([("nvidia-kernel-open-dkms", None)], "570", []),
])
def test_foreign_branch_packages(packages, branch, expected):
    assert foreign_branch_packages(packages, branch) == expected


@pytest.mark.parametrize("version, upstream, branch", [
    ("470.256.02-1~deb12u1", "470.256.02", "470"),
    ("3:570.195.03-1.el8", "570.195.03", "570"),
    ("580.95.05-0ubuntu0.24.04.1", "580.95.05", "580"),
    ("535.309.01+really.1", "535.309.01", "535"),
])
def test_versions(version, upstream, branch):
    assert upstream_version(version) == upstream
    assert branch_of(version) == branch


@pytest.mark.parametrize("raw, enabled", [
    (b"\x06\x00\x00\x00\x01", True),
    (b"\x06\x00\x00\x00\x00", False),
    (b"", False),
    (None, False),
])
def test_secure_boot_enabled(raw, enabled):
    assert secure_boot_enabled(raw) is enabled
