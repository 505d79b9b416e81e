# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PRIVATE to the collection: which NVIDIA driver a host gets, and how each distribution installs it.

Pure data and functions; the host plan (_host_plan) calls them, and the nvidia_driver role applies
what they decided. Facts come from the shared reference gpu-driver-facts.md
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
from ansible_collections.gpufleet.vllm.plugins.module_utils._platforms import PLATFORMS

DISTRIBUTION = "distribution"
CUDA = "cuda"

# Open modules are NVIDIA's suggested flavor from R560 (KMOD); below that the proprietary
# modules stay the default for GPUs that accept both.
OPEN_DEFAULT_FROM_BRANCH = "560"

# Package names that carry a driver branch: nvidia-tesla-470-smi, nvidia-headless-580-server-open,
# libnvidia-compute-570, nvidia-driver:570-open... (branches are three digits from 390 on).
_BRANCH_IN_NAME = re.compile(r"(?:^|[-:])((?:3[9]\d)|(?:[4-9]\d\d))(?=$|[-.:])")
# Driver packages whose names carry no branch: NVIDIA's Debian repository names them this way,
# so only their version tells the branch.
_DRIVER_PACKAGE_PREFIXES = ("nvidia", "libnvidia", "libcuda", "cuda-drivers")
# unattended-upgrades reads its blacklist as regular expressions matched at the start of package
# names: the driver, its libraries and firmware, and CUDA change only through the playbook, never
# under a running server ("driver/library version mismatch").
UNATTENDED_UPGRADE_BLACKLIST = ("nvidia", "libnvidia", "libcuda", "cuda-", "firmware-nvidia", "xserver-xorg-video-nvidia")
# Helpers versioned on their own in the distributions (Debian's nvidia-persistenced is 525.x
# beside nvidia-tesla-470): their versions say nothing about the driver branch.
_VERSIONED_APART = ("nvidia-modprobe", "nvidia-persistenced", "nvidia-settings", "nvidia-xconfig",
                    "nvidia-support", "nvidia-kernel-common", "glx-alternative-nvidia", "nvidia-installer-cleanup")
# Versions of driver packages start with the branch; anything below R390 is no driver version
# (the container toolkit's libnvidia-container1 is 1.17.x).
_OLDEST_BRANCH = 390


class DriverPlanError(ValueError):
    """A request the GPUs, the distribution or the packages cannot satisfy; the text is one sentence."""


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
            "gpufleet_plan.driver_branch must be a driver branch such as 470, 570 or 580, not %r." % (chosen_branch,))
    if not _in_interval(chosen_branch, low, high):
        raise DriverPlanError(
            "Driver branch %s cannot drive this host's GPUs (%s), which need branch %s: "
            "set gpufleet_plan.driver_branch within that range or leave it unset."
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
            "set gpufleet_plan.kernel_module_flavor to %s or leave it unset."
            % (chosen_flavor, ", ".join(gpu_host.get("architectures") or []), allowed[0], allowed[0]))
    if chosen_flavor == OPEN and version_key(chosen_branch) < version_key(OPEN_MODULES_MIN_BRANCH):
        raise DriverPlanError(
            "Open kernel modules exist from branch %s on, not in branch %s: pick a newer branch or the proprietary modules."
            % (OPEN_MODULES_MIN_BRANCH, chosen_branch))
    return {"branch": chosen_branch, "flavor": chosen_flavor, "pinned": branch not in (None, ""),
            "flavor_pinned": flavor not in (None, "")}


