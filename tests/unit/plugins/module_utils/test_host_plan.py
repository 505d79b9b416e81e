# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The whole plan of one host, case by case: every GPU family on every distribution.

Facts come from the real detection code (merge_gpus on sysfs-like entries, summarize_host), as
gpu_facts would report them before any driver is installed.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils import _model_catalog
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import (
    merge_gpus,
    scan_nvswitches,
    scan_sysfs,
    summarize_host,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import (
    HostPlanError,
    PLAN_KEYS,
    check_overrides,
    plan_host,
    summary,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._fleet_images import plan_fleet
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import recipe_digest
from ansible_collections.gpufleet.vllm.plugins.module_utils._vllm_plan import CU128_VLLM_VERSION, UPSTREAM_VLLM_VERSION

HOST = "gpu-01"
MIRROR = "https://mirror.example.com/cuda/repos"

# PCI device ids (catalog rows of _gpu_catalog).
K80 = "0x102d"
A40 = "0x2235"
RTX5090 = "0x2b85"
H100 = "0x2330"
T4 = "0x1eb8"
V100 = "0x1db4"
P100 = "0x15f8"

DEBIAN = ("Debian", "12.7", "6.1.0-40-amd64")
UBUNTU = ("Ubuntu", "24.04", "6.8.0-85-generic")
ROCKY = ("Rocky", "8.10", "4.18.0-553.el8_10.x86_64")

UPSTREAM = "vllm/vllm-openai:v%s" % UPSTREAM_VLLM_VERSION
UPSTREAM_CU129 = UPSTREAM + "-cu129"
SMOKE_11_4 = "nvidia/cuda:11.4.3-base-ubuntu20.04"
SMOKE_12_8 = "nvidia/cuda:12.8.1-base-ubuntu24.04"

DEBIAN_TESLA_470 = ["nvidia-tesla-470-kernel-dkms", "libnvidia-tesla-470-cuda1", "libnvidia-tesla-470-ml1",
                    "libnvidia-tesla-470-cfg1", "nvidia-tesla-470-smi", "nvidia-persistenced", "nvidia-modprobe"]
DEBIAN_CUDA_OPEN = ["nvidia-driver-cuda", "nvidia-kernel-open-dkms", "nvidia-persistenced", "nvidia-modprobe"]
DEBIAN_CUDA_PROPRIETARY = ["nvidia-driver-cuda", "nvidia-kernel-dkms", "nvidia-persistenced", "nvidia-modprobe"]
CONTAINER_TOOLKIT = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                     "libnvidia-container1"]


def detect(*device_ids):
    """The gpufleet_gpus fact for GPUs that sysfs lists (no driver loaded)."""
    return merge_gpus([{"pci_bus_id": "0000:%02x:00.0" % (5 + index), "pci_device_id": device_id}
                       for index, device_id in enumerate(device_ids)])


def facts(device_ids=(), system=DEBIAN, architecture="x86_64", in_container=False, vcpus=8, memory_mib=32768, **driver):
    """Facts of a host; driver: what the loaded driver reports (summarize_host's keywords)."""
    gpus = detect(*device_ids)
    distribution, version, kernel = system
    return {
        "gpus": gpus,
        "gpu_host": summarize_host(gpus, **driver),
        "distribution": distribution,
        "distribution_version": version,
        "architecture": architecture,
        "kernel": kernel,
        "in_container": in_container,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
    }


def settings(overrides=None, model="TinyLlama/TinyLlama-1.1B-Chat-v1.0", recipes=("cpu", "cu128", "k80"), service=None,
             mirror=None):
    return {
        "model": model,
        "overrides": overrides if overrides is not None else {},
        "cuda_repository_url": MIRROR,
        "recipes": list(recipes),
        "service": service if service is not None else {"name": "tiny"},
        "registry_mirror": mirror,
    }


def plan_of(device_ids=(), system=DEBIAN, overrides=None, **kwargs):
    setting_keys = ("model", "recipes", "service", "mirror")
    host_settings = settings(overrides, **dict((key, kwargs.pop(key)) for key in setting_keys if key in kwargs))
    return plan_host(HOST, facts(device_ids, system, **kwargs), host_settings)


def sysfs_plan(tree, overrides=None):
    """The plan of a host whose GPUs gpu_facts read from a fake sysfs tree."""
    gpus = merge_gpus(scan_sysfs(tree.root))
    return plan_host(HOST, dict(facts(), gpus=gpus, gpu_host=summarize_host(gpus)), settings(overrides))


def refusal(device_ids=(), system=DEBIAN, overrides=None, **kwargs):
    with pytest.raises(HostPlanError) as caught:
        plan_of(device_ids, system, overrides, **kwargs)
    return str(caught.value)


def loaded_580(**extra):
    return dict(driver_loaded=True, driver_version="580.95.05", loaded_kernel_module_flavor="open", **extra)


# --------------------------------------------------------------------------------------------
# Driver: every GPU family on every distribution


@pytest.mark.parametrize("devices, system, branch, flavor, source, packages", [
    ([K80] * 4, DEBIAN, "470", "proprietary", "distribution", DEBIAN_TESLA_470),
    ([K80] * 4, UBUNTU, "470", "proprietary", "distribution",
     ["nvidia-headless-470-server", "nvidia-utils-470-server", "nvidia-modprobe"]),
    ([RTX5090], DEBIAN, "570", "open", "cuda", DEBIAN_CUDA_OPEN),
    ([RTX5090], UBUNTU, "570", "open", "distribution", ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]),
    ([A40], DEBIAN, "570", "open", "cuda", DEBIAN_CUDA_OPEN),
    ([A40], UBUNTU, "570", "open", "distribution", ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]),
    ([H100], DEBIAN, "570", "open", "cuda", DEBIAN_CUDA_OPEN),
    ([H100], UBUNTU, "570", "open", "distribution", ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]),
    ([T4], DEBIAN, "570", "open", "cuda", DEBIAN_CUDA_OPEN),
    ([T4], UBUNTU, "570", "open", "distribution", ["nvidia-headless-570-server-open", "nvidia-utils-570-server"]),
    # Volta has no GSP: proprietary modules only.
    ([V100], DEBIAN, "570", "proprietary", "cuda", DEBIAN_CUDA_PROPRIETARY),
    ([V100], UBUNTU, "570", "proprietary", "distribution", ["nvidia-headless-570-server", "nvidia-utils-570-server"]),
])
def test_apt_driver_of_each_gpu_family(devices, system, branch, flavor, source, packages):
    driver = plan_of(devices, system)["driver"]
    assert (driver["action"], driver["branch"], driver["flavor"], driver["source"]) == ("install", branch, flavor, source)
    assert driver["packages"] == packages
    assert driver["family"] == "apt"
    assert driver["module_stream"] is None
    assert driver["kernel_packages"] == ["linux-headers-%s" % system[2]]
    assert driver["initramfs_command"] == ["update-initramfs", "-u"]
    assert driver["loadable"] is True


