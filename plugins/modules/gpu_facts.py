#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Detect NVIDIA GPUs and the driver they need
version_added: 1.0.0
description:
  - Lists the NVIDIA GPUs of a host and says which NVIDIA driver (kernel module flavor and driver branch interval) can drive
    all of them together.
  - Works before any driver is installed. It reads the PCI devices from sysfs and resolves their device ids through the
    collection's own catalog, then through the host's C(pci.ids) for ids the catalog does not list.
  - When a driver is loaded it also asks NVML (through the Python module C(pynvml)) for measured memory, UUIDs and compute
    capabilities; when NVML does not answer it runs C(nvidia-smi) instead.
  - Also reports the installed Docker Engine's version (C(dockerd --version)) and whether C(/etc/docker/daemon.json) enables
    CDI devices, which decide how the replicas' containers get their GPUs.
  - Never fails on a host without NVIDIA GPU, without C(pynvml) or without C(nvidia-smi); the fact
    RV(ansible_facts.gpufleet_gpu_host.detection) says which layers answered and why the others did not.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._attributes.info_module
  - gpufleet.vllm._attributes.facts
options:
  sysfs_root:
    description:
      - Directory that replaces V(/sys) when reading PCI devices and the loaded kernel module.
      - Useful to inspect a mounted image or a recorded tree.
    type: path
    default: /sys
  pci_ids_path:
    description:
      - The C(pci.ids) file used for device ids the collection's catalog does not know. Files ending in C(.gz) are read
        compressed.
      - When not set, the first of V(/usr/share/misc/pci.ids), V(/usr/share/hwdata/pci.ids), V(/usr/share/pci.ids) and their
        C(.gz) variants that exists is used.
    type: path
  use_nvml:
    description:
      - Ask NVML through the Python module C(pynvml) when it can be imported.
    type: bool
    default: true
  use_nvidia_smi:
    description:
      - Run C(nvidia-smi) when NVML did not answer and the command exists.
    type: bool
    default: true
requirements:
  - nvidia-ml-py (optional; the Python module C(pynvml)) on the managed host for measured values from NVML.
notes:
  - Without a loaded driver, RV(ansible_facts.gpufleet_gpus[].source) is V(sysfs) and memory sizes come from the catalog
    (V(null) where the catalog does not know them).
  - Architecture and compute capability are never guessed; a device id unknown to the catalog and to C(pci.ids) is
    reported with architecture V(unknown) and a sentence in RV(ansible_facts.gpufleet_gpu_host.problems).
seealso:
  - name: NVIDIA driver installation guide, kernel modules
    description: Which GPUs need the open or the proprietary kernel modules.
    link: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html
author:
  - gpufleet.vllm contributors (@gpufleet)
"""

EXAMPLES = r"""
---
- name: Detect the GPUs and driver needs of the host
  gpufleet.vllm.gpu_facts:

- name: Stop on hosts whose GPUs no single driver can serve
  ansible.builtin.assert:
    that:
      - ansible_facts.gpufleet_gpu_host.compatible
    fail_msg: "{{ ansible_facts.gpufleet_gpu_host.problems | join(' ') }}"

- name: Show the driver interval
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.gpufleet_gpu_host.gpu_count }} GPUs need
      {{ ansible_facts.gpufleet_gpu_host.kernel_module_flavor }} kernel modules,
      branch {{ ansible_facts.gpufleet_gpu_host.driver_branch_min | default('any', true) }}
      to {{ ansible_facts.gpufleet_gpu_host.driver_branch_max | default('any', true) }}