def loaded_driver_suitable(gpu_host, choice):
    """Whether the driver loaded now can stay: it drives the GPUs, with the pinned flavor if any,
    and is at least the chosen branch (newer drivers run older CUDA builds) unless a branch is pinned,
    in which case only that branch will do."""
    if choice is None or not gpu_host.get("driver_loaded") or not gpu_host.get("driver_fits_gpus"):
        return False
    loaded_branch = gpu_host.get("driver_branch") or branch_of(gpu_host.get("driver_version"))
    if loaded_branch is None:
        return False
    loaded_flavor = gpu_host.get("loaded_kernel_module_flavor")
    # Unpinned, any flavor that drives the GPUs may stay; driver_fits_gpus already holds it to them.
    if choice["flavor_pinned"] and loaded_flavor not in (None, choice["flavor"]):
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
                "%s has no NVIDIA driver in its own repositories: leave gpufleet_plan.driver_source unset or set it to cuda."
                % data["label"])
        chosen = CUDA
    elif platform == "ubuntu2404":
        chosen = source or DISTRIBUTION
        if chosen == DISTRIBUTION and flavor == OPEN and branch == "470":
            raise DriverPlanError("Branch 470 has no open kernel modules: use the proprietary modules.")
        if chosen == CUDA and branch == "470":
            raise DriverPlanError(
                "NVIDIA's CUDA repository for Ubuntu 24.04 has no branch 470: set gpufleet_plan.driver_source to distribution.")
    else:
        carried = data["archive_branches"].get(branch, ())
        in_archive = flavor in carried
        if source == DISTRIBUTION and not in_archive:
            raise DriverPlanError(
                "%s's archive does not carry branch %s with %s kernel modules (it has %s): "
                "set gpufleet_plan.driver_source to cuda or leave it unset."
                % (data["label"], branch, flavor, ", ".join(
                    "%s %s" % (b, "/".join(f)) for b, f in sorted(data["archive_branches"].items()))))
        if source == CUDA and branch == "470":
            raise DriverPlanError(
                "NVIDIA's CUDA repository for %s has no branch 470: leave gpufleet_plan.driver_source unset." % data["label"])
        chosen = source or (DISTRIBUTION if in_archive else CUDA)
    install = _dnf_packages(branch, flavor) if data["family"] == "dnf" else _apt_packages(platform, branch, flavor, chosen)
    install.setdefault("module_stream", None)
    install.setdefault("module_profile", None)
    install["source"] = chosen
    install["apt_components"] = data["apt_components"] if chosen == DISTRIBUTION else None
    return install


def plan(gpu_host, platform, kernel=None, branch=None, flavor=None, source=None):
    """Everything the nvidia_driver role applies, as one dict; raises DriverPlanError with one sentence.

    action: "none" (no GPU), "keep" (the loaded driver suits the GPUs and nothing is pinned
    otherwise) or "install" (packages of the chosen branch and flavor, from source).
    rolls: whether the install replaces a driver that runs now (see replaces_running_driver).
    """
    data = PLATFORMS[platform]
    result = {
        "action": "none",
        "branch": None,
        "flavor": None,
        "pinned": False,
        "kepler": "kepler" in (gpu_host or {}).get("architectures", []),
        "family": data["family"],
        "initramfs_command": data["initramfs_command"],
        "dkms_signing_key": data["dkms_signing_key"],
        "rolls": False,
    }
    choice = choose_driver(gpu_host, branch, flavor)
    if choice is None:
        return result
    result.update(choice)
    if loaded_driver_suitable(gpu_host, choice):
        # What runs is the loaded driver, which may be newer than the branch the plan would install.
        result.update(action="keep", branch=gpu_host.get("driver_branch") or branch_of(gpu_host.get("driver_version")),
                      flavor=gpu_host.get("loaded_kernel_module_flavor") or choice["flavor"])
        return result
    result["action"] = "install"
    result["rolls"] = replaces_running_driver(gpu_host)
    result.update(driver_install(platform, choice["branch"], choice["flavor"], source))
    # dnf-automatic loads the versionlock plugin that already locks the driver on el8.
    result["unattended_upgrade_blacklist"] = list(UNATTENDED_UPGRADE_BLACKLIST) if data["family"] == "apt" else []
    result["kernel_packages"] = _kernel_packages(platform, kernel)
    return result


def replaces_running_driver(gpu_host):
    """Whether installing a driver on the host replaces one that runs now (an upgrade or a branch change).

    Such a host may be serving on the loaded driver: its install waits for the host's turn in the serving
    play, which drains it, installs, reboots and serves it again one batch of hosts at a time. A host
    without a loaded driver serves nothing on its GPUs, so its first driver goes in with the other hosts.
    """
    return bool(gpu_host.get("driver_loaded"))


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
    packages) is foreign, and so is a driver package without a branch in its name whose version is
    of another branch (nvidia-kernel-open-dkms 580.65.06 when 570 was asked). Helpers versioned
    apart from the driver (nvidia-modprobe, nvidia-persistenced) are not.
    """
    foreign = []
    for name, version in packages:
        if not name.startswith(_DRIVER_PACKAGE_PREFIXES):
            continue
        match = _BRANCH_IN_NAME.search(name)
        if match:
            other = match.group(1) != str(branch)
        else:
            version_branch = branch_of(version)
            other = (name not in _VERSIONED_APART and version_branch is not None
                     and int(version_branch) >= _OLDEST_BRANCH and version_branch != str(branch))
        if other:
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