@pytest.mark.parametrize("devices, stream, kmod", [
    ([K80] * 4, "nvidia-driver:470-dkms", "kmod-nvidia-latest-dkms"),
    ([RTX5090], "nvidia-driver:570-open", "kmod-nvidia-open-dkms"),
    ([A40], "nvidia-driver:570-open", "kmod-nvidia-open-dkms"),
    ([H100], "nvidia-driver:570-open", "kmod-nvidia-open-dkms"),
    ([T4], "nvidia-driver:570-open", "kmod-nvidia-open-dkms"),
    ([V100], "nvidia-driver:570-dkms", "kmod-nvidia-latest-dkms"),
])
def test_rocky_driver_of_each_gpu_family_is_a_locked_stream_of_the_cuda_repository(devices, stream, kmod):
    driver = plan_of(devices, ROCKY)["driver"]
    assert (driver["action"], driver["source"], driver["family"]) == ("install", "cuda", "dnf")
    assert driver["module_stream"] == stream
    assert kmod in driver["packages"]
    assert driver["cuda_repository"]["url"] == MIRROR + "/rhel8/x86_64"
    assert driver["cuda_repository"]["key_url"] == MIRROR + "/rhel8/x86_64/D42D0685.pub"
    assert driver["kernel_packages"] == ["kernel-devel-%s" % ROCKY[2], "kernel-headers-%s" % ROCKY[2]]
    assert driver["initramfs_command"] == ["dracut", "--force"]


def test_k80_on_debian():
    plan = plan_of([K80] * 4, DEBIAN)
    driver, vllm, image = plan["driver"], plan["vllm"], plan["image"]
    assert plan["platform"] == {"key": "debian12", "label": "Debian 12", "family": "apt", "vcpus": 8, "memory_mib": 32768}
    assert (driver["branch"], driver["flavor"], driver["source"]) == ("470", "proprietary", "distribution")
    assert driver["packages"] == DEBIAN_TESLA_470
    assert driver["hold"] == DEBIAN_TESLA_470
    assert driver["apt_components"] == ["main", "contrib", "non-free", "non-free-firmware"]
    assert driver["apt_pin"] is None
    assert driver["cuda_repository"] is None
    assert driver["kepler"] is True
    assert driver["cuda_version"] == "11.4"
    assert (vllm["variant"], vllm["dtype"], vllm["cuda_version"]) == ("k80", "float32", "11.4")
    assert (image["variant"], image["build"], image["recipe"]) == ("k80", True, "k80")
    assert image["build_args"]["TORCH_CUDA_ARCH_LIST"] == "3.7"
    assert image["name"].startswith("gpufleet/vllm-k80:")
    assert plan["service"]["env"]["VLLM_USE_V1"] == "0"
    assert [gpu["name"] for gpu in plan["gpus"]] == ["Tesla K80"] * 4


def test_k80_on_rocky_installs_the_470_stream_from_the_configured_mirror():
    plan = plan_of([K80] * 4, ROCKY)
    driver = plan["driver"]
    assert plan["platform"]["key"] == "el8"
    assert (driver["branch"], driver["source"], driver["module_stream"]) == ("470", "cuda", "nvidia-driver:470-dkms")
    assert driver["cuda_repository"]["url"] == MIRROR + "/rhel8/x86_64"
    assert (plan["vllm"]["variant"], plan["driver"]["cuda_version"]) == ("k80", "11.4")


def test_k80_on_ubuntu_installs_canonicals_470_server_packages():
    driver = plan_of([K80] * 4, UBUNTU)["driver"]
    assert driver["packages"] == ["nvidia-headless-470-server", "nvidia-utils-470-server", "nvidia-modprobe"]
    assert driver["hold"] == driver["packages"] + ["nvidia-dkms-470-server"]
    assert driver["cuda_repository"] is None
    assert driver["dkms_signing_key"] == "/var/lib/shim-signed/mok/MOK.der"


def test_pascal_serves_no_vllm_build_but_the_cpu_variant_on_its_driver():
    assert refusal([P100]).startswith(HOST + ": Tesla P100 PCIe 16GB")
    plan = plan_of([P100], overrides={"variant": "cpu"})
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["flavor"]) == ("install", "570", "proprietary")
    assert plan["vllm"]["variant"] == "cpu"
    assert [(replica["gpus"], replica["cpuset"]) for replica in plan["service"]["replicas"]] == [([], "0-7")]


def test_facts_from_a_fake_sysfs_tree_plan_like_the_detected_entries(make_host):
    plan = sysfs_plan(make_host("k80x2"))
    assert len(plan["gpus"]) == 4
    assert plan["gpus"][0]["pci_bridges"] == ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]
    assert (plan["driver"]["branch"], plan["vllm"]["variant"]) == ("470", "k80")


# --------------------------------------------------------------------------------------------
# The image is chosen for exactly the driver the plan installs


def test_rtx5090_default_gets_570_and_the_cu128_build():
    plan = plan_of([RTX5090], DEBIAN)
    driver, image = plan["driver"], plan["image"]
    assert (driver["branch"], driver["flavor"], driver["source"]) == ("570", "open", "cuda")
    assert driver["apt_pin"] == {"packages": DEBIAN_CUDA_OPEN, "version": "570.*"}
    assert driver["cuda_repository"]["url"] == MIRROR + "/debian12/x86_64"
    assert driver["cuda_version"] == "12.8"
    assert (image["variant"], image["build"], image["cuda_version"]) == ("cu128", True, "12.8")
    assert image["build_args"] == {"TORCH_CUDA_ARCH_LIST": "12.0", "VLLM_VERSION": CU128_VLLM_VERSION}
    assert plan["vllm"]["dtype"] == "bfloat16"


def test_rtx5090_pinned_to_580_gets_the_plain_upstream_image():
    plan = plan_of([RTX5090], DEBIAN, {"driver_branch": "580"})
    driver, image = plan["driver"], plan["image"]
    assert (driver["branch"], driver["pinned"], driver["cuda_version"]) == ("580", True, "13.0")
    assert driver["apt_pin"]["version"] == "580.*"
    assert (image["variant"], image["build"], image["cuda_version"]) == ("upstream", False, "13.0")
    assert image["name"] == image["reference"] == UPSTREAM
    assert not image["name"].endswith("-cu129")
    assert plan["service"]["image"] == UPSTREAM
    assert "NVIDIA_DISABLE_REQUIRE" not in plan["service"]["env"]


def test_rtx5090_pinned_to_580_as_a_yaml_number():
    plan = plan_of([RTX5090], UBUNTU, {"driver_branch": 580})
    assert plan["driver"]["packages"] == ["nvidia-headless-580-server-open", "nvidia-utils-580-server"]
    assert plan["image"]["name"] == UPSTREAM


def test_rtx5090_with_a40_builds_cu128_for_both_capabilities():
    plan = plan_of([RTX5090, A40], DEBIAN)
    assert (plan["driver"]["branch"], plan["driver"]["flavor"]) == ("570", "open")
    assert plan["image"]["variant"] == "cu128"
    assert plan["image"]["build_args"]["TORCH_CUDA_ARCH_LIST"] == "8.6;12.0"
    assert any("The GPUs differ" in warning for warning in plan["warnings"])


@pytest.mark.parametrize("device", [A40, H100])
def test_ampere_and_hopper_on_ubuntu_get_570_open_and_the_cu129_image(device):
    plan = plan_of([device], UBUNTU)
    driver, image = plan["driver"], plan["image"]
    assert (driver["branch"], driver["flavor"], driver["source"]) == ("570", "open", "distribution")
    assert driver["cuda_repository"] is None
    assert (image["variant"], image["build"], image["name"]) == ("upstream", False, UPSTREAM_CU129)
    assert image["reference"] == plan["service"]["image"] == UPSTREAM_CU129
    # A CUDA 12.9 image on a 12.8 driver: minor-version compatibility, without the image's gate.
    assert plan["service"]["env"] == {"NVIDIA_DISABLE_REQUIRE": "1"}