- name: Detect from sysfs only, with a newer pci.ids, and keep the result
  gpufleet.vllm.gpu_facts:
    use_nvml: false
    use_nvidia_smi: false
    pci_ids_path: /opt/pciids/pci.ids
  register: gpu_detection
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    gpufleet_gpus:
      description:
        - One entry per NVIDIA GPU (PCI display function of vendor 0x10de; audio and USB functions of the same card are
          left out), sorted by PCI address. A Tesla K80 board counts as two GPUs.
      returned: always
      type: list
      elements: dict
      sample:
        - pci_bus_id: "0000:05:00.0"
          pci_device_id: "0x102d"
          name: Tesla K80
          architecture: kepler
          compute_capability: "3.7"
          memory_mib: 11441
          uuid: null
          source: sysfs
          chip: GK210
          known_by: catalog
          kernel_driver: null
          subsystem_vendor: "0x10de"
          subsystem_device: "0x106c"
          pci_bridges: ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]
          minor_number: null
      contains:
        pci_bus_id:
          description: PCI address as sysfs writes it (domain of four hex digits, lowercase).
          type: str
          returned: always
          sample: "0000:05:00.0"
        pci_device_id:
          description: PCI device id, lowercase with C(0x) prefix.
          type: str
          returned: always
          sample: "0x2b85"
        name:
          description: Product name from NVML or C(nvidia-smi), else from the catalog or C(pci.ids); V(null) if none knows it.
          type: str
          returned: always
          sample: GeForce RTX 5090
        architecture:
          description: One of V(kepler), V(maxwell), V(pascal), V(volta), V(turing), V(ampere), V(ada), V(hopper),
            V(blackwell) or V(unknown).
          type: str
          returned: always
          sample: blackwell
        compute_capability:
          description: CUDA compute capability, measured by NVML when available, else from the catalog; V(null) if unknown.
          type: str
          returned: always
          sample: "12.0"
        memory_mib:
          description: Memory in MiB, measured by NVML or C(nvidia-smi) when available, else from the catalog; V(null) if
            unknown.
          type: int
          returned: always
          sample: 32607
        uuid:
          description: GPU UUID from NVML or C(nvidia-smi); V(null) without a loaded driver.
          type: str
          returned: always
          sample: GPU-762a9681-d3f1-c1bb-7c4e-fff1ca98b624
        source:
          description: The richest layer that saw the GPU, V(nvml), V(nvidia-smi) or V(sysfs).
          type: str
          returned: always
          sample: nvml
        chip:
          description: Chip code without GL/M suffix, for example V(GK210) or V(GB202); V(null) if unknown.
          type: str
          returned: always
          sample: GB202
        known_by:
          description: What resolved the device id, V(catalog), V(pci.ids) or V(null).
          type: str
          returned: always
          sample: catalog
        kernel_driver:
          description: Kernel driver bound to the PCI function according to sysfs (V(nvidia), V(nouveau), V(vfio-pci)...).
          type: str
          returned: always
          sample: nvidia
        subsystem_vendor:
          description: PCI subsystem vendor id from sysfs.
          type: str
          returned: always
          sample: "0x10de"
        subsystem_device:
          description: PCI subsystem device id from sysfs.
          type: str
          returned: always
          sample: "0x106c"
        pci_bridges:
          description:
            - The PCI bridges between the root complex and the GPU, the root port first, as the GPU's sysfs link gives them.
              The two dies of a Tesla K80 board share the second to last one, the upstream port of the board's PCIe switch.
            - V([]) for a GPU on the root bus; V(null) when sysfs has no link for the GPU, which leaves the topology unknown.
          type: list
          elements: str
          returned: always
          sample: ["0000:00:03.0", "0000:03:00.0", "0000:04:08.0"]
        minor_number:
          description:
            - The device minor number the loaded driver gave the GPU (its device node is C(/dev/nvidia<minor_number>)), from
              C(/proc/driver/nvidia/gpus/<pci_bus_id>/information).
            - V(null) without a loaded driver.
          type: int
          returned: always
          sample: 0
    gpufleet_gpu_host:
      description: What the GPUs of the host need from the NVIDIA driver, and what is loaded now.
      returned: always
      type: dict
      sample:
        gpu_count: 4
        driver_loaded: true
        driver_version: "470.256.02"
        cuda_driver_version: "11.4"
        kernel_module_flavor: proprietary
        driver_branch_min: null
        driver_branch_max: "470"
        compatible: true
        problems: []
        architectures: [kepler]
        default_driver_branch: "470"
        driver_branch: "470"
        loaded_kernel_module_flavor: proprietary
        driver_fits_gpus: true
        nvswitch_count: 0
        detection: {}
      contains:
        gpu_count:
          description: Number of NVIDIA GPUs.
          type: int
          returned: always
          sample: 2
        driver_loaded:
          description: Whether the nvidia kernel module is loaded.
          type: bool
          returned: always
          sample: true
        driver_version:
          description: Version of the loaded driver, V(null) when none is loaded.
          type: str
          returned: always
          sample: "570.124.06"
        cuda_driver_version:
          description: Highest CUDA version the loaded driver runs (NVML's answer, else from the collection's CUDA table).
          type: str
          returned: always
          sample: "12.8"
        kernel_module_flavor:
          description: Kernel module flavor all GPUs accept, V(proprietary), V(open) or V(any); V(null) without a GPU of known
            architecture or when none fits all.
          type: str
          returned: always
          sample: open
        driver_branch_min:
          description: Lowest driver branch that drives all GPUs; V(null) for no lower bound.
          type: str
          returned: always
          sample: "570"
        driver_branch_max:
          description: Highest driver branch that drives all GPUs; V(null) for no upper bound.
          type: str
          returned: always
          sample: "470"
        compatible:
          description: Whether one driver can drive all GPUs of known architecture.
          type: bool
          returned: always
          sample: false
        problems:
          description: Sentences naming the GPUs that cannot share a driver or that the collection cannot identify, and
            what to do.
          type: list
          elements: str
          returned: always
          sample:
            - "Tesla K80 (0000:05:00.0) needs proprietary kernel modules of branch <= 470 while GeForce RTX 5090 (0000:09:00.0)
              needs open kernel modules of branch >= 570: no single NVIDIA driver drives both, so this host cannot serve
              them together; move one of the cards to another host or exclude it."
        architectures:
          description: Architectures present, sorted.
          type: list
          elements: str
          returned: always
          sample: [ampere, kepler]
        default_driver_branch:
          description: Branch the collection installs by default for these GPUs; V(null) without a GPU of known architecture.
          type: str
          returned: always
          sample: "570"
        driver_branch:
          description: Branch of the loaded driver, V(null) when none is loaded.
          type: str
          returned: always
          sample: "580"
        loaded_kernel_module_flavor:
          description: Flavor of the loaded kernel module according to C(/proc/driver/nvidia/version); V(null) if unknown.
          type: str
          returned: always
          sample: open
        driver_fits_gpus:
          description: Whether the loaded driver lies in the branch interval (and flavor) the GPUs need; V(null) when there is
            nothing to compare.
          type: bool
          returned: always
          sample: true
        nvswitch_count:
          description:
            - Number of NVSwitches, NVIDIA PCI functions of class 0x0680, found in sysfs (HGX-2, HGX A100, HGX H100 and H200
              baseboards). Their GPUs need NVIDIA Fabric Manager at exactly the driver's version.
            - The fourth-generation NVSwitches of HGX B200 baseboards are set up with the NVLink Subnet Manager and may not show
              as NVIDIA functions, so V(0) does not rule them out.
          type: int
          returned: always
          sample: 4
        detection:
          description: Per layer (V(sysfs), V(pci_ids), V(nvml), V(nvidia_smi)) whether it was asked, whether it answered and
            the error text otherwise.
          type: dict
          returned: always
          sample:
            sysfs: {root: /sys, answered: true, gpu_count: 1}
            pci_ids: {path: null, answered: false, error: no pci.ids file found}
            nvml: {asked: true, answered: false, error: "nvmlInit failed: Driver Not Loaded"}
            nvidia_smi: {asked: false, answered: false, error: null, path: null}
    gpufleet_container_engine:
      description: The Docker Engine the host has, for the host plan's choice of how containers get their GPUs.
      returned: always
      type: dict
      sample: {docker_version: "20.10.24+dfsg1", cdi_enabled: false}
      contains:
        docker_version:
          description: The installed engine's version as C(dockerd --version) writes it; V(null) where Docker is not installed.
          type: str
          returned: always
          sample: "20.10.24+dfsg1"
        cdi_enabled:
          description: Whether C(/etc/docker/daemon.json) sets C(features.cdi) to V(true), which Docker 25.0 to 28.1 need for CDI devices.
          type: bool
          returned: always
          sample: false
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.vllm.plugins.module_utils._device_injection import engine_facts
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import (
    DEFAULT_PCI_IDS_PATHS,
    NVIDIA_SMI_ARGS,
    build_facts,
    find_pci_ids,
    module_loaded,
    parse_nvidia_smi_csv,
    query_nvml,
    read_minor_numbers,
    read_module_version,
    read_pci_ids,
    scan_nvswitches,
    scan_sysfs,
    sysfs_has_pci,
)
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_files import read_text

