# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""What the collection knows about NVIDIA GPUs, drivers and CUDA: data and pure functions only.

Source keys used in the comments (full references in docs of the project, gpu-driver-facts.md):
PCIIDS = pci.ids (repository pciutils/pciids), CCPAGE = developer.nvidia.com/cuda-gpus and
/cuda-legacy-gpus, RN = CUDA Toolkit release notes (Table 3 unless noted), KMOD = NVIDIA driver
installation guide "Kernel Modules", OPEN = NVIDIA blog "transitions fully towards open-source GPU
kernel modules" (July 2024), MATRIX = "CUDA Toolkit, Driver, and Architecture Matrix".
"""

from __future__ import annotations

import re

NVIDIA_VENDOR_ID = "0x10de"

UNKNOWN = "unknown"

PROPRIETARY = "proprietary"
OPEN = "open"
ANY_FLAVOR = "any"

# Open kernel modules exist from R515 and need the GSP, i.e. Turing or newer (KMOD).
OPEN_MODULES_MIN_BRANCH = "515"

# Per architecture: the kernel module flavors that drive it and the driver-branch interval
# (None = unbounded). Branches are strings so that they compare with version_key().
ARCHITECTURES = {
    # Proprietary only, R470 is the last branch for Kepler (KMOD; MATRIX; NVIDIA "Current releases":
    # 470.xx is the Kepler legacy branch).
    "kepler": {"label": "Kepler", "flavors": (PROPRIETARY,), "branch_min": None, "branch_max": "470"},
    # Pre-Turing GPUs have no GSP, so proprietary only (KMOD). R580 is their last driver branch:
    # CUDA 12.9 release notes ("Deprecated Architectures": Maxwell, Pascal and Volta are
    # feature-complete) and CUDA 13.0 release notes (support removed from the toolkit; the R580
    # driver branch keeps driving them and is the last one to do so). The NixOS wiki packages this
    # as "legacy_580, aka Maxwell-Volta" (corroboration only).
    "maxwell": {"label": "Maxwell", "flavors": (PROPRIETARY,), "branch_min": None, "branch_max": "580"},
    "pascal": {"label": "Pascal", "flavors": (PROPRIETARY,), "branch_min": None, "branch_max": "580"},
    "volta": {"label": "Volta", "flavors": (PROPRIETARY,), "branch_min": None, "branch_max": "580"},
    # Turing and newer: either flavor (KMOD); open only from R515 (see OPEN_MODULES_MIN_BRANCH).
    "turing": {"label": "Turing", "flavors": (PROPRIETARY, OPEN), "branch_min": None, "branch_max": None},
    "ampere": {"label": "Ampere", "flavors": (PROPRIETARY, OPEN), "branch_min": None, "branch_max": None},
    # (derived) Ada (sm_89) and Hopper (sm_90) need at least the R520 feature branch that shipped
    # CUDA 11.8 (RN: 11.8 needs >= 520.61.05); the collection only targets long-lived branches, and
    # the first of those with these GPUs is R525 (CUDA 12.0, >= 525.60.13, RN).
    "ada": {"label": "Ada Lovelace", "flavors": (PROPRIETARY, OPEN), "branch_min": "525", "branch_max": None},
    "hopper": {"label": "Hopper", "flavors": (PROPRIETARY, OPEN), "branch_min": "525", "branch_max": None},
    # Blackwell: open modules only, "the proprietary drivers are unsupported" (OPEN; driver README
    # kernel_open.html); CUDA 12.8 is the first toolkit with sm_100/sm_120 and needs >= 570.26 (RN).
    "blackwell": {"label": "Blackwell", "flavors": (OPEN,), "branch_min": "570", "branch_max": None},
}

# pci.ids chip code -> compute capability. Derived rule: chip code of each product in PCIIDS x that
# product's compute capability in CCPAGE (gpu-driver-facts.md section 6). Patterns match the digits
# after the family prefix once GL/M/B suffixes are stripped.
_CHIP_FAMILIES = {
    "GK": "kepler",
    "GM": "maxwell",
    "GP": "pascal",
    "GV": "volta",
    "TU": "turing",
    "GA": "ampere",
    "AD": "ada",
    "GH": "hopper",
    "GB": "blackwell",
}
_CHIP_CC_RULES = (
    ("GK", r"10[4-7]", "3.0"),   # Tesla K10, Quadro K5000/K4000/K600
    ("GK", r"110|180", "3.5"),   # Tesla K20/K20X, K40m (GK110B), K40c (GK180)
    ("GK", r"208", "3.5"),       # GeForce GT 710/730 (CCPAGE legacy list; not in gpu-driver-facts.md)
    ("GK", r"210", "3.7"),       # Tesla K80
    ("GM", r"10[78]", "5.0"),    # GTX 750 Ti, Quadro K2200
    ("GM", r"20\d", "5.2"),      # Tesla M40/M60, GTX 9xx
    ("GP", r"100", "6.0"),       # Tesla P100
    ("GP", r"10[1-9]", "6.1"),   # Tesla P40/P4, GTX 10xx
    ("GV", r"100", "7.0"),       # V100, Titan V
    ("TU", r"1\d\d", "7.5"),     # T4, RTX 20xx, GTX 16xx
    ("GA", r"100", "8.0"),       # A100, A30
    ("GA", r"10[1-9]", "8.6"),   # A40, A10, RTX A6000, RTX 30xx
    ("AD", r"10\d", "8.9"),      # L4, L40, L40S, RTX 40xx
    ("GH", r"100", "9.0"),       # H100, H200
    ("GB", r"10[02]", "10.0"),   # B200, GB200
    ("GB", r"20\d", "12.0"),     # RTX 50xx, RTX PRO Blackwell
)
# Family prefix, three digits, optional B revision/variant, optional GL (professional), optional M
# (mobile): GK110BGL, GK208BM, GP104GLM, AD103M.
_CHIP_RE = re.compile(r"^(GK|GM|GP|GV|TU|GA|AD|GH|GB)(\d{3})B?(?:GL)?M?$")

# Compute capability -> architecture (CCPAGE): 7.2 is Xavier (Volta), 8.7 Orin (Ampere),
# 10.x/11.x/12.x Blackwell (B200 10.0, B300 10.3, Thor 11.0, RTX 50xx 12.0, GB10 12.1).
_CC_ARCHITECTURES = (
    (r"3\.\d", "kepler"),
    (r"5\.\d", "maxwell"),
    (r"6\.\d", "pascal"),
    (r"7\.[02]", "volta"),
    (r"7\.5", "turing"),
    (r"8\.[067]", "ampere"),
    (r"8\.9", "ada"),
    (r"9\.0", "hopper"),
    (r"1[012]\.\d", "blackwell"),
)

# PCI device id (vendor 0x10de) -> (pci.ids chip code, name, memory_mib).
# Chip code and name: PCIIDS. Memory: "NVML" = what NVML/nvidia-smi report as memory.total;
# every other value is the nominal size from the product name (GB x 1024), None = unknown or varies.
_GPU_ROWS = {
    # Kepler
    "0x1023": ("GK110BGL", "Tesla K40m", 12288),
    "0x1024": ("GK180GL", "Tesla K40c", 12288),
    "0x1028": ("GK110GL", "Tesla K20m", 5120),
    "0x102d": ("GK210GL", "Tesla K80", 11441),  # NVML, per die (2 dies per board; dogkeeper886/vllm37 README)
    # Maxwell
    "0x13f2": ("GM204GL", "Tesla M60", 8192),  # per die, 2 dies x 8 GB per board
    "0x17fd": ("GM200GL", "Tesla M40", None),  # 12 GB and 24 GB boards
    # Pascal
    "0x15f7": ("GP100GL", "Tesla P100 PCIe 12GB", 12288),
    "0x15f8": ("GP100GL", "Tesla P100 PCIe 16GB", 16384),
    "0x15f9": ("GP100GL", "Tesla P100 SXM2 16GB", 16384),
    "0x1b38": ("GP102GL", "Tesla P40", 24576),
    # Volta
    "0x1db1": ("GV100GL", "Tesla V100 SXM2 16GB", 16384),
    "0x1db4": ("GV100GL", "Tesla V100 PCIe 16GB", 16384),
    "0x1db5": ("GV100GL", "Tesla V100 SXM2 32GB", 32768),
    "0x1db6": ("GV100GL", "Tesla V100 PCIe 32GB", 32768),
    "0x1db8": ("GV100GL", "Tesla V100 SXM3 32GB", 32768),
    "0x1df5": ("GV100GL", "Tesla V100 SXM2 16GB", 16384),
    "0x1df6": ("GV100GL", "Tesla V100S PCIe 32GB", 32768),
    # Turing
    "0x1eb8": ("TU104GL", "Tesla T4", 16384),
    # Ampere
    "0x20b0": ("GA100", "A100 SXM4 40GB", 40960),
    "0x20b1": ("GA100", "A100 PCIe 40GB", 40960),
    "0x20b2": ("GA100", "A100 SXM4 80GB", 81920),
    "0x20b3": ("GA100", "A100-SXM-64GB", 65536),
    "0x20b5": ("GA100", "A100 PCIe 80GB", 81920),
    "0x20f1": ("GA100", "A100 PCIe 40GB", 40960),
    "0x20b7": ("GA100GL", "A30 PCIe", 24576),
    "0x2204": ("GA102", "GeForce RTX 3090", 24576),
    "0x2235": ("GA102GL", "A40", 46068),  # NVML (value the memory planner uses, gpu-driver-facts.md section 1)
    "0x2236": ("GA102GL", "A10", 24576),
    # Ada Lovelace
    "0x2684": ("AD102", "GeForce RTX 4090", 24576),
    "0x26b5": ("AD102GL", "L40", 49152),
    "0x26b9": ("AD102GL", "L40S", 49152),
    "0x27b8": ("AD104GL", "L4", 24576),
    # Hopper
    "0x2321": ("GH100", "H100L 94GB", 96256),  # sold as H100 NVL (mapping unconfirmed)
    "0x2330": ("GH100", "H100 SXM5 80GB", 81559),  # NVML, observed on the project's H100 build machine (driver 580.159.04)
    "0x2331": ("GH100", "H100 PCIe", 81920),  # 80 GB board
    "0x2336": ("GH100", "H100", None),
    "0x2337": ("GH100", "H100 SXM5 64GB", 65536),
    "0x2338": ("GH100", "H100 SXM5 96GB", 98304),
    "0x2339": ("GH100", "H100 SXM5 94GB", 96256),
    "0x2335": ("GH100", "H200 SXM 141GB", 143771),  # NVML, observed on the project's H200 machine (driver 580.159.04)
    "0x233b": ("GH100", "H200 NVL", 144384),  # 141 GB board
    # Blackwell
    "0x2901": ("GB100", "B200", None),
    "0x2909": ("GB100", "HGX B200 168GB", 172032),
    "0x2b85": ("GB202", "GeForce RTX 5090", 32607),  # NVML (value the memory planner uses, gpu-driver-facts.md section 1)
    "0x2b87": ("GB202", "GeForce RTX 5090 D", 32768),
    "0x2b8c": ("GB202", "GeForce RTX 5090 D V2", None),
    "0x2bb1": ("GB202GL", "RTX PRO 6000 Blackwell Workstation Edition", 98304),
    "0x2bb5": ("GB202GL", "RTX PRO 6000 Blackwell Server Edition", 98304),
}

# Boards that carry several GPU dies behind their own PCIe switch, by the dies' PCI device id: how many dies one board
# carries. Tesla K80: two GK210 (dogkeeper886/vllm37 README, nvidia-smi topo: PIX within a board); Tesla M60: two GM204.
_DIES_PER_BOARD = {"0x102d": 2, "0x13f2": 2}

# CUDA toolkit (GA) -> minimum Linux x86_64 driver (RN, Table 3).
CUDA_MIN_DRIVER = (
    ("11.4", "470.42.01"),
    ("11.5", "495.29.05"),
    ("11.6", "510.39.01"),
    ("11.7", "515.43.04"),
    ("11.8", "520.61.05"),
    ("12.0", "525.60.13"),
    ("12.1", "530.30.02"),
    ("12.2", "535.54.03"),
    ("12.3", "545.23.06"),
    ("12.4", "550.54.14"),
    ("12.5", "555.42.02"),
    ("12.6", "560.28.03"),
    ("12.8", "570.26"),
    ("12.9", "575.51.03"),
    ("13.0", "580.65.06"),
    ("13.1", "590.44.01"),
    ("13.2", "595.45.04"),
)

# Kepler's last branch is R470; everything else the collection installs by default on R570, the
# first branch that drives Blackwell (see ARCHITECTURES).
_KEPLER_DEFAULT_BRANCH = ARCHITECTURES["kepler"]["branch_max"]
_DEFAULT_BRANCH = "570"


def version_key(text):
    """Turn "12.10", "570.124.06" or 580 into a tuple of ints that compares numerically."""
    return tuple(int(part) for part in re.findall(r"\d+", str(text)))


def _major_minor(cuda):
    parts = version_key(cuda)
    if len(parts) < 2:
        raise ValueError("CUDA version %r must look like MAJOR.MINOR" % (cuda,))
    return "%d.%d" % parts[:2]


def cuda_min_driver(cuda):
    """Minimum Linux x86_64 driver for a CUDA toolkit version ("12.8" or "12.8.1" -> "570.26")."""
    wanted = _major_minor(cuda)
    for version, driver in CUDA_MIN_DRIVER:
        if version == wanted:
            return driver
    raise ValueError("CUDA %s is not in the collection's CUDA/driver table (known: %s)"
                     % (wanted, ", ".join(version for version, dummy in CUDA_MIN_DRIVER)))


def driver_max_cuda(driver_version):
    """Highest CUDA version a given driver runs ("570.124.06" -> "12.8"); None below 470.42.01."""
    key = version_key(driver_version)
    best = None
    for version, driver in CUDA_MIN_DRIVER:
        if version_key(driver) <= key:
            best = version
    return best


def branch_max_cuda(branch):
    """Highest CUDA version any driver of a branch runs ("470" -> "11.4", "580" -> "13.0").

    Raises ValueError for branches older than R470, which the table does not cover.
    """
    major = version_key(branch)[:1]
    best = None
    for version, driver in CUDA_MIN_DRIVER:
        if version_key(driver)[:1] <= major:
            best = version
    if best is None:
        raise ValueError("driver branch %s is older than R470, the oldest branch the collection knows" % (branch,))
    return best


def default_driver_branch(architectures):
    """Branch the collection installs by default for a host with these architectures."""
    if "kepler" in set(architectures):
        return _KEPLER_DEFAULT_BRANCH
    return _DEFAULT_BRANCH


def _cc_text(cc):
    if cc is None:
        return None
    if isinstance(cc, (tuple, list)):
        return "%d.%d" % (int(cc[0]), int(cc[1]))
    return str(cc).strip()


def architecture_for_cc(cc):
    """Architecture name for a compute capability ("3.7", (8, 6) or 12.0); "unknown" if none fits."""
    text = _cc_text(cc)
    if not text:
        return UNKNOWN
    for pattern, architecture in _CC_ARCHITECTURES:
        if re.match(r"^(?:%s)$" % pattern, text):
            return architecture
    return UNKNOWN


def chip_info(chip):
    """Resolve a pci.ids chip field ("GK210GL", "AD103M / AD104M") to its architecture and CC.

    Returns a dict with chip (normalized, e.g. "GK210"), architecture and compute_capability.
    A chip whose family is known but whose number no rule covers keeps its architecture with
    compute_capability None; anything else is "unknown". Never guesses across families.
    """
    results = []
    for alternative in (chip or "").split("/"):
        match = _CHIP_RE.match(alternative.strip().upper())
        if not match:
            continue
        family, number = match.group(1), match.group(2)
        cc = None
        for rule_family, pattern, rule_cc in _CHIP_CC_RULES:
            if rule_family == family and re.match(r"^(?:%s)$" % pattern, number):
                cc = rule_cc
                break
        results.append({"chip": family + number, "architecture": _CHIP_FAMILIES[family], "compute_capability": cc})
    if not results:
        return {"chip": None, "architecture": UNKNOWN, "compute_capability": None}
    architectures = set(result["architecture"] for result in results)
    if len(architectures) > 1:
        # Alternatives that disagree on the architecture: refuse to pick one.
        return {"chip": None, "architecture": UNKNOWN, "compute_capability": None}
    capabilities = set(result["compute_capability"] for result in results)
    chosen = dict(results[0])
    if len(capabilities) > 1:
        chosen["compute_capability"] = None
    return chosen


def split_pci_ids_name(text):
    """Split a pci.ids device name "GB202 [GeForce RTX 5090]" into ("GB202", "GeForce RTX 5090").

    Entries without brackets ("GA102GL") give the chip and no product name.
    """
    text = (text or "").strip()
    match = re.match(r"^(.*?)\s*\[(.*)\]\s*$", text)
    if match:
        return match.group(1).strip() or None, match.group(2).strip() or None
    return text or None, None


def normalize_device_id(value):
    """PCI device id as "0x2b85" from "0x2b85", "2B85", 0x2B85, or NVML/nvidia-smi "0x2B8510DE"."""
    if value is None:
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().lower()
        if not text:
            return None
        try:
            number = int(text, 16)
        except ValueError:
            return None
    if number > 0xFFFF:
        # NVML and nvidia-smi combine device (high 16 bits) and vendor (low 16 bits).
        number >>= 16
    return "0x%04x" % number


def dies_per_board(device_id):
    """How many GPU dies share the board of a PCI device id: 2 for the Tesla K80 and M60, 1 for every other GPU."""
    return _DIES_PER_BOARD.get(normalize_device_id(device_id), 1)


def catalog_entry(device_id):
    """The catalog row of a PCI device id (vendor 0x10de), or None when the id is not listed."""
    key = normalize_device_id(device_id)
    row = _GPU_ROWS.get(key)
    if row is None:
        return None
    chip, name, memory_mib = row
    info = chip_info(chip)
    return {
        "pci_device_id": key,
        "name": name,
        "chip": info["chip"],
        "architecture": info["architecture"],
        "compute_capability": info["compute_capability"],
        "memory_mib": memory_mib,
    }


def resolve_device(device_id, pci_ids_name=None):
    """Everything the collection can say about a device id without asking the driver.

    The catalog table first; else the chip code of its pci.ids name (pci_ids_name, as read from a
    pci.ids file); else architecture "unknown" and compute_capability None. The key ``known_by``
    says which answered: "catalog", "pci.ids" or None.
    """
    key = normalize_device_id(device_id)
    entry = catalog_entry(key)
    if entry is not None:
        entry["known_by"] = "catalog"
        return entry
    if pci_ids_name:
        chip_field, product = split_pci_ids_name(pci_ids_name)
        info = chip_info(chip_field)
        if info["architecture"] != UNKNOWN:
            return {
                "pci_device_id": key,
                "name": product or chip_field,
                "chip": info["chip"],
                "architecture": info["architecture"],
                "compute_capability": info["compute_capability"],
                "memory_mib": None,
                "known_by": "pci.ids",
            }
    return {
        "pci_device_id": key,
        "name": split_pci_ids_name(pci_ids_name)[1] if pci_ids_name else None,
        "chip": None,
        "architecture": UNKNOWN,
        "compute_capability": None,
        "memory_mib": None,
        "known_by": None,
    }


def architecture_requirements(architecture):
    """Flavors and branch interval of an architecture, or None for an unknown one."""
    data = ARCHITECTURES.get(architecture)
    if data is None:
        return None
    return {
        "architecture": architecture,
        "label": data["label"],
        "flavors": tuple(data["flavors"]),
        "branch_min": data["branch_min"],
        "branch_max": data["branch_max"],
    }


def flavor_label(flavors):
    """"proprietary", "open", "any" or None for a collection of allowed flavors."""
    flavors = set(flavors)
    if flavors == set((PROPRIETARY, OPEN)):
        return ANY_FLAVOR
    if len(flavors) == 1:
        return flavors.pop()
    return None


def describe_requirements(architecture):
    """Plain-English driver needs of an architecture, e.g. "proprietary modules of branch <= 470"."""
    req = architecture_requirements(architecture)
    if req is None:
        return "an unknown driver"
    label = flavor_label(req["flavors"])
    modules = "either kernel module flavor" if label == ANY_FLAVOR else "%s kernel modules" % label
    if req["branch_min"] and req["branch_max"]:
        branches = "of branch %s to %s" % (req["branch_min"], req["branch_max"])
    elif req["branch_min"]:
        branches = "of branch >= %s" % req["branch_min"]
    elif req["branch_max"]:
        branches = "of branch <= %s" % req["branch_max"]
    else:
        branches = "of any branch"
    return "%s %s" % (modules, branches)