def test_h100_with_a_loaded_580_driver_keeps_it():
    plan = plan_of([H100], UBUNTU, **loaded_580())
    driver, image = plan["driver"], plan["image"]
    assert (driver["action"], driver["branch"], driver["flavor"], driver["cuda_version"]) == ("keep", "580", "open", "13.0")
    assert driver["loadable"] is False
    assert driver["cuda_repository"] is None
    assert "packages" not in driver
    assert (image["variant"], image["name"], image["cuda_version"]) == ("upstream", UPSTREAM, "13.0")
    assert plan["vllm"]["driver_cuda_source"] == "loaded driver of branch 580"


def test_h100_with_a_loaded_580_driver_pinned_to_570_reinstalls_and_follows_570():
    plan = plan_of([H100], UBUNTU, {"driver_branch": "570"}, **loaded_580())
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["cuda_version"]) == ("install", "570", "12.8")
    assert plan["image"]["name"] == UPSTREAM_CU129
    assert plan["vllm"]["driver_cuda_source"] == "planned driver of branch 570"


def test_k80_with_its_470_driver_loaded_keeps_it():
    plan = plan_of([K80] * 4, DEBIAN, driver_loaded=True, driver_version="470.256.02",
                   loaded_kernel_module_flavor="proprietary")
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["cuda_version"]) == ("keep", "470", "11.4")
    assert plan["vllm"]["variant"] == "k80"


@pytest.mark.parametrize("devices, system, overrides, driver", [
    ([K80] * 4, DEBIAN, {}, {}),
    ([K80] * 4, ROCKY, {}, {}),
    ([RTX5090], DEBIAN, {}, {}),
    ([RTX5090], DEBIAN, {"driver_branch": "580"}, {}),
    ([RTX5090, A40], UBUNTU, {}, {}),
    ([A40], UBUNTU, {}, {}),
    ([A40], ROCKY, {"driver_branch": "580", "kernel_module_flavor": "proprietary"}, {}),
    ([H100], UBUNTU, {}, loaded_580()),
    ([T4], DEBIAN, {}, {}),
    ([V100], UBUNTU, {}, {}),
])
def test_the_image_is_chosen_for_the_driver_the_plan_settles_on(devices, system, overrides, driver):
    plan = plan_of(devices, system, overrides, **driver)
    assert plan["vllm"]["driver_cuda_version"] == plan["driver"]["cuda_version"]
    assert plan["driver"]["branch"] in plan["vllm"]["driver_cuda_source"]
    image_cuda = tuple(int(part) for part in plan["image"]["cuda_version"].split("."))
    driver_cuda = tuple(int(part) for part in plan["driver"]["cuda_version"].split("."))
    # Same major version; a newer minor only with the image's version gate off.
    assert image_cuda[0] == driver_cuda[0]
    assert image_cuda <= driver_cuda or plan["service"]["env"].get("NVIDIA_DISABLE_REQUIRE") == "1"


@pytest.mark.parametrize("device, dtype", [(T4, "float16"), (V100, "float16"), (A40, "bfloat16"), (H100, "bfloat16")])
def test_dtype_follows_the_gpu_family(device, dtype):
    assert plan_of([device], UBUNTU)["vllm"]["dtype"] == dtype


def test_volta_is_served_with_a_warning():
    plan = plan_of([V100], UBUNTU)
    assert plan["image"]["name"] == UPSTREAM_CU129
    assert any("Volta" in warning for warning in plan["warnings"])


def test_host_without_gpu():
    plan = plan_of([], DEBIAN)
    assert plan["gpus"] == []
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["cuda_version"]) == ("none", None, None)
    assert plan["driver"]["loadable"] is False
    runtime = plan["runtime"]
    assert (runtime["nvidia"], runtime["toolkit_packages"], runtime["toolkit_hold"], runtime["smoke_image"]) == (False, [], [], None)
    assert runtime["docker_packages"] == ["docker.io", "python3-docker", "python3-requests"]
    assert (plan["vllm"]["variant"], plan["image"]["variant"], plan["image"]["build"]) == ("cpu", "cpu", True)
    assert [replica["gpus"] for replica in plan["service"]["replicas"]] == [[]]
    assert plan["toolkit"] == {"enabled": False}


def test_driver_pins_are_ignored_without_gpu():
    assert plan_of([], DEBIAN, {"driver_branch": "580", "kernel_module_flavor": "open"})["driver"]["action"] == "none"


# --------------------------------------------------------------------------------------------
# Container runtime


def docker_plan(device_ids, system, overrides=None, docker_version=None, cdi_enabled=False):
    """The plan of a bare host (docker_version None) or of one whose Docker is installed, as dockerd --version writes it."""
    return plan_host(HOST, dict(facts(device_ids, system), docker_version=docker_version, docker_cdi_enabled=cdi_enabled),
                     settings(overrides))


K80_NODES = ["--device", "/dev/nvidiactl", "--device", "/dev/nvidia-uvm", "--device", "/dev/nvidia-uvm-tools"]


def test_a_bare_debian_host_injects_through_the_nvidia_runtime():
    # Debian 12 installs docker.io 20.10.24, which has no CDI devices.
    plan = docker_plan([K80] * 4, DEBIAN)
    assert plan["runtime"]["gpu_injection"] == {"method": "runtime", "reason": (
        "GPUs injected by the nvidia runtime with their device nodes passed to Docker, whose device rules survive a systemd "
        "reload: Docker before 25.0 has no CDI devices")}
    assert [replica["device_args"] for replica in plan["service"]["replicas"]] == [
        ["--runtime", "nvidia", "--env", "NVIDIA_VISIBLE_DEVICES=%d" % index, "--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
         "--device", "/dev/nvidia%d" % index] + K80_NODES for index in range(4)]


@pytest.mark.parametrize("system", [ROCKY, UBUNTU])
def test_a_bare_rocky_or_ubuntu_host_injects_cdi_devices(system):
    # Docker CE's current release and noble-updates' docker.io are 28.2 or newer, which enable CDI devices by default.
    plan = docker_plan([H100] * 2, system, {"tensor_parallel_size": 2})
    assert plan["runtime"]["gpu_injection"] == {"method": "cdi", "reason": (
        "GPUs injected as CDI devices, which Docker 28.2 or newer enables, and whose device rules survive a systemd reload")}
    assert [replica["device_args"] for replica in plan["service"]["replicas"]] == [
        ["--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1"]]


@pytest.mark.parametrize("system, installed, cdi_enabled, method", [
    # An engine installed from elsewhere than the platform's package source decides.
    (DEBIAN, "28.3.2", False, "cdi"),
    (UBUNTU, "24.0.7", False, "runtime"),
    (ROCKY, "27.5.1", False, "runtime"),
    (ROCKY, "27.5.1", True, "cdi"),
])
def test_the_installed_docker_wins_over_the_platforms(system, installed, cdi_enabled, method):
    assert docker_plan([A40], system, docker_version=installed, cdi_enabled=cdi_enabled)["runtime"]["gpu_injection"]["method"] == method


@pytest.mark.parametrize("system, installed", [
    (DEBIAN, "20.10.24+dfsg1"),
    (UBUNTU, "29.1.3"),
    # Docker CE moves on; any release from 28.2 plans alike.
    (ROCKY, "29.0.4"),
    (ROCKY, "28.2.2"),
])
@pytest.mark.parametrize("devices", [[K80] * 4, [H100] * 2, []])
def test_the_plan_is_the_same_before_and_after_docker_is_installed(system, installed, devices):
    assert docker_plan(devices, system, docker_version=installed) == docker_plan(devices, system)


