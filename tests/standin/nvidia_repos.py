# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build stand-in apt repositories laid out like NVIDIA's, for the driver and runtime tests.

NVIDIA's package servers (developer.download.nvidia.com, nvidia.github.io) cannot be reached from
the build machines. This script builds, into OUTPUT_DIR, two signed flat repositories with the
same paths and package names:

  compute/cuda/repos/debian12/x86_64/      like NVIDIA's debian12 CUDA repository (key 3bf863cc.pub),
                                           driver packages and cuda-toolkit-12-8
  libnvidia-container/stable/deb/amd64/    like NVIDIA's container toolkit repository (key ../../../gpgkey)

The packages are test doubles: they contain no NVIDIA software, only a STAND-IN note and, where the
real package ships a command, a script that says it is a stand-in and fails. The driver packages
exist in branches 570 and 580, so that a test sees the installer's pin choose the branch.
Fabric Manager comes under the names NVIDIA's repository uses (nvidia-fabricmanager-570 before
580, nvidia-fabricmanager from 580) at the driver versions, and nvidia-fabricmanager-570 also at a
newer version than any 570 driver here, so that a test sees the role pin it to the driver's
version; its nvidia-fabricmanager.service runs a stand-in daemon that only sleeps.

Usage: python3 nvidia_repos.py OUTPUT_DIR   (needs dpkg-deb, apt-ftparchive from apt-utils, gpg)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

MAINTAINER = "gpufleet.vllm tests <tests@gpufleet.invalid>"
DRIVER_VERSIONS = ("570.195.03-1", "580.95.05-1")
TOOLKIT_VERSION = "1.19.1-1"

# name -> (commands it ships, exit code of those commands, depends)
DRIVER_PACKAGES = {
    # The real nvidia-smi exits 9 when it cannot talk to the driver.
    "nvidia-driver-cuda": (["nvidia-smi"], 9, ""),
    "nvidia-kernel-open-dkms": ([], 1, ""),
    "nvidia-kernel-dkms": ([], 1, ""),
    "nvidia-persistenced": (["nvidia-persistenced"], 1, ""),
    "nvidia-modprobe": (["nvidia-modprobe"], 1, ""),
}
# Fabric Manager: name -> versions (the driver's, and for 570 a newer one no driver here matches).
FABRIC_MANAGER_PACKAGES = {
    "nvidia-fabricmanager-570": ("570.195.03-1", "570.211.01-1"),
    "nvidia-fabricmanager": ("580.95.05-1",),
}
FABRIC_MANAGER_DAEMON = ("#!/bin/sh\necho 'nv-fabricmanager: stand-in built by gpufleet.vllm tests, version %s; it manages "
                         "no NVSwitch and only sleeps' >&2\nexec sleep infinity\n")
FABRIC_MANAGER_UNIT = ("[Unit]\nDescription=stand-in for NVIDIA Fabric Manager (gpufleet.vllm tests)\n"
                       "After=network-online.target\n\n"
                       "[Service]\nType=simple\nExecStart=/usr/bin/nv-fabricmanager\n\n"
                       "[Install]\nWantedBy=multi-user.target\n")
# The CUDA toolkit's nvcc answers --version with a line naming itself a stand-in, so that the
# cuda_toolkit role's version check has something to read; everything else fails.
CUDA_TOOLKIT = ("cuda-toolkit-12-8", "12.8.93-1")
NVCC_STAND_IN = ("#!/bin/sh\n[ \"$1\" = --version ] || exit 1\n"
                 "echo 'Cuda compilation tools, release 12.8, V12.8.93 (stand-in built by gpufleet.vllm tests)'\n")
TOOLKIT_PACKAGES = {
    "nvidia-container-toolkit": (["nvidia-container-runtime-hook"], 1,
                                 "nvidia-container-toolkit-base (= {v}), libnvidia-container-tools (= {v})"),
    "nvidia-container-toolkit-base": (["nvidia-ctk", "nvidia-container-runtime"], 1, ""),
    "libnvidia-container-tools": ([], 1, "libnvidia-container1 (= {v})"),
    "libnvidia-container1": ([], 1, ""),
}
# Units the real packages ship, which roles enable.
UNITS = {
    "nvidia-persistenced": "[Unit]\nDescription=stand-in for NVIDIA's persistence daemon\n\n"
                           "[Service]\nType=forking\nExecStart=/usr/bin/nvidia-persistenced\n\n"
                           "[Install]\nWantedBy=multi-user.target\n",
}
TOOLS = {"dpkg-deb": "dpkg", "apt-ftparchive": "apt-utils", "gpg": "gnupg"}


