# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PRIVATE to the collection: which NVIDIA driver a host gets, and how each distribution installs it.

Pure data and functions; the nvidia_driver role reaches them through the filter
gpufleet.vllm.nvidia_driver_plan. Facts come from the shared reference gpu-driver-facts.md
(sections 4, 9, 11, 12): DEBARC = Debian archive, UBARC = packages.ubuntu.com,
DEEPOPS = NVIDIA/deepops, NVGUIDE = NVIDIA driver installation guide, ASSIST =
nvidia-driver-assistant's printed commands.
"""

from __future__ import annotations

import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    ANY_FLAVOR,
    OPEN,
    OPEN_MODULES_MIN_BRANCH,
    PROPRIETARY,
    version_key,
)

DISTRIBUTION = "distribution"
CUDA = "cuda"

# Open modules are NVIDIA's suggested flavor from R560 (KMOD); below that the proprietary
# modules stay the default for GPUs that accept both.
OPEN_DEFAULT_FROM_BRANCH = "560"

# NVIDIA's CUDA repository: directory and signing key per distribution (gpu-driver-facts.md 9).
_CUDA_REPOSITORY_ARCH = {"x86_64": "x86_64", "aarch64": "sbsa"}

PLATFORMS = {
    "debian12": {
        "label": "Debian 12",
        "family": "apt",
        "cuda_repository": "debian12",
        "cuda_repository_key": "3bf863cc.pub",
        # Debian's archive carries R470 as nvidia-tesla-470-* and R535 as nvidia-tesla-535-*,
        # proprietary only; nothing >= 570 (DEBARC).
        "archive_branches": {"470": (PROPRIETARY,), "535": (PROPRIETARY,)},
        "apt_components": ["main", "contrib", "non-free", "non-free-firmware"],
        "initramfs_command": ["update-initramfs", "-u"],
        "dkms_signing_key": "/var/lib/dkms/mok.pub",
    },
    "ubuntu2404": {
        "label": "Ubuntu 24.04",
        "family": "apt",
        "cuda_repository": "ubuntu2404",
        "cuda_repository_key": "3bf863cc.pub",
        # Canonical's restricted component: 470-server and the newer -server[-open] branches (UBARC).
        "archive_branches": None,
        "apt_components": None,
        "initramfs_command": ["update-initramfs", "-u"],
        "dkms_signing_key": "/var/lib/shim-signed/mok/MOK.der",
    },
    "el8": {
        "label": "Rocky Linux 8",
        "family": "dnf",
        "cuda_repository": "rhel8",
        "cuda_repository_key": "D42D0685.pub",
        "archive_branches": {},
        "apt_components": None,
        "initramfs_command": ["dracut", "--force"],
        "dkms_signing_key": "/var/lib/dkms/mok.pub",
    },
}

_EL8_DISTRIBUTIONS = ("Rocky", "AlmaLinux", "RedHat", "OracleLinux", "CentOS")

# Package names that carry a driver branch: nvidia-tesla-470-smi, nvidia-headless-580-server-open,
# libnvidia-compute-570, nvidia-driver:570-open... (branches are three digits from 390 on).
_BRANCH_IN_NAME = re.compile(r"(?:^|[-:])((?:3[9]\d)|(?:[4-9]\d\d))(?=$|[-.:])")


class DriverPlanError(ValueError):
    """A request the GPUs, the distribution or the packages cannot satisfy; the text is one sentence."""


def platform_key(distribution, major_version, architecture="x86_64"):
    """Platform key ("debian12", "ubuntu2404", "el8") for gathered facts, or raise DriverPlanError."""
    major = str(major_version)
    if architecture not in _CUDA_REPOSITORY_ARCH:
        raise DriverPlanError(
            "The nvidia_driver role supports x86_64 and aarch64 hosts, not %s: run it on a supported host." % architecture)
    if distribution == "Debian" and major == "12":
        return "debian12"
    if distribution == "Ubuntu" and major == "24":
        return "ubuntu2404"
    if distribution in _EL8_DISTRIBUTIONS and major == "8":
        return "el8"
    raise DriverPlanError(
        "The nvidia_driver role supports Rocky Linux 8, Ubuntu 24.04 and Debian 12, not %s %s: "
        "run it on one of those or install the driver yourself." % (distribution, major))


def branch_of(version):
    """Driver branch of a version string ("470.256.02-1~deb12u1" -> "470"); None for None."""
    if version is None:
        return None
    parts = version_key(str(version).rsplit(":", 1)[-1])
    return str(parts[0]) if parts else None


def upstream_version(package_version):
    """Driver version inside a package version ("3:570.195.03-1.el8" -> "570.195.03")."""
    if package_version is None:
        return None
    text = str(package_version).rsplit(":", 1)[-1]
    return text.split("-")[0].split("~")[0].split("+")[0]


def _in_interval(branch, low, high):
    key = version_key(branch)
    if low is not None and key < version_key(low):
        return False
    if high is not None and key > version_key(high):
        return False
    return True


def _interval_text(low, high):
    if low and high:
        return "%s to %s" % (low, high) if low != high else low
    if low:
        return ">= %s" % low
    if high:
        return "<= %s" % high
    return "any"


def _allowed_flavors(gpu_host):
    label = gpu_host.get("kernel_module_flavor")
    if label == ANY_FLAVOR:
        return (PROPRIETARY, OPEN)
    return (label,)


def choose_driver(gpu_host, branch=None, flavor=None):
    """Branch and kernel module flavor for the host's GPUs, honouring a user pin.

    Returns None for a host without GPU. Raises DriverPlanError with one sentence when the GPUs
    cannot share a driver or cannot run the pinned branch or flavor.
    """
    if not gpu_host or not gpu_host.get("gpu_count"):
        return None
    if not gpu_host.get("compatible", False) or gpu_host.get("kernel_module_flavor") is None:
        problems = " ".join(gpu_host.get("problems") or []) or "gpu_facts could not name a driver for these GPUs."
        raise DriverPlanError(problems)
    low = gpu_host.get("driver_branch_min")
    high = gpu_host.get("driver_branch_max")
    allowed = _allowed_flavors(gpu_host)
    chosen_branch = str(branch) if branch not in (None, "") else gpu_host.get("default_driver_branch")
    if not re.match(r"^\d{3}$", str(chosen_branch)):
        raise DriverPlanError(
            "nvidia_driver_branch must be a driver branch such as 470, 570 or 580, not %r." % (chosen_branch,))
    if not _in_interval(chosen_branch, low, high):
        raise DriverPlanError(
            "Driver branch %s cannot drive this host's GPUs (%s), which need branch %s: "
            "set nvidia_driver_branch within that range or leave it unset."
            % (chosen_branch, ", ".join(gpu_host.get("architectures") or []), _interval_text(low, high)))
    if flavor in (None, ""):
        if len(allowed) == 1:
            chosen_flavor = allowed[0]
        elif version_key(chosen_branch) >= version_key(OPEN_DEFAULT_FROM_BRANCH):
            chosen_flavor = OPEN
        else:
            chosen_flavor = PROPRIETARY
    else:
        chosen_flavor = flavor
    if chosen_flavor not in allowed:
        raise DriverPlanError(
            "The %s kernel modules cannot drive this host's GPUs (%s), which need the %s modules: "
            "set nvidia_driver_kernel_module_flavor to %s or leave it unset."
            % (chosen_flavor, ", ".join(gpu_host.get("architectures") or []), allowed[0], allowed[0]))
    if chosen_flavor == OPEN and version_key(chosen_branch) < version_key(OPEN_MODULES_MIN_BRANCH):
        raise DriverPlanError(
            "Open kernel modules exist from branch %s on, not in branch %s: pick a newer branch or the proprietary modules."
            % (OPEN_MODULES_MIN_BRANCH, chosen_branch))
    return {"branch": chosen_branch, "flavor": chosen_flavor, "pinned": branch not in (None, "")}


def loaded_driver_suitable(gpu_host, choice):
    """Whether the driver loaded now can stay: it drives the GPUs, with the pinned flavor if any,
    and is at least the chosen branch (newer drivers run older CUDA builds) unless a branch is pinned,
    in which case only that branch will do."""
    if choice is None or not gpu_host.get("driver_loaded") or not gpu_host.get("driver_fits_gpus"):
        return False
    loaded_branch = gpu_host.get("driver_branch") or branch_of(gpu_host.get("driver_version"))
    if loaded_branch is None:
        return False
    if gpu_host.get("loaded_kernel_module_flavor") not in (None, choice["flavor"]):
        return False
    if choice["pinned"]:
        return loaded_branch == choice["branch"]
    return version_key(loaded_branch) >= version_key(choice["branch"])


def _apt_packages(platform, branch, flavor, source):
    if platform == "debian12" and source == DISTRIBUTION:
        prefix = "nvidia-tesla-%s" % branch
        lib = "libnvidia-tesla-%s" % branch
        # Headless set: kernel module, CUDA and NVML libraries, nvidia-smi, the persistence daemon
        # and nvidia-modprobe; the -cfg1 library is named so that nvidia-persistenced does not pull
        # the R535 one (DEBARC). No X server, installed without recommends.
        packages = ["%s-kernel-dkms" % prefix, "%s-cuda1" % lib, "%s-ml1" % lib, "%s-cfg1" % lib,
                    "%s-smi" % prefix, "nvidia-persistenced", "nvidia-modprobe"]
        return {"packages": packages, "hold": packages, "version_package": "%s-kernel-dkms" % prefix,
                "apt_pin": None}
    if platform == "ubuntu2404" and source == DISTRIBUTION:
        suffix = "-server-open" if flavor == OPEN else "-server"
        # Canonical's compute-only packages (DEEPOPS nvidia-driver-ubuntu-packages.yml); no -open for 470.
        packages = ["nvidia-headless-%s%s" % (branch, suffix), "nvidia-utils-%s-server" % branch]
        if branch == "470":
            packages.append("nvidia-modprobe")
        version_package = "nvidia-utils-%s-server" % branch
        return {"packages": packages, "hold": packages + ["nvidia-dkms-%s%s" % (branch, suffix)],
                "version_package": version_package, "apt_pin": None}
    # NVIDIA's CUDA repository. Its branch-suffixed metapackages depend on unversioned packages
    # with ">=" only, which pulls the next branch (NVIDIA forum, cuda-drivers-580 pulling 590), so
    # an apt preference pins every driver package to the branch.
    if platform == "debian12":
        kernel = "nvidia-kernel-open-dkms" if flavor == OPEN else "nvidia-kernel-dkms"
        # NVGUIDE, Debian compute-only installation.
        packages = ["nvidia-driver-cuda", kernel, "nvidia-persistenced", "nvidia-modprobe"]
        version_package = kernel
    else:
        kernel = "nvidia-open-%s" % branch if flavor == OPEN else "cuda-drivers-%s" % branch
        packages = [kernel]  # ASSIST: apt install nvidia-open-<BR> / cuda-drivers-<BR>
        version_package = kernel
    return {"packages": packages, "hold": packages, "version_package": version_package,
            "apt_pin": {"packages": packages, "version": "%s.*" % branch}}


def _dnf_packages(branch, flavor):
    # Locked module stream: <BR>-dkms (proprietary) or <BR>-open, never latest* (gpu-driver-facts.md 9, 11).
    stream = "%s-open" % branch if flavor == OPEN else "%s-dkms" % branch
    kernel = "kmod-nvidia-open-dkms" if flavor == OPEN else "kmod-nvidia-latest-dkms"
    packages = ["nvidia-driver", "nvidia-driver-cuda", "nvidia-driver-libs", "nvidia-persistenced",
                "nvidia-modprobe", "nvidia-kmod-common", kernel]
    return {"packages": packages, "hold": packages, "version_package": kernel, "apt_pin": None,
            "module_stream": "nvidia-driver:%s" % stream, "module_profile": "default"}


def driver_install(platform, branch, flavor, source=None):
    """How a platform installs a branch and flavor: source, repository, packages, pins.

    source: None picks the distribution's own packages where it carries the branch and flavor,
    else NVIDIA's CUDA repository; "distribution" or "cuda" force one (with an error when the
    chosen one cannot deliver).
    """
    data = PLATFORMS[platform]
    if data["family"] == "dnf":
        if source == DISTRIBUTION:
            raise DriverPlanError(
                "%s has no NVIDIA driver in its own repositories: leave nvidia_driver_source unset or set it to cuda."
                % data["label"])
        chosen = CUDA
    elif platform == "ubuntu2404":
        chosen = source or DISTRIBUTION
        if chosen == DISTRIBUTION and flavor == OPEN and branch == "470":
            raise DriverPlanError("Branch 470 has no open kernel modules: use the proprietary modules.")
        if chosen == CUDA and branch == "470":
            raise DriverPlanError(
                "NVIDIA's CUDA repository for Ubuntu 24.04 has no branch 470: set nvidia_driver_source to distribution.")
    else:
        carried = data["archive_branches"].get(branch, ())
        in_archive = flavor in carried
        if source == DISTRIBUTION and not in_archive:
            raise DriverPlanError(
                "%s's archive does not carry branch %s with %s kernel modules (it has %s): "
                "set nvidia_driver_source to cuda or leave it unset."
                % (data["label"], branch, flavor, ", ".join(
                    "%s %s" % (b, "/".join(f)) for b, f in sorted(data["archive_branches"].items()))))
        if source == CUDA and branch == "470":
            raise DriverPlanError(
                "NVIDIA's CUDA repository for %s has no branch 470: leave nvidia_driver_source unset." % data["label"])
        chosen = source or (DISTRIBUTION if in_archive else CUDA)
    install = _dnf_packages(branch, flavor) if data["family"] == "dnf" else _apt_packages(platform, branch, flavor, chosen)
    install.setdefault("module_stream", None)
    install.setdefault("module_profile", None)
    install["source"] = chosen
    install["cuda_repository"] = data["cuda_repository"] if chosen == CUDA else None
    install["apt_components"] = data["apt_components"] if chosen == DISTRIBUTION else None
    return install


def plan(gpu_host, distribution, major_version, architecture="x86_64", kernel=None, branch=None,
         flavor=None, source=None):
    """Everything the nvidia_driver role decides, as one dict; errors as {"error": sentence}."""
    try:
        platform = platform_key(distribution, major_version, architecture)
        choice = choose_driver(gpu_host, branch, flavor)
    except DriverPlanError as exc:
        return {"error": str(exc)}
    data = PLATFORMS[platform]
    result = {
        "error": None,
        "platform": platform,
        "platform_label": data["label"],
        "family": data["family"],
        "action": "none",
        "branch": None,
        "flavor": None,
        "pinned": False,
        "kepler": "kepler" in (gpu_host or {}).get("architectures", []),
        "initramfs_command": data["initramfs_command"],
        "dkms_signing_key": data["dkms_signing_key"],
        "cuda_repository_arch": _CUDA_REPOSITORY_ARCH[architecture],
        "cuda_repository_key": data["cuda_repository_key"],
    }
    if choice is None:
        return result
    result.update(choice)
    if loaded_driver_suitable(gpu_host, choice):
        result["action"] = "keep"
        return result
    try:
        install = driver_install(platform, choice["branch"], choice["flavor"], source)
    except DriverPlanError as exc:
        return {"error": str(exc)}
    result["action"] = "install"
    result.update(install)
    result["kernel_packages"] = _kernel_packages(platform, kernel)
    return result


def _kernel_packages(platform, kernel):
    """Headers DKMS needs for the running kernel (gpu-driver-facts.md 9: Rocky needs kernel-devel)."""
    if not kernel:
        return []
    if platform == "el8":
        return ["kernel-devel-%s" % kernel, "kernel-headers-%s" % kernel]
    return ["linux-headers-%s" % kernel]


def foreign_branch_packages(packages, branch):
    """Packages apt or dnf would install that belong to another driver branch.

    packages: (name, version) pairs, e.g. from `apt-get install --simulate`. A name carrying a
    different branch (nvidia-headless-580-server when 535 was asked: Canonical's transitional
    packages) or a driver package whose version is of another branch is foreign. Helper packages
    with branch-like versions but no branch in the name (nvidia-modprobe, nvidia-persistenced from
    the distribution) are not.
    """
    foreign = []
    for name, version in packages:
        match = _BRANCH_IN_NAME.search(name)
        if match and match.group(1) != str(branch) and name.startswith(("nvidia", "libnvidia", "cuda-drivers")):
            foreign.append("%s %s" % (name, version) if version else name)
    return foreign


_APT_SIMULATED = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)")


def parse_apt_simulation(text):
    """(name, version) of each package `apt-get install --simulate` would install or upgrade."""
    result = []
    for line in (text or "").splitlines():
        match = _APT_SIMULATED.match(line)
        if match:
            result.append((match.group(1), match.group(2)))
    return result


def secure_boot_enabled(efivar_bytes):
    """Secure Boot state from the SecureBoot EFI variable: 4 attribute bytes, then 1 = enabled."""
    if efivar_bytes is None or len(efivar_bytes) < 5:
        return False
    return bytearray(efivar_bytes)[4] == 1


def reboot_needed(installed_version, loaded_version):
    """A reboot is needed when the installed driver is not the loaded one."""
    if installed_version is None:
        return False
    return upstream_version(installed_version) != loaded_version
