# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""GPU detection in layers: sysfs (always), pci.ids (names for ids the catalog lacks), NVML and
nvidia-smi (only with a loaded driver). Pure functions: callers pass paths, texts and the pynvml
module object, so that tests run them against fake trees and test doubles.
"""

from __future__ import annotations

import csv
import gzip
import os
import re

from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_catalog import (
    ANY_FLAVOR,
    NVIDIA_VENDOR_ID,
    OPEN,
    OPEN_MODULES_MIN_BRANCH,
    PROPRIETARY,
    UNKNOWN,
    architecture_for_cc,
    architecture_requirements,
    default_driver_branch,
    describe_requirements,
    driver_max_cuda,
    flavor_label,
    normalize_device_id,
    resolve_device,
    version_key,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_files import read_text

# Where distributions install pci.ids (pciutils: /usr/share/misc on Debian/Ubuntu; hwdata on
# RHEL/Rocky; /usr/share/pci.ids on some others).
DEFAULT_PCI_IDS_PATHS = (
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
    "/usr/share/misc/pci.ids.gz",
    "/usr/share/hwdata/pci.ids.gz",
    "/usr/share/pci.ids.gz",
)

# The nvidia-smi fields the module asks for. compute_cap is left out on purpose: driver 470 answers
# "Field compute_cap is not a valid field to query" (huggingface/candle#733).
NVIDIA_SMI_FIELDS = ("pci.bus_id", "pci.device_id", "name", "memory.total", "uuid", "driver_version")
NVIDIA_SMI_ARGS = ("--query-gpu=" + ",".join(NVIDIA_SMI_FIELDS), "--format=csv,noheader,nounits")

# PCI class codes (PCIIDS class list): base class 0x03 display; subclass 0x00 VGA (GeForce cards),
# 0x02 3D controller (data-center boards). Audio (0x0403) and USB (0x0c03) functions of consumer
# cards share the slot but are no GPUs.
_GPU_CLASS_PREFIXES = ("0x0300", "0x0302")
# NVSwitches are NVIDIA functions of class 0x0680, "other bridge" (lspci: "Bridge [0680]: NVIDIA
# Corporation GH100 [H100 NVSwitch]"), on HGX-2, HGX A100 and HGX H100/H200 baseboards.
_NVSWITCH_CLASS_PREFIX = "0x0680"

LAYER_ORDER = ("nvml", "nvidia-smi", "sysfs")

_MIB = 1024 * 1024

# The host bridge's directory under /sys/devices, which a PCI function's link passes through:
# pci0000:00 (domain 0000, root bus 00); VMD domains have five hex digits (pci10000:00).
_ROOT_COMPLEX = re.compile(r"^pci[0-9a-f]{4,}:[0-9a-f]{2}$")


def nvml_text(value):
    """str from the bytes or str that different pynvml releases return."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip()
    return value or None


def _read_text(path):
    """A sysfs attribute without its newline, or None where it is missing or unreadable."""
    text = read_text(path)
    return None if text is None else text.strip()


def normalize_bus_id(value):
    """PCI address as sysfs writes it: "00000000:05:00.0" (NVML, nvidia-smi) -> "0000:05:00.0"."""
    text = nvml_text(value)
    if text is None:
        return None
    text = text.lower()
    match = re.match(r"^(?:([0-9a-f]+):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$", text)
    if not match:
        return text
    domain = int(match.group(1) or "0", 16)
    return "%04x:%02x:%02x.%s" % (domain, int(match.group(2), 16), int(match.group(3), 16), match.group(4))


def _pci_bridges(devices_dir, name):
    """The PCI bridges between the root complex and the function ``name``, the root port first.

    sysfs links /sys/bus/pci/devices/<address> to the function's place in the device tree, for
    example ../../../devices/pci0000:00/0000:00:03.0/0000:03:00.0/0000:04:08.0/0000:05:00.0, whose
    bridges are 0000:00:03.0, 0000:03:00.0 and 0000:04:08.0. [] for a function on the root bus;
    None where there is no such link (a flat tree), which leaves the topology unknown.
    """
    try:
        parts = os.readlink(os.path.join(devices_dir, name)).split("/")
    except (IOError, OSError):
        return None
    roots = [index for index, part in enumerate(parts) if _ROOT_COMPLEX.match(part)]
    if not roots:
        return None
    return [normalize_bus_id(part) for part in parts[roots[-1] + 1:-1]]