def run(argv, **kwargs):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def build_package(name, version, commands, exit_code, depends, out_dir):
    with tempfile.TemporaryDirectory() as root:
        control = ["Package: %s" % name, "Version: %s" % version, "Architecture: amd64",
                   "Maintainer: %s" % MAINTAINER, "Description: stand-in for NVIDIA's %s (gpufleet.vllm tests)" % name]
        if depends:
            control.insert(3, "Depends: %s" % depends.format(v=version))
        write(os.path.join(root, "DEBIAN", "control"), "\n".join(control) + "\n")
        write(os.path.join(root, "usr", "share", "doc", name, "STAND-IN"),
              "This package is a test double built by gpufleet.vllm's tests for NVIDIA's package of the same "
              "name, which cannot be downloaded on the build machines. It contains no NVIDIA software.\n")
        for command in commands:
            write(os.path.join(root, "usr", "bin", command),
                  "#!/bin/sh\necho \"%s: stand-in built by gpufleet.vllm's tests; the real %s is not installed "
                  "here\" >&2\nexit %d\n" % (command, command, exit_code), mode=0o755)
        if name == CUDA_TOOLKIT[0]:
            write(os.path.join(root, "usr", "local", "cuda-12.8", "bin", "nvcc"), NVCC_STAND_IN, mode=0o755)
        if name in UNITS:
            write(os.path.join(root, "lib", "systemd", "system", name + ".service"), UNITS[name])
        if name in FABRIC_MANAGER_PACKAGES:
            write(os.path.join(root, "usr", "bin", "nv-fabricmanager"), FABRIC_MANAGER_DAEMON % version, mode=0o755)
            write(os.path.join(root, "lib", "systemd", "system", "nvidia-fabricmanager.service"), FABRIC_MANAGER_UNIT)
        run(["dpkg-deb", "--root-owner-group", "--build", root,
             os.path.join(out_dir, "%s_%s_amd64.deb" % (name, version))])


def publish(repo_dir, label, gnupg_home):
    """Index and sign a flat repository the way apt expects (Packages, Release, InRelease, Release.gpg)."""
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo_dir, check=True,
                              capture_output=True, text=True).stdout
    write(os.path.join(repo_dir, "Packages"), packages)
    run(["gzip", "-kf", "Packages"], cwd=repo_dir)
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=NVIDIA",
         "-o", "APT::FTPArchive::Release::Label=%s" % label,
         "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", "."],
        cwd=repo_dir, check=True, capture_output=True, text=True).stdout
    write(os.path.join(repo_dir, "Release"), release)
    env = dict(os.environ, GNUPGHOME=gnupg_home)
    run(["gpg", "--batch", "--yes", "--clearsign", "-o", "InRelease", "Release"], cwd=repo_dir, env=env)
    run(["gpg", "--batch", "--yes", "--armor", "--detach-sign", "-o", "Release.gpg", "Release"], cwd=repo_dir, env=env)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: nvidia_repos.py OUTPUT_DIR")
    missing = ["%s (Debian package %s)" % (tool, package) for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        sys.exit("Missing tools: %s; install them and run again." % ", ".join(missing))
    out = os.path.abspath(argv[1])
    shutil.rmtree(out, ignore_errors=True)
    cuda = os.path.join(out, "compute", "cuda", "repos", "debian12", "x86_64")
    toolkit = os.path.join(out, "libnvidia-container", "stable", "deb", "amd64")
    os.makedirs(cuda)
    os.makedirs(toolkit)
    for name, (commands, exit_code, depends) in DRIVER_PACKAGES.items():
        for version in DRIVER_VERSIONS:
            build_package(name, version, commands, exit_code, depends, cuda)
    for name, versions in FABRIC_MANAGER_PACKAGES.items():
        for version in versions:
            build_package(name, version, [], 1, "", cuda)
    build_package(CUDA_TOOLKIT[0], CUDA_TOOLKIT[1], [], 1, "", cuda)
    for name, (commands, exit_code, depends) in TOOLKIT_PACKAGES.items():
        build_package(name, TOOLKIT_VERSION, commands, exit_code, depends, toolkit)
    with tempfile.TemporaryDirectory() as gnupg_home:
        os.chmod(gnupg_home, 0o700)
        env = dict(os.environ, GNUPGHOME=gnupg_home)
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "gpufleet stand-in repository <repo@gpufleet.invalid>", "rsa3072", "sign", "never"], env=env)
        key = subprocess.run(["gpg", "--armor", "--export"], env=env, check=True, capture_output=True, text=True).stdout
        write(os.path.join(cuda, "3bf863cc.pub"), key)
        write(os.path.join(out, "libnvidia-container", "gpgkey"), key)
        publish(cuda, "NVIDIA CUDA stand-in", gnupg_home)
        publish(toolkit, "NVIDIA container toolkit stand-in", gnupg_home)
    print("stand-in NVIDIA repositories in %s" % out)


if __name__ == "__main__":
    main(sys.argv)