try:
    import pynvml
except ImportError:
    pynvml = None
    HAS_PYNVML = False
    PYNVML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PYNVML = True
    PYNVML_IMPORT_ERROR = None

# Exists once the nvidia kernel module is loaded (driver README, procfs interface); a constant so
# that tests point it elsewhere.
PROC_DRIVER_VERSION = "/proc/driver/nvidia/version"
# One directory per GPU the loaded driver drives, named by PCI address (driver README, procfs interface).
PROC_DRIVER_GPUS = "/proc/driver/nvidia/gpus"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"


def _pci_ids(params):
    path = params["pci_ids_path"] or find_pci_ids(DEFAULT_PCI_IDS_PATHS)
    if path is None:
        return {}, {"path": None, "answered": False, "error": "no pci.ids file found in %s" % ", ".join(DEFAULT_PCI_IDS_PATHS)}
    entries = read_pci_ids(path)
    if not entries:
        return {}, {"path": path, "answered": False, "error": "no NVIDIA devices read from %s" % path}
    return entries, {"path": path, "answered": True, "error": None}


def _nvml(params):
    if not params["use_nvml"]:
        return None, {"asked": False, "answered": False, "error": None}
    if not HAS_PYNVML:
        result = query_nvml(None)
        return result, {"asked": True, "answered": False, "error": result["error"]}
    result = query_nvml(pynvml)
    state = {"asked": True, "answered": result["available"], "error": result["error"]}
    if result["device_errors"]:
        state["device_errors"] = result["device_errors"]
    return result, state