def _nvidia_functions(sysfs_root, class_prefixes):
    """(devices directory, name, PCI class) of each NVIDIA function whose class starts with one of class_prefixes,
    sorted by PCI address; none for a missing or unreadable tree."""
    devices_dir = os.path.join(sysfs_root, "bus", "pci", "devices")
    try:
        names = sorted(os.listdir(devices_dir))
    except (IOError, OSError):
        return []
    found = []
    for name in names:
        path = os.path.join(devices_dir, name)
        vendor = (_read_text(os.path.join(path, "vendor")) or "").lower()
        pci_class = (_read_text(os.path.join(path, "class")) or "").lower()
        if vendor == NVIDIA_VENDOR_ID and pci_class.startswith(class_prefixes):
            found.append((devices_dir, name, pci_class))
    return found


def scan_sysfs(sysfs_root):
    """NVIDIA display functions under <sysfs_root>/bus/pci/devices, sorted by PCI address.

    Each item: pci_bus_id, pci_device_id, pci_class, subsystem_vendor, subsystem_device,
    kernel_driver (name of the bound driver or None) and pci_bridges (see _pci_bridges). A
    missing or unreadable tree gives [].
    """
    found = []
    for devices_dir, name, pci_class in _nvidia_functions(sysfs_root, _GPU_CLASS_PREFIXES):
        path = os.path.join(devices_dir, name)
        driver = None
        try:
            driver = os.path.basename(os.readlink(os.path.join(path, "driver")))
        except (IOError, OSError):
            pass
        found.append({
            "pci_bus_id": normalize_bus_id(name),
            "pci_device_id": normalize_device_id(_read_text(os.path.join(path, "device"))),
            "pci_class": pci_class,
            "subsystem_vendor": (_read_text(os.path.join(path, "subsystem_vendor")) or "").lower() or None,
            "subsystem_device": (_read_text(os.path.join(path, "subsystem_device")) or "").lower() or None,
            "kernel_driver": driver,
            "pci_bridges": _pci_bridges(devices_dir, name),
        })
    return found


def scan_nvswitches(sysfs_root):
    """PCI addresses of the NVSwitches under <sysfs_root>/bus/pci/devices, sorted; [] for a missing tree.

    Only NVSwitches that the nvidia driver sees as PCI functions are found (first to third generation:
    HGX-2, HGX A100, HGX H100/H200). The fourth-generation NVSwitches of HGX B200 boards are set up with
    the NVLink Subnet Manager and may not show as NVIDIA functions, so none found does not rule them out.
    """
    return [normalize_bus_id(name) for dummy, name, dummy_class in _nvidia_functions(sysfs_root, (_NVSWITCH_CLASS_PREFIX,))]


def read_minor_numbers(gpus_dir):
    """{pci_bus_id: minor number} from <gpus_dir>/<address>/information, which the loaded driver writes per GPU
    (/proc/driver/nvidia/gpus; "Device Minor: 0" names /dev/nvidia0). {} without a loaded driver.

    NVML knows the minor number too, but nvidia-smi cannot be asked for it ("minor_number is not a valid field
    to query", driver 580), so procfs serves every layer alike.
    """
    try:
        names = os.listdir(gpus_dir)
    except (IOError, OSError):
        return {}
    minors = {}
    for name in names:
        match = re.search(r"^Device Minor:\s*(\d+)\s*$", _read_text(os.path.join(gpus_dir, name, "information")) or "", re.M)
        if match:
            minors[normalize_bus_id(name)] = int(match.group(1))
    return minors


def sysfs_has_pci(sysfs_root):
    """Whether <sysfs_root>/bus/pci/devices exists (sysfs mounted, PCI bus present)."""
    return os.path.isdir(os.path.join(sysfs_root, "bus", "pci", "devices"))


def read_module_version(sysfs_root):
    """Version of the loaded nvidia kernel module from <sysfs_root>/module/nvidia/version, or None.

    The file exists only while the module is loaded (observed on the project's H100 machine:
    "580.159.04", matching /proc/driver/nvidia/version and nvidia-smi).
    """
    return _read_text(os.path.join(sysfs_root, "module", "nvidia", "version")) or None


def module_loaded(sysfs_root):
    """Whether <sysfs_root>/module/nvidia exists, i.e. the nvidia kernel module is loaded."""
    return os.path.isdir(os.path.join(sysfs_root, "module", "nvidia"))