def test_a_host_without_gpu_injects_nothing():
    plan = docker_plan([], ROCKY, docker_version="29.0.4")
    assert plan["runtime"]["gpu_injection"] == {"method": None, "reason": None}
    assert [replica["device_args"] for replica in plan["service"]["replicas"]] == [[]]


@pytest.mark.parametrize("system, install, docker, sdk", [
    (DEBIAN, "apt", ["docker.io", "python3-docker", "python3-requests"], "package"),
    (UBUNTU, "apt", ["docker.io", "python3-docker", "python3-requests"], "package"),
    (ROCKY, "dnf", ["docker-ce", "docker-ce-cli", "containerd.io"], "pip"),
])
def test_docker_packages_per_platform(system, install, docker, sdk):
    runtime = plan_of([A40], system)["runtime"]
    assert (runtime["install"], runtime["docker_packages"], runtime["docker_sdk"]) == (install, docker, sdk)
    assert runtime["nvidia"] is True
    assert runtime["toolkit_packages"] == ["nvidia-container-toolkit"]
    assert (runtime["toolkit_version"], runtime["toolkit_hold"]) == ("", [])
    assert runtime["deb_arch"] == "amd64"


def test_runtime_names_the_debian_architecture_of_arm_hosts():
    plan = plan_of([H100], UBUNTU, architecture="aarch64")
    assert plan["runtime"]["deb_arch"] == "arm64"
    assert plan["driver"]["cuda_repository"] is None
    assert plan_of([H100], DEBIAN, architecture="aarch64")["driver"]["cuda_repository"]["url"] == MIRROR + "/debian12/sbsa"


@pytest.mark.parametrize("system", [DEBIAN, UBUNTU])
def test_container_toolkit_version_pins_and_holds_all_four_packages(system):
    runtime = plan_of([A40], system, {"container_toolkit_version": "1.19.1-1"})["runtime"]
    assert runtime["toolkit_version"] == "1.19.1-1"
    assert runtime["toolkit_packages"] == ["%s=1.19.1-1" % name for name in CONTAINER_TOOLKIT]
    assert runtime["toolkit_hold"] == CONTAINER_TOOLKIT


def test_container_toolkit_version_is_refused_on_rocky_in_one_sentence():
    message = refusal([A40], ROCKY, {"container_toolkit_version": "1.19.1-1"})
    assert message == (HOST + ": container_toolkit_version 1.19.1-1 can be pinned on Debian and Ubuntu only, "
                       "not on Rocky Linux 8: leave it unset for this host.")


def test_a_container_toolkit_pin_below_the_security_floor_is_refused():
    message = refusal([A40], DEBIAN, {"container_toolkit_version": "1.17.8-1"})
    assert message.startswith(HOST + ": container_toolkit_version 1.17.8-1 lacks the container-escape fixes of CVE-2026-24260")
    assert message.endswith("pin 1.19.1-1 or newer, or leave it unset to install the newest.")


def test_container_toolkit_version_installs_nothing_without_gpu():
    runtime = plan_of([], UBUNTU, {"container_toolkit_version": "1.19.1-1"})["runtime"]
    assert (runtime["nvidia"], runtime["toolkit_packages"], runtime["toolkit_hold"]) == (False, [], [])


@pytest.mark.parametrize("devices, system, overrides, driver, smoke", [
    ([K80] * 4, DEBIAN, {}, {}, SMOKE_11_4),
    ([K80] * 4, ROCKY, {}, {}, SMOKE_11_4),
    ([RTX5090], DEBIAN, {}, {}, SMOKE_12_8),
    ([RTX5090], DEBIAN, {"driver_branch": "580"}, {}, SMOKE_12_8),
    ([A40], UBUNTU, {}, {}, SMOKE_12_8),
    ([H100], UBUNTU, {}, loaded_580(), SMOKE_12_8),
])
def test_smoke_image_never_needs_a_newer_driver(devices, system, overrides, driver, smoke):
    assert plan_of(devices, system, overrides, **driver)["runtime"]["smoke_image"] == smoke


# --------------------------------------------------------------------------------------------
# CUDA toolkit on the host


def test_toolkit_is_disabled_by_default():
    assert plan_of([A40], UBUNTU)["toolkit"] == {"enabled": False}
    assert plan_of([A40], UBUNTU, {"cuda_toolkit": False})["toolkit"] == {"enabled": False}


def test_toolkit_on_ubuntu_a40_is_12_8_from_the_cuda_repository():
    toolkit = plan_of([A40], UBUNTU, {"cuda_toolkit": True})["toolkit"]
    assert toolkit["enabled"] is True
    assert (toolkit["version"], toolkit["package"], toolkit["prefix"]) == ("12.8", "cuda-toolkit-12-8", "/usr/local/cuda-12.8")
    assert toolkit["family"] == "apt"
    assert toolkit["cuda_repository"]["url"] == MIRROR + "/ubuntu2404/x86_64"
    assert toolkit["cuda_repository"]["key_url"] == MIRROR + "/ubuntu2404/x86_64/3bf863cc.pub"


def test_toolkit_and_driver_share_one_cuda_repository():
    plan = plan_of([RTX5090], DEBIAN, {"cuda_toolkit": True})
    assert plan["toolkit"]["cuda_repository"] == plan["driver"]["cuda_repository"]


def test_toolkit_for_k80_on_rocky_is_11_4():
    toolkit = plan_of([K80] * 4, ROCKY, {"cuda_toolkit": True})["toolkit"]
    assert (toolkit["version"], toolkit["family"]) == ("11.4", "dnf")
    assert toolkit["cuda_repository"]["url"] == MIRROR + "/rhel8/x86_64"


def test_toolkit_follows_the_loaded_driver_branch():
    plan = plan_of([H100], UBUNTU, {"cuda_toolkit": True}, **loaded_580())
    assert (plan["driver"]["action"], plan["toolkit"]["version"]) == ("keep", "12.8")


def test_toolkit_version_is_checked_against_the_planned_driver():
    message = refusal([A40], ROCKY, {"cuda_toolkit": True, "cuda_toolkit_version": "12.8", "driver_branch": "535",
                                     "kernel_module_flavor": "proprietary"})
    assert message.startswith(HOST + ": cuda_toolkit_version 12.8 needs driver 570.26 or newer")


def test_toolkit_for_k80_on_debian_is_refused():
    message = refusal([K80] * 4, DEBIAN, {"cuda_toolkit": True})
    assert message.startswith(HOST + ": NVIDIA publishes CUDA 11.4 for rhel8 but not for Debian 12")


def test_toolkit_without_gpu_is_refused():
    message = refusal([], DEBIAN, {"cuda_toolkit": True})
    assert message.startswith(HOST + ": cuda_toolkit is true but the host has no NVIDIA GPU")


# --------------------------------------------------------------------------------------------
# In a container


def test_in_a_container_no_kernel_module_is_built_or_loaded():
    driver = plan_of([A40], DEBIAN, in_container=True)["driver"]
    assert driver["action"] == "install"
    assert driver["packages"] == DEBIAN_CUDA_OPEN
    assert driver["kernel_packages"] == []
    assert driver["initramfs_command"] is None
    assert driver["loadable"] is False