def _nvidia_smi(module, nvml_answered):
    state = {"asked": False, "answered": False, "error": None, "path": None}
    if not module.params["use_nvidia_smi"] or nvml_answered:
        return None, state
    state["asked"] = True
    binary = module.get_bin_path("nvidia-smi")
    if not binary:
        state["error"] = "nvidia-smi not found in PATH"
        return None, state
    state["path"] = binary
    rc, stdout, stderr = module.run_command([binary] + list(NVIDIA_SMI_ARGS))
    if rc != 0:
        message = (stderr or stdout or "").strip().splitlines()
        state["error"] = "nvidia-smi exited with %d: %s" % (rc, message[0] if message else "no output")
        return None, state
    gpus = parse_nvidia_smi_csv(stdout)
    state["answered"] = True
    return gpus, state


def _container_engine(module):
    """The installed Docker Engine's version and CDI setting; dockerd answers --version without a running daemon."""
    dockerd = module.get_bin_path("dockerd")
    output = module.run_command([dockerd, "--version"])[1] if dockerd else None
    return engine_facts(output, read_text(DOCKER_DAEMON_JSON))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sysfs_root=dict(type="path", default="/sys"),
            pci_ids_path=dict(type="path"),
            use_nvml=dict(type="bool", default=True),
            use_nvidia_smi=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    sysfs_root = module.params["sysfs_root"]

    sysfs_gpus = scan_sysfs(sysfs_root)
    pci_ids, pci_ids_state = _pci_ids(module.params)
    nvml, nvml_state = _nvml(module.params)
    smi_gpus, smi_state = _nvidia_smi(module, bool(nvml and nvml["available"]))

    detection = {
        "sysfs": {"root": sysfs_root, "answered": sysfs_has_pci(sysfs_root), "gpu_count": len(sysfs_gpus)},
        "pci_ids": pci_ids_state,
        "nvml": nvml_state,
        "nvidia_smi": smi_state,
    }
    facts = build_facts(
        sysfs_gpus,
        pci_ids=pci_ids,
        nvml=nvml,
        smi_gpus=smi_gpus,
        module_version=read_module_version(sysfs_root),
        proc_version_text=read_text(PROC_DRIVER_VERSION),
        nvidia_module_loaded=module_loaded(sysfs_root),
        detection=detection,
        minor_numbers=read_minor_numbers(PROC_DRIVER_GPUS),
        nvswitches=scan_nvswitches(sysfs_root),
    )
    facts["gpufleet_container_engine"] = _container_engine(module)
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