def parse_proc_driver_version(text):
    """Parse /proc/driver/nvidia/version.

    Returns {"version": "580.159.04", "kernel_module_flavor": "open"|"proprietary"} or None when the
    text has no NVRM line. The open modules announce themselves as "Open Kernel Module" there.
    """
    for line in (text or "").splitlines():
        if not line.startswith("NVRM version:"):
            continue
        match = re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s", line + " ")
        if not match:
            return None
        flavor = OPEN if "open kernel module" in line.lower() else PROPRIETARY
        return {"version": match.group(1), "kernel_module_flavor": flavor}
    return None


def _open_pci_ids(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "r", encoding="utf-8", errors="replace")


def parse_pci_ids(lines):
    """Device names of vendor 10de from pci.ids lines: {"0x2b85": "GB202 [GeForce RTX 5090]"}."""
    devices = {}
    inside = False
    for raw in lines:
        line = raw.rstrip("\n").rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            # A vendor line ("10de  NVIDIA Corporation") or the class section ("C 03 ...").
            if inside:
                break
            inside = line[:4].lower() == "10de" and line[4:5] in (" ", "\t")
            continue
        if inside and not line.startswith("\t\t"):
            match = re.match(r"^\t([0-9a-fA-F]{4})\s+(.*)$", line)
            if match:
                devices["0x" + match.group(1).lower()] = match.group(2).strip()
    return devices


def read_pci_ids(path):
    """parse_pci_ids() of a file (plain or .gz); {} when it cannot be read."""
    try:
        with _open_pci_ids(path) as handle:
            return parse_pci_ids(handle)
    except (IOError, OSError, EOFError):
        return {}


def find_pci_ids(paths=DEFAULT_PCI_IDS_PATHS):
    """First existing file of paths, or None."""
    for path in paths:
        if os.path.isfile(path):
            return path
    return None


def smi_value(text):
    """A field of nvidia-smi's CSV output, or None where it is empty or says "N/A", "[N/A]", "[Not Supported]"."""
    text = (text or "").strip()
    if not text or text.startswith("[") or text in ("N/A", "Not Supported"):
        return None
    return text


def parse_nvidia_smi_csv(text):
    """Parse the CSV of ``nvidia-smi`` with NVIDIA_SMI_ARGS.

    Returns one dict per GPU: pci_bus_id (sysfs form), pci_device_id ("0x102d"), name, memory_mib
    (int or None), uuid, driver_version. Lines with another number of fields are skipped.
    """
    gpus = []
    rows = csv.reader((text or "").splitlines(), skipinitialspace=True)
    for row in rows:
        if len(row) != len(NVIDIA_SMI_FIELDS):
            continue
        bus_id, device_id, name, memory, uuid, driver = [smi_value(field) for field in row]
        if bus_id is None:
            continue
        memory_mib = None
        if memory is not None and re.match(r"^\d+$", memory):
            memory_mib = int(memory)
        gpus.append({
            "pci_bus_id": normalize_bus_id(bus_id),
            "pci_device_id": normalize_device_id(device_id),
            "name": name,
            "memory_mib": memory_mib,
            "uuid": uuid,
            "driver_version": driver,
        })
    return gpus