def test_outside_a_container_the_kernel_module_is_loadable():
    driver = plan_of([A40], DEBIAN, in_container=False)["driver"]
    assert driver["kernel_packages"] == ["linux-headers-6.1.0-40-amd64"]
    assert driver["initramfs_command"] == ["update-initramfs", "-u"]
    assert driver["loadable"] is True


# --------------------------------------------------------------------------------------------
# Service


def test_service_port_probe_address_replica_and_router_defaults():
    service = plan_of([A40], UBUNTU)["service"]
    assert (service["name"], service["served_model_name"]) == ("tiny", "vllm")
    assert (service["port"], service["bind_address"], service["probe_address"]) == (8000, "0.0.0.0", "127.0.0.1")
    assert (service["model"], service["model_source"]) == ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", None)
    assert service["variant"] == "upstream"
    assert service["replicas"] == [
        {"index": 0, "name": "tiny-0", "unit": "vllm-tiny-0", "port": 8001, "gpus": ["0"],
         "device_args": ["--device", "nvidia.com/gpu=0"], "gpu_probe": ["nvidia-smi", "-L"], "cpuset": None, "env": {}}]
    assert service["router"] == {"unit": "vllm-tiny-router", "port": 8000, "bind_address": "0.0.0.0", "metrics_port": 29000,
                                 "version": "0.1.17", "python": "python3", "python_packages": ["python3-venv"],
                                 "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}
    assert "unit" not in service and "gpus" not in service


def test_the_router_runs_on_a_python_of_its_own_on_el8():
    router = plan_of([A40], ROCKY)["service"]["router"]
    assert (router["python"], router["python_packages"], router["ca_bundle"]) == (
        "python3.11", ["python3.11"], "/etc/pki/tls/certs/ca-bundle.crt")


def test_service_without_name_is_named_after_the_served_model():
    service = plan_of([A40], UBUNTU, service={"served_model_name": "chat"})["service"]
    assert (service["name"], service["served_model_name"]) == ("chat", "chat")
    assert (service["replicas"][0]["unit"], service["router"]["unit"]) == ("vllm-chat-0", "vllm-chat-router")
    assert plan_of([A40], UBUNTU, service={})["service"]["router"]["unit"] == "vllm-vllm-router"


def test_a_served_name_with_spaces_names_units_the_plan_derives():
    service = plan_of([A40], UBUNTU, service={"served_model_name": "My Chat 7B"})["service"]
    assert (service["name"], service["served_model_name"]) == ("my-chat-7b", "My Chat 7B")
    assert service["replicas"][0]["unit"] == "vllm-my-chat-7b-0"


def test_a_deployment_name_that_cannot_name_a_unit_is_refused_by_the_plan():
    message = refusal([A40], UBUNTU, service={"name": "My Chat"})
    assert "vllm_service_name 'My Chat' cannot name the deployment's systemd units" in message
    assert "'my-chat'" in message


@pytest.mark.parametrize("bind, probe", [
    ("0.0.0.0", "127.0.0.1"),
    ("::", "127.0.0.1"),
    ("192.168.10.21", "192.168.10.21"),
    ("127.0.0.1", "127.0.0.1"),
])
def test_probe_address_is_where_the_server_answers(bind, probe):
    service = plan_of([A40], UBUNTU, service={"name": "tiny", "bind_address": bind, "port": "8080"})["service"]
    assert (service["bind_address"], service["probe_address"], service["port"]) == (bind, probe, 8080)
    assert (service["router"]["bind_address"], service["router"]["port"], service["replicas"][0]["port"]) == (bind, 8080, 8081)


def test_local_model_directory_is_mounted_under_models():
    config = _model_catalog.MODELS["Qwen/Qwen2.5-0.5B-Instruct"]
    plan = plan_of([A40], UBUNTU, {"model_config": config}, model="/srv/models/qwen-small", service={"name": "qwen"})
    assert plan["service"]["model"] == "/models/qwen"
    assert plan["service"]["model_source"] == "/srv/models/qwen-small"
    assert plan["vllm"]["max_model_len"] == config["max_position_embeddings"]


def test_service_runs_the_plan_arguments_and_environment():
    plan = plan_of([K80] * 4, DEBIAN)
    assert plan["service"]["args"] == plan["vllm"]["args"]
    assert plan["service"]["env"] == plan["vllm"]["env"]
    assert "--enforce-eager" in plan["service"]["args"]


@pytest.mark.parametrize("gpus, settings_plan, utilization", [
    ([K80] * 4, {}, 0.85),
    ([A40] * 2, {}, 0.9),
    ([A40] * 2, {"gpu_memory_utilization": 0.8}, 0.8),
    ([], {}, None),
])
def test_service_carries_the_gpu_share_its_replicas_need_free(gpus, settings_plan, utilization):
    plan = plan_of(gpus, UBUNTU if gpus and gpus[0] is A40 else DEBIAN, settings_plan)
    assert plan["service"]["gpu_memory_utilization"] == utilization


# --------------------------------------------------------------------------------------------
# Replicas


def placed(plan):
    return [(replica["name"], replica["port"], replica["gpus"], replica["cpuset"]) for replica in plan["service"]["replicas"]]


def test_k80_boards_read_from_sysfs_serve_one_replica_per_die(make_host):
    plan = sysfs_plan(make_host("k80x2"))
    assert placed(plan) == [("tiny-0", 8001, ["0"], None), ("tiny-1", 8002, ["1"], None), ("tiny-2", 8003, ["2"], None),
                            ("tiny-3", 8004, ["3"], None)]
    assert plan["warnings"] == []


def test_k80_boards_read_from_sysfs_serve_one_replica_per_board_at_tp2(make_host):
    plan = sysfs_plan(make_host("k80x2"), {"tensor_parallel_size": 2})
    assert placed(plan) == [("tiny-0", 8001, ["0", "1"], None), ("tiny-1", 8002, ["2", "3"], None)]
    assert plan["service"]["args"][plan["service"]["args"].index("--tensor-parallel-size") + 1] == "2"
    assert plan["warnings"] == []


def test_k80_without_topology_pairs_dies_in_bus_order_and_warns():
    plan = plan_of([K80] * 4, DEBIAN, {"tensor_parallel_size": 2})
    assert placed(plan) == [("tiny-0", 8001, ["0", "1"], None), ("tiny-1", 8002, ["2", "3"], None)]
    assert plan["warnings"] == [
        "sysfs shows no PCI topology for the Tesla K80 dies, so each group of 2 takes dies in bus order, which is how a "
        "board's switch numbers them; gather facts on the host itself to place the groups by board."]


def test_k80_tp4_is_refused_naming_the_host():
    assert refusal([K80] * 4, DEBIAN, {"tensor_parallel_size": 4}) == (
        HOST + ": tensor_parallel_size 4 would span 2 Tesla K80 boards, and groups across boards have halted machines that feed "
        "both boards from one CPU power cable (vllm37 README, Hardware safety); set it to at most 2, the dies of one board.")


def test_replicas_pin_the_gpus_by_uuid_once_the_driver_named_them():
    host_facts = facts([A40] * 2, UBUNTU)
    host_facts["gpus"] = [dict(gpu, uuid="GPU-a40-%d" % index) for index, gpu in enumerate(host_facts["gpus"])]
    plan = plan_host(HOST, host_facts, settings())
    assert [replica["gpus"] for replica in plan["service"]["replicas"]] == [["GPU-a40-0"], ["GPU-a40-1"]]


@pytest.mark.parametrize("replicas", [3, "3"])
def test_fewer_replicas_than_gpus_leave_the_rest_idle_with_a_warning(replicas):
    plan = plan_of([K80] * 4, DEBIAN, {"replicas": replicas})
    assert [replica["gpus"] for replica in plan["service"]["replicas"]] == [["0"], ["1"], ["2"]]
    assert plan["warnings"] == ["3 replicas at tensor_parallel_size 1 use 3 of the host's 4 GPUs; GPU 3 (Tesla K80 at "
                                "0000:08:00.0) serves none."]


@pytest.mark.parametrize("overrides, message", [
    ({"replicas": 5}, "replicas 5 needs 5 GPUs at tensor_parallel_size 1, but the host's 4 GPUs form only 4 such groups; "
                      "set replicas to at most 4, or leave it unset."),
    ({"replicas": 0}, "replicas 0 is not a positive integer; set it to 1 or more, or leave it unset."),
])
def test_replica_counts_the_gpus_cannot_serve_are_refused(overrides, message):
    assert refusal([K80] * 4, DEBIAN, overrides) == HOST + ": " + message


def test_mixed_gpus_serve_one_replica_each_and_refuse_a_group_of_both():
    assert placed(plan_of([RTX5090, A40], DEBIAN)) == [("tiny-0", 8001, ["0"], None), ("tiny-1", 8002, ["1"], None)]
    assert refusal([RTX5090, A40], DEBIAN, {"tensor_parallel_size": 2}) == (
        HOST + ": tensor_parallel_size 2 would join different GPUs (GeForce RTX 5090 and A40) in one group, whose memory and "
        "speed differ; set it to 1 to serve one replica per GPU.")


def test_cpu_replicas_take_one_core_each_and_bind_their_threads_there():
    service = plan_of([], DEBIAN, {"replicas": 2}, vcpus=2)["service"]
    assert service["replicas"] == [
        {"index": 0, "name": "tiny-0", "unit": "vllm-tiny-0", "port": 8001, "gpus": [], "device_args": [], "gpu_probe": [], "cpuset": "0",
         "env": {"VLLM_CPU_OMP_THREADS_BIND": "0"}},
        {"index": 1, "name": "tiny-1", "unit": "vllm-tiny-1", "port": 8002, "gpus": [], "device_args": [], "gpu_probe": [], "cpuset": "1",
         "env": {"VLLM_CPU_OMP_THREADS_BIND": "1"}},
    ]
    assert service["env"] == {"VLLM_CPU_KVCACHE_SPACE": "4"}


def test_cpu_replicas_split_cores_that_do_not_divide_toward_the_first():
    assert [replica["cpuset"] for replica in plan_of([], DEBIAN, {"replicas": 3}, vcpus=8)["service"]["replicas"]] == [
        "0-2", "3-5", "6-7"]


@pytest.mark.parametrize("overrides, kwargs, message", [
    ({"replicas": 3}, {"vcpus": 2}, "replicas 3 needs a CPU core each, but the host has 2; set replicas to at most 2."),
    # TinyLlama: 4.1 GiB of float32 weights and the 4 GiB CPU KV cache per replica.
    ({"replicas": 2}, {"memory_mib": 12288}, "2 replicas need 16.2 GiB of memory (8.1 GiB of KV cache and weights per replica), "
                                             "but the host has 12.0 GiB; set replicas to at most 1."),
    ({}, {"memory_mib": 4096}, "1 replica needs 8.1 GiB of memory (8.1 GiB of KV cache and weights per replica), but the host "
                               "has 4.0 GiB; serve a smaller model or use a host with more memory."),
    ({}, {"vcpus": None}, "the cpu variant places its replicas by the host's processor_vcpus and memtotal_mb facts, which are "
                          "missing; gather facts on the host before planning."),
])
def test_cpu_replicas_the_host_cannot_hold_are_refused(overrides, kwargs, message):
    assert refusal([], DEBIAN, overrides, **kwargs) == HOST + ": " + message


def test_router_metrics_port_comes_from_the_service_settings():
    service = plan_of([A40], UBUNTU, service={"name": "tiny", "router_metrics_port": "9100"})["service"]
    assert service["router"]["metrics_port"] == 9100


def test_router_metrics_port_on_a_replica_port_is_refused():
    message = refusal([A40], UBUNTU, service={"name": "tiny", "port": 28999})
    assert message == (HOST + ": router_metrics_port 29000 is also the port of replica 0: set router_metrics_port, or port "
                       "(the replicas take the ports after it), so that they differ.")


# --------------------------------------------------------------------------------------------
# Image


def test_build_variant_without_recipe_is_refused_naming_it():
    message = refusal([K80] * 4, DEBIAN, recipes=["cpu"])
    assert message.startswith(HOST + ": the plan builds variant k80, but this release of gpufleet.vllm has no recipe for it")
    assert "roles/vllm_image/files/k80/Dockerfile" in message
    assert "it ships cpu" in message


def test_prebuilt_variant_needs_no_recipe():
    image = plan_of([A40], UBUNTU, recipes=["cpu"])["image"]
    assert (image["build"], image["recipe"], image["reference"]) == (False, None, UPSTREAM_CU129)


def test_build_args_override_merges_over_the_derived_ones():
    image = plan_of([RTX5090], DEBIAN, {"build_args": {"MAX_JOBS": 8, "NVCC_THREADS": None}})["image"]
    assert image["build_args"] == {"TORCH_CUDA_ARCH_LIST": "12.0", "VLLM_VERSION": CU128_VLLM_VERSION,
                                   "MAX_JOBS": "8", "NVCC_THREADS": ""}


def test_build_args_override_replaces_a_derived_value():
    image = plan_of([RTX5090], DEBIAN, {"build_args": {"TORCH_CUDA_ARCH_LIST": "12.0+PTX"}})["image"]
    assert image["build_args"]["TORCH_CUDA_ARCH_LIST"] == "12.0+PTX"


def test_registry_override_names_the_image_and_its_registry():
    image = plan_of([K80] * 4, DEBIAN, {"registry": "registry.example.com:5000"})["image"]
    assert image["name"].startswith("registry.example.com:5000/gpufleet/vllm-k80:")
    assert image["registry"] == "registry.example.com:5000"


def test_built_image_has_no_reference_until_the_fleet_plan_names_it():
    plan = plan_of([RTX5090], DEBIAN)
    assert (plan["image"]["reference"], plan["service"]["image"]) == (None, None)
    assert plan["image"]["name"] == "gpufleet/vllm-cu128:%s" % CU128_VLLM_VERSION


def test_overridden_build_args_are_listed_for_the_fleet_plan():
    image = plan_of([RTX5090], DEBIAN, {"build_args": {"MAX_JOBS": 8, "TORCH_CUDA_ARCH_LIST": "12.0"}})["image"]
    assert image["overridden_build_args"] == ["MAX_JOBS", "TORCH_CUDA_ARCH_LIST"]


def test_registry_mirror_names_prebuilt_images_only():
    mirror = "mirror.example.com:5000"
    assert plan_of([A40], UBUNTU, mirror=mirror)["image"]["reference"] == "%s/%s" % (mirror, UPSTREAM_CU129)
    assert plan_of([A40], UBUNTU, mirror=mirror)["service"]["image"] == "%s/%s" % (mirror, UPSTREAM_CU129)
    assert plan_of([RTX5090], DEBIAN, mirror=mirror)["image"]["name"] == "gpufleet/vllm-cu128:%s" % CU128_VLLM_VERSION


def test_builder_image_is_refused_outside_the_k80_variant():
    message = refusal([A40], DEBIAN, {"builder_image": "registry.example.com/gpufleet/vllm-k80-builder:x"})
    assert "builder_image names the K80 builder image, but this host is planned on variant upstream" in message


def test_the_platform_carries_the_resources_that_size_builds():
    platform = plan_of([A40], DEBIAN, vcpus=16, memory_mib=65536)["platform"]
    assert (platform["vcpus"], platform["memory_mib"]) == (16, 65536)


def fleet(plan):
    """The plan as the fleet plan completes it when the host is the whole fleet."""
    def digest_of(build):
        return recipe_digest([("Dockerfile", "a" * 64)], build["build_args"])
    return plan_fleet([(HOST, plan)], {}, lambda repository, ref: "c" * 40, digest_of)[0][HOST]


# --------------------------------------------------------------------------------------------
# Refusals: one HostPlanError sentence that names the host and the offending value


@pytest.mark.parametrize("devices, system, overrides, kwargs, words", [
    ([A40], DEBIAN, {"driver_brnach": "580"}, {}, ["'driver_brnach'", "did you mean driver_branch?"]),
    ([A40], DEBIAN, {"zzz": 1}, {}, ["gpufleet_plan has no key 'zzz': the keys are "]),
    ([K80, RTX5090], DEBIAN, {}, {}, ["Tesla K80", "GeForce RTX 5090", "no single NVIDIA driver drives both"]),
    ([K80] * 4, DEBIAN, {"driver_branch": "535"}, {}, ["Driver branch 535 cannot drive", "branch <= 470"]),
    ([RTX5090], DEBIAN, {"kernel_module_flavor": "proprietary"}, {}, ["The proprietary kernel modules cannot drive"]),
    ([A40], DEBIAN, {"kernel_module_flavor": "closed"}, {}, ["kernel_module_flavor 'closed' is none of open, proprietary"]),
    ([A40], DEBIAN, {"driver_source": "nvidia"}, {}, ["driver_source 'nvidia' is none of distribution, cuda"]),
    ([K80] * 4, DEBIAN, {"driver_source": "cuda"}, {}, ["has no branch 470"]),
    ([A40], ROCKY, {"driver_source": "distribution"}, {}, ["Rocky Linux 8 has no NVIDIA driver in its own repositories"]),
    ([A40], DEBIAN, {"driver_branch": "latest"}, {}, ["'latest'"]),
    ([K80], DEBIAN, {"max_model_len": 131072}, {"model": "meta-llama/Llama-3.1-8B-Instruct"},
     ["Model meta-llama/Llama-3.1-8B-Instruct does not fit", "Tesla K80"]),
    ([A40], ("Debian", "11.11", "5.10.0-35-amd64"), {}, {}, ["not Debian 11.11"]),
    ([A40], ("Ubuntu", "24.10", "6.11.0-29-generic"), {}, {}, ["not Ubuntu 24.10"]),
    ([A40], ("Fedora", "40", "6.8.5-301.fc40.x86_64"), {}, {}, ["not Fedora 40"]),
    ([A40], DEBIAN, {}, {"architecture": "ppc64le"}, ["not ppc64le"]),
    ([A40], DEBIAN, ["driver_branch", "580"], {}, ["gpufleet_plan must be a mapping", "not list"]),
    ([A40], DEBIAN, "driver_branch=580", {}, ["gpufleet_plan must be a mapping", "not str"]),
    ([A40], DEBIAN, {"variant": "rocm"}, {}, ["variant 'rocm'"]),
    ([K80] * 4, DEBIAN, {"tensor_parallel_size": 4}, {}, ["tensor_parallel_size 4 would span 2 Tesla K80 boards"]),
    ([RTX5090, A40], DEBIAN, {"tensor_parallel_size": 2}, {}, ["would join different GPUs (GeForce RTX 5090 and A40)"]),
    ([A40], DEBIAN, {"replicas": 2}, {}, ["replicas 2 needs 2 GPUs at tensor_parallel_size 1"]),
    ([], DEBIAN, {"replicas": "two"}, {}, ["replicas 'two' is not a positive integer"]),
    ([], DEBIAN, {"replicas": 3}, {"vcpus": 2}, ["replicas 3 needs a CPU core each"]),
    ([], DEBIAN, {"replicas": 2}, {"memory_mib": 12288}, ["2 replicas need 16.2 GiB of memory"]),
])
def test_refusals_name_the_host_and_the_value(devices, system, overrides, kwargs, words):
    message = refusal(devices, system, overrides, **kwargs)
    assert message.startswith(HOST + ": ")
    for word in words:
        assert word in message
    assert message.endswith(".")
    assert "\n" not in message
    assert not re.search(r"\.\s+[A-Z]", message), "more than one sentence: %s" % message


def test_unknown_key_is_refused_before_the_facts_are_read():
    # An unsupported distribution would refuse too: the typo in the inventory is named first.
    assert "did you mean driver_branch?" in refusal([A40], ("Fedora", "40", "6.8.5"), {"driver_brnach": "580"})


def test_check_overrides_accepts_every_plan_key():
    overrides = dict((key, None) for key in PLAN_KEYS)
    assert check_overrides(overrides) is overrides
    assert check_overrides(None) == {}


# --------------------------------------------------------------------------------------------
# Summary


def test_summary_is_one_line_naming_gpu_driver_variant_dtype_and_tp():
    line = summary(HOST, fleet(plan_of([K80] * 4, DEBIAN)))
    assert "\n" not in line
    assert line.startswith(HOST + ": 4 x Tesla K80 (3.7) on Debian 12; ")
    assert "driver 470 proprietary from the distribution (CUDA 11.4)" in line
    assert "image k80 gpufleet/vllm-k80:cccccccccccc-" in line and "(built here, TORCH_CUDA_ARCH_LIST 3.7, MAX_JOBS 7)" in line
    assert "builds gpufleet/vllm-k80-builder:torch2.4.1-cuda11.4-" in line and "for the fleet (about 150 min)" in line
    assert "float32, max_model_len 2048; 4 replicas (TP 1) on GPUs 0, 1, 2 and 3 behind the router on port 8000; " in line
    assert "KV tokens per GPU" in line


def test_summary_names_the_cuda_repository_and_the_content_reference():
    plan = fleet(plan_of([RTX5090], DEBIAN))
    line = summary(HOST, plan)
    assert "driver 570 open from NVIDIA's CUDA repository (CUDA 12.8)" in line
    assert "image cu128 %s (built here, TORCH_CUDA_ARCH_LIST 12.0, MAX_JOBS 7)" % plan["image"]["reference"] in line
    assert "bfloat16, max_model_len 2048; 1 replica (TP 1) on GPU 0 behind the router on port 8000; " in line


def test_summary_of_a_kept_driver_and_a_pulled_image():
    line = summary(HOST, fleet(plan_of([H100], UBUNTU, **loaded_580())))
    assert line.startswith(HOST + ": 1 x H100 SXM5 80GB (9.0) on Ubuntu 24.04; ")
    assert "loaded driver of branch 580 kept (CUDA 13.0)" in line
    assert "image upstream %s (pulled)" % UPSTREAM in line


def test_summary_of_a_host_without_gpu():
    line = summary(HOST, fleet(plan_of([], ROCKY)))
    assert line.startswith(HOST + ": no GPU on Rocky Linux 8; no driver; image cpu ")
    assert "; 1 replica on cores 0-7 behind the router on port 8000; " in line
    assert "KV tokens per replica" in line
    assert "budget per GPU" not in line


def test_summary_counts_mixed_gpus():
    line = summary(HOST, fleet(plan_of([RTX5090, A40], DEBIAN)))
    assert "1 x A40 (8.6), 1 x GeForce RTX 5090 (12.0) on Debian 12" in line
    assert "; 2 replicas (TP 1) on GPUs 0 and 1 behind the router on port 8000; " in line


def test_summary_of_one_replica_per_k80_board(make_host):
    line = summary(HOST, fleet(sysfs_plan(make_host("k80x2"), {"tensor_parallel_size": 2})))
    assert "; 2 replicas (TP 2, one per Tesla K80 board) on GPUs 0+1 and 2+3 behind the router on port 8000; " in line


def test_summary_of_cpu_replicas():
    line = summary(HOST, fleet(plan_of([], DEBIAN, {"replicas": 2}, vcpus=2)))
    assert "; 2 replicas on cores 0 and 1 behind the router on port 8000; " in line


@pytest.mark.parametrize("device", [H100, A40])
def test_a_loaded_proprietary_driver_that_drives_the_gpus_stays_when_no_flavor_is_pinned(device):
    plan = plan_of([device], UBUNTU, driver_loaded=True, driver_version="580.95.05", loaded_kernel_module_flavor="proprietary")
    assert (plan["driver"]["action"], plan["driver"]["branch"], plan["driver"]["flavor"]) == ("keep", "580", "proprietary")


def test_a_pinned_flavor_replaces_a_loaded_driver_of_the_other_flavor():
    plan = plan_of([H100], UBUNTU, {"kernel_module_flavor": "open"}, driver_loaded=True, driver_version="580.95.05",
                   loaded_kernel_module_flavor="proprietary")
    assert (plan["driver"]["action"], plan["driver"]["flavor"]) == ("install", "open")


@pytest.mark.parametrize("value, enabled", [(False, False), ("false", False), ("no", False), (True, True), ("true", True)])
def test_cuda_toolkit_flag_reads_yaml_and_command_line_booleans(value, enabled):
    assert plan_of([A40], UBUNTU, {"cuda_toolkit": value})["toolkit"]["enabled"] is enabled


def test_cuda_toolkit_flag_that_is_no_boolean_is_refused():
    assert "cuda_toolkit must be true or false, not 'maybe'" in refusal([A40], UBUNTU, {"cuda_toolkit": "maybe"})


@pytest.mark.parametrize("key", ["VLLM_VERSION", "VLLM_REF"])
def test_build_args_cannot_change_the_vllm_source_the_tag_names(key):
    devices = [RTX5090] if key == "VLLM_VERSION" else [K80]
    message = refusal(devices, DEBIAN, {"build_args": {key: "x"}})
    assert "gpufleet_plan.build_args sets %s" % key in message and "gpufleet_plan.vllm_version" in message


def test_build_args_are_ignored_for_a_pulled_image():
    plan = plan_of([RTX5090], DEBIAN, {"driver_branch": "580", "build_args": {"MAX_JOBS": "4"}})
    assert plan["image"]["build"] is False and plan["image"]["build_args"] == {}


# --------------------------------------------------------------------------------------------
# Fabric Manager on NVSwitch hosts (HGX H100/H200): in the driver section, and before the replicas


HGX = [H100] * 8


def test_hgx_on_ubuntu_gets_canonicals_fabric_manager_of_the_driver_branch_and_the_replicas_start_after_it():
    plan = plan_of(HGX, UBUNTU, nvswitch_count=4)
    fabric_manager = plan["driver"]["fabric_manager"]
    assert (plan["driver"]["source"], fabric_manager["source"]) == ("distribution", "distribution")
    assert fabric_manager["packages"] == fabric_manager["hold"] == ["nvidia-fabricmanager-570"]
    # The driver is still to be installed: the role pins the exact version once it is in.
    assert (fabric_manager["version"], fabric_manager["install"]) == (None, ["nvidia-fabricmanager-570=570.*"])
    assert (fabric_manager["family"], fabric_manager["apt_component"]) == ("apt", "multiverse")
    assert fabric_manager["service"] == "nvidia-fabricmanager.service"
    assert plan["service"]["after_units"] == ["nvidia-fabricmanager.service"]


def test_hgx_on_debian_gets_fabric_manager_from_the_cuda_repository_like_its_driver():
    plan = plan_of(HGX, DEBIAN, nvswitch_count=4)
    fabric_manager = plan["driver"]["fabric_manager"]
    assert (plan["driver"]["source"], fabric_manager["source"]) == ("cuda", "cuda")
    assert fabric_manager["packages"] == ["nvidia-fabricmanager-570"]
    assert fabric_manager["apt_component"] is None
    assert plan["service"]["after_units"] == ["nvidia-fabricmanager.service"]


def test_hgx_on_debian_from_580_on_gets_the_unversioned_package_name():
    plan = plan_of(HGX, DEBIAN, {"driver_branch": "580"}, nvswitch_count=4)
    assert plan["driver"]["fabric_manager"]["packages"] == ["nvidia-fabricmanager"]
    assert plan["driver"]["fabric_manager"]["install"] == ["nvidia-fabricmanager=580.*"]


def test_hgx_on_rocky_gets_the_rpm_of_the_driver_branch():
    fabric_manager = plan_of(HGX, ROCKY, nvswitch_count=4)["driver"]["fabric_manager"]
    assert (fabric_manager["family"], fabric_manager["packages"]) == ("dnf", ["nvidia-fabric-manager"])
    assert fabric_manager["install"] == ["nvidia-fabric-manager-570.*"]


def test_hgx_with_a_loaded_driver_kept_pins_fabric_manager_to_its_exact_version():
    fabric_manager = plan_of(HGX, UBUNTU, nvswitch_count=4, **loaded_580())["driver"]["fabric_manager"]
    assert fabric_manager["version"] == "580.95.05"
    assert fabric_manager["install"] == ["nvidia-fabricmanager-580=580.95.05-*"]


def test_hgx_on_debian_from_the_distribution_is_refused_in_one_sentence_naming_the_host():
    message = refusal(HGX, DEBIAN, {"driver_source": "distribution", "driver_branch": "535", "kernel_module_flavor": "proprietary"},
                      nvswitch_count=4)
    assert message.startswith(HOST + ": ")
    assert "Fabric Manager" in message and "driver_source to cuda" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_hgx_read_from_sysfs_plans_fabric_manager(make_host):
    tree = make_host("hgx_h100")
    gpus = merge_gpus(scan_sysfs(tree.root))
    gpu_host = summarize_host(gpus, nvswitch_count=len(scan_nvswitches(tree.root)))
    plan = plan_host(HOST, dict(facts(), gpus=gpus, gpu_host=gpu_host), settings())
    assert "4 NVSwitches" in plan["driver"]["fabric_manager"]["reason"]


@pytest.mark.parametrize("devices, kwargs", [([H100], {}), ([], {"nvswitch_count": 4})])
def test_hosts_without_nvswitch_or_without_gpu_get_no_fabric_manager(devices, kwargs):
    plan = plan_of(devices, UBUNTU, **kwargs)
    assert plan["driver"]["fabric_manager"] is None
    assert plan["service"]["after_units"] == []