def cuda_version_from_int(value):
    """NVML's CUDA driver version integer to text: 12080 -> "12.8", 11040 -> "11.4"."""
    if value is None:
        return None
    value = int(value)
    if value <= 0:
        return None
    return "%d.%d" % (value // 1000, (value % 1000) // 10)


def query_nvml(pynvml):
    """Ask NVML through the given pynvml module object.

    Returns {"available": bool, "error": str|None, "driver_version", "cuda_driver_version",
    "gpus": [...], "device_errors": [...]}. pynvml None means the Python binding is missing. Errors
    (library missing, driver not loaded, a function the binding is too old to have) never raise;
    nvmlShutdown runs whenever init succeeded.
    """
    result = {
        "available": False,
        "error": None,
        "driver_version": None,
        "cuda_driver_version": None,
        "gpus": [],
        "device_errors": [],
    }
    return ask_nvml(pynvml, result, _ask_detection)


def ask_nvml(pynvml, result, ask):
    """Run ask(pynvml, errors, result) between nvmlInit and nvmlShutdown; return result.

    result holds "available", "error" and "device_errors"; ask fills in the rest through call_nvml, errors being what
    the binding raises. pynvml None means the Python binding is missing. NVML's errors never raise: a failed init
    sets result["error"], a failed call adds to result["device_errors"]; nvmlShutdown runs whenever init succeeded.
    """
    if pynvml is None:
        result["error"] = "the Python module pynvml (PyPI package nvidia-ml-py) is not installed"
        return result
    nvml_error = getattr(pynvml, "NVMLError", None)
    errors = (nvml_error, AttributeError, OSError) if isinstance(nvml_error, type) else (AttributeError, OSError)
    try:
        pynvml.nvmlInit()
    except errors as exc:
        result["error"] = "nvmlInit failed: %s" % (exc,)
        return result
    try:
        result["available"] = True
        ask(pynvml, errors, result)
    finally:
        try:
            pynvml.nvmlShutdown()
        except errors as exc:
            result["device_errors"].append("nvmlShutdown failed: %s" % (exc,))
    return result


def _ask_detection(pynvml, errors, result):
    result["driver_version"] = nvml_text(call_nvml(result, errors, "driver version", pynvml, "nvmlSystemGetDriverVersion"))
    result["cuda_driver_version"] = cuda_version_from_int(
        call_nvml(result, errors, "CUDA driver version", pynvml, "nvmlSystemGetCudaDriverVersion"))
    count = call_nvml(result, errors, "device count", pynvml, "nvmlDeviceGetCount") or 0
    for index in range(int(count)):
        gpu = _query_nvml_device(pynvml, errors, result, index)
        if gpu is not None:
            result["gpus"].append(gpu)


def call_nvml(result, errors, what, pynvml, name, *args):
    """pynvml.<name>(*args), or None with the error noted under ``what`` in result["device_errors"].

    The function is looked up inside the guard: a binding older than the function lacks it, and
    that must cost this one answer, not the whole query.
    """
    try:
        return getattr(pynvml, name)(*args)
    except errors as exc:
        result["device_errors"].append("%s: %s" % (what, exc))
        return None


def _query_nvml_device(pynvml, errors, result, index):
    handle = call_nvml(result, errors, "GPU %d handle" % index, pynvml, "nvmlDeviceGetHandleByIndex", index)
    if handle is None:
        return None
    pci = call_nvml(result, errors, "GPU %d PCI info" % index, pynvml, "nvmlDeviceGetPciInfo", handle)
    if pci is None:
        return None
    memory = call_nvml(result, errors, "GPU %d memory" % index, pynvml, "nvmlDeviceGetMemoryInfo", handle)
    capability = call_nvml(result, errors, "GPU %d compute capability" % index, pynvml, "nvmlDeviceGetCudaComputeCapability", handle)
    total = getattr(memory, "total", None)
    return {
        "pci_bus_id": normalize_bus_id(getattr(pci, "busId", None)),
        "pci_device_id": normalize_device_id(getattr(pci, "pciDeviceId", None)),
        "name": nvml_text(call_nvml(result, errors, "GPU %d name" % index, pynvml, "nvmlDeviceGetName", handle)),
        "memory_mib": int(total) // _MIB if total is not None else None,
        "uuid": nvml_text(call_nvml(result, errors, "GPU %d UUID" % index, pynvml, "nvmlDeviceGetUUID", handle)),
        "compute_capability": "%d.%d" % tuple(capability) if capability else None,
    }


def _first(layers, key):
    for layer in layers:
        if layer is not None and layer.get(key) is not None:
            return layer.get(key)
    return None


def merge_gpus(sysfs_gpus=None, *, smi_gpus=None, nvml_gpus=None, pci_ids=None, minor_numbers=None):
    """One entry per GPU, sorted by pci_bus_id, merged from the three layers.

    Per field the richest layer that knows it wins (NVML, then nvidia-smi, then sysfs + catalog +
    pci.ids); ``source`` names the richest layer that saw the GPU. GPUs that only NVML or
    nvidia-smi saw (sysfs not mounted) are listed too. minor_numbers: read_minor_numbers().
    """
    pci_ids = pci_ids or {}
    minor_numbers = minor_numbers or {}
    by_layer = {
        "nvml": dict((gpu["pci_bus_id"], gpu) for gpu in (nvml_gpus or [])),
        "nvidia-smi": dict((gpu["pci_bus_id"], gpu) for gpu in (smi_gpus or [])),
        "sysfs": dict((gpu["pci_bus_id"], gpu) for gpu in (sysfs_gpus or [])),
    }
    bus_ids = set()
    for layer in by_layer.values():
        bus_ids.update(layer)
    merged = []
    for bus_id in sorted(bus_ids, key=lambda text: text or ""):
        layers = [by_layer[name].get(bus_id) for name in LAYER_ORDER]
        source = next(name for name in LAYER_ORDER if by_layer[name].get(bus_id) is not None)
        device_id = _first(layers, "pci_device_id")
        known = resolve_device(device_id, pci_ids.get(device_id)) if device_id else resolve_device(None)
        compute_capability = _first(layers, "compute_capability")
        architecture = known["architecture"]
        if compute_capability is not None:
            measured = architecture_for_cc(compute_capability)
            if measured != UNKNOWN:
                architecture = measured
        else:
            compute_capability = known["compute_capability"]
        sysfs = by_layer["sysfs"].get(bus_id) or {}
        memory_mib = _first(layers, "memory_mib")
        merged.append({
            "pci_bus_id": bus_id,
            "pci_device_id": device_id,
            "name": _first(layers, "name") or known["name"],
            "architecture": architecture,
            "compute_capability": compute_capability,
            "memory_mib": memory_mib if memory_mib is not None else known["memory_mib"],
            "uuid": _first(layers, "uuid"),
            "source": source,
            "chip": known["chip"],
            "known_by": known["known_by"],
            "kernel_driver": sysfs.get("kernel_driver"),
            "subsystem_vendor": sysfs.get("subsystem_vendor"),
            "subsystem_device": sysfs.get("subsystem_device"),
            "pci_bridges": sysfs.get("pci_bridges"),
            "minor_number": minor_numbers.get(bus_id),
        })
    return merged


def _gpu_label(gpu):
    return "%s (%s)" % (gpu.get("name") or "GPU %s" % gpu.get("pci_device_id"), gpu.get("pci_bus_id"))


def _requirements_conflict(first, second):
    if not set(first["flavors"]) & set(second["flavors"]):
        return True
    lows = [value for value in (first["branch_min"], second["branch_min"]) if value]
    highs = [value for value in (first["branch_max"], second["branch_max"]) if value]
    if lows and highs:
        return version_key(max(lows, key=version_key)) > version_key(min(highs, key=version_key))
    return False


def driver_constraints(gpus):
    """Intersect the driver needs of every GPU of known architecture.

    Returns (flavor, branch_min, branch_max, compatible, problems). flavor is "proprietary", "open",
    "any" or None (no GPU of known architecture); branches are strings or None for unbounded.
    """
    problems = []
    flavors = None
    lows = []
    highs = []
    representatives = []
    for gpu in gpus:
        req = architecture_requirements(gpu.get("architecture"))
        if req is None:
            problems.append(
                "GPU with PCI device id 10de:%s at %s is in neither the collection's catalog nor the host's pci.ids, "
                "so its architecture is unknown and no driver can be chosen for it: update pci.ids on the host "
                "(update-pciids) or point pci_ids_path at a newer copy, or set the driver branch and kernel module "
                "flavor explicitly." % ((gpu.get("pci_device_id") or "unknown")[2:], gpu.get("pci_bus_id")))
            continue
        flavors = set(req["flavors"]) if flavors is None else flavors & set(req["flavors"])
        if req["branch_min"]:
            lows.append(req["branch_min"])
        if req["branch_max"]:
            highs.append(req["branch_max"])
        if all(other[1]["architecture"] != req["architecture"] for other in representatives):
            representatives.append((gpu, req))
    if flavors is None:
        return None, None, None, True, problems
    branch_min = max(lows, key=version_key) if lows else None
    branch_max = min(highs, key=version_key) if highs else None
    if OPEN in flavors and branch_max is not None and version_key(branch_max) < version_key(OPEN_MODULES_MIN_BRANCH):
        flavors.discard(OPEN)
    compatible = bool(flavors) and not (
        branch_min is not None and branch_max is not None and version_key(branch_min) > version_key(branch_max))
    if not compatible:
        conflicts = []
        for index, (gpu, req) in enumerate(representatives):
            for other, other_req in representatives[index + 1:]:
                if _requirements_conflict(req, other_req):
                    conflicts.append((gpu, req, other, other_req))
        for gpu, req, other, other_req in conflicts:
            problems.append(
                "%s needs %s while %s needs %s: no single NVIDIA driver drives both, so this host cannot serve "
                "them together; move one of the cards to another host or exclude it."
                % (_gpu_label(gpu), describe_requirements(req["architecture"]),
                   _gpu_label(other), describe_requirements(other_req["architecture"])))
        if not conflicts:
            problems.append(
                "The GPUs of this host need driver branches from %s to %s with %s kernel modules, which no driver "
                "satisfies; split the GPUs across hosts." % (branch_min, branch_max, flavor_label(flavors) or "no common"))
    return flavor_label(flavors), branch_min, branch_max, compatible, problems


def summarize_host(gpus, *, driver_loaded=False, driver_version=None, cuda_driver_version=None,
                   loaded_kernel_module_flavor=None, detection=None, nvswitch_count=0):
    """The ``gpufleet_gpu_host`` fact for merged GPU entries and what the driver layers said."""
    flavor, branch_min, branch_max, compatible, problems = driver_constraints(gpus)
    if cuda_driver_version is None and driver_version:
        cuda_driver_version = driver_max_cuda(driver_version)
    architectures = sorted(set(gpu.get("architecture") for gpu in gpus if gpu.get("architecture")))
    known = [architecture for architecture in architectures if architecture != UNKNOWN]
    driver_branch = None
    in_range = None
    if driver_version:
        driver_branch = str(version_key(driver_version)[0]) if version_key(driver_version) else None
        if driver_branch and gpus and compatible and known:
            in_range = not (
                (branch_min is not None and version_key(driver_branch) < version_key(branch_min))
                or (branch_max is not None and version_key(driver_branch) > version_key(branch_max)))
            if loaded_kernel_module_flavor and flavor not in (None, ANY_FLAVOR) and loaded_kernel_module_flavor != flavor:
                in_range = False
    return {
        "gpu_count": len(gpus),
        "driver_loaded": bool(driver_loaded),
        "driver_version": driver_version,
        "cuda_driver_version": cuda_driver_version,
        "kernel_module_flavor": flavor,
        "driver_branch_min": branch_min,
        "driver_branch_max": branch_max,
        "compatible": compatible,
        "problems": problems,
        "architectures": architectures,
        "default_driver_branch": default_driver_branch(known) if known else None,
        "driver_branch": driver_branch,
        "loaded_kernel_module_flavor": loaded_kernel_module_flavor,
        "driver_fits_gpus": in_range,
        "nvswitch_count": nvswitch_count,
        "detection": detection or {},
    }


def build_facts(sysfs_gpus, *, pci_ids=None, nvml=None, smi_gpus=None, module_version=None,
                proc_version_text=None, nvidia_module_loaded=False, detection=None, minor_numbers=None, nvswitches=None):
    """Both facts of the gpu_facts module from what each layer returned.

    nvml is the dict of query_nvml() (or None when not asked); smi_gpus the list of
    parse_nvidia_smi_csv() (or None); module_version the text of <sysfs>/module/nvidia/version;
    proc_version_text the text of /proc/driver/nvidia/version; minor_numbers what read_minor_numbers()
    read; nvswitches what scan_nvswitches() found.
    """
    nvml_ok = bool(nvml and nvml.get("available"))
    gpus = merge_gpus(sysfs_gpus, smi_gpus=smi_gpus, nvml_gpus=nvml["gpus"] if nvml_ok else None, pci_ids=pci_ids,
                      minor_numbers=minor_numbers)
    proc = parse_proc_driver_version(proc_version_text)
    smi_driver = None
    for gpu in smi_gpus or []:
        smi_driver = smi_driver or gpu.get("driver_version")
    driver_version = (
        (nvml["driver_version"] if nvml_ok else None) or smi_driver or module_version
        or (proc["version"] if proc else None))
    driver_loaded = bool(nvml_ok or smi_gpus or nvidia_module_loaded or module_version or proc)
    host = summarize_host(
        gpus,
        driver_loaded=driver_loaded,
        driver_version=driver_version,
        cuda_driver_version=nvml["cuda_driver_version"] if nvml_ok else None,
        loaded_kernel_module_flavor=proc["kernel_module_flavor"] if proc else None,
        detection=detection,
        nvswitch_count=len(nvswitches or []),
    )
    driver_layer = "NVML" if nvml_ok else ("nvidia-smi" if smi_gpus is not None else None)
    if driver_layer:
        seen = set(gpu["pci_bus_id"] for gpu in (nvml["gpus"] if nvml_ok else smi_gpus))
        for gpu in gpus:
            if gpu["pci_bus_id"] not in seen:
                host["problems"].append(
                    "%s sees no GPU at %s although sysfs lists %s there: the loaded driver%s does not drive it; "
                    "install a driver that does (%s)." % (
                        driver_layer, gpu["pci_bus_id"], _gpu_label(gpu), " " + driver_version if driver_version else "",
                        describe_requirements(gpu["architecture"])))
    return {"gpufleet_gpus": gpus, "gpufleet_gpu_host": host}
