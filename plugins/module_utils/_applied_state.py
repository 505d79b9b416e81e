# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""The record of what a complete run of the site play applied to a host, and whether the host still holds it.

A complete run ends by recording, per host, digests of its inputs (the plan, the collection's variables, the model and
the collection's own files) and what it left: the sha256 of every file the roles manage, the units that were active and
the image each replica's container runs. A later run whose inputs are the same, on a host whose files, units and
containers are the same, has nothing to do there. Anything else names its first difference, and the run takes every
stage.
"""

from __future__ import annotations

RECORD_FORMAT = 1

# Every file the roles write, as shell patterns; a pattern that matches nothing on a host is recorded as such.
MANAGED_FILES = (
    "/etc/gpufleet/*.json",
    "/etc/gpufleet/*.sha256",
    "/etc/gpufleet/secrets/*",
    "/etc/systemd/system/vllm-*.service",
    "/etc/systemd/system/nvidia-uvm-nodes.service",
    "/usr/local/libexec/gpufleet/*",
    "/opt/gpufleet/vllm-router-*/gpufleet-installation.json",
    "/var/lib/gpufleet/models/*.manifest.json",
    "/etc/docker/daemon.json",
    "/etc/cdi/nvidia.yaml",
    "/etc/modprobe.d/gpufleet-*",
    "/etc/apt/preferences.d/gpufleet-*",
    "/etc/apt/apt.conf.d/51gpufleet-*",
    "/etc/apt/sources.list.d/gpufleet-*",
    "/etc/apt/sources.list.d/nvidia-container-toolkit.sources",
    "/etc/apt/sources.list.d/cuda-*.sources",
    "/etc/yum.repos.d/cuda-*.repo",
    "/etc/yum.repos.d/nvidia-container-toolkit.repo",
    "/etc/dnf/plugins/versionlock.list",
    "/etc/profile.d/cuda.sh",
    "/etc/default/prometheus-node-exporter",
    "/etc/sysconfig/node_exporter",
    "/etc/prometheus/prometheus.yml",
    "/etc/prometheus/file_sd/gpufleet-*.json",
)

# The units a complete run leaves active, as patterns for systemctl; those active when it ends must stay so.
MANAGED_UNITS = (
    "vllm-*.service",
    "docker.service",
    "nvidia-persistenced.service",
    "nvidia-fabricmanager.service",
    "prometheus-node-exporter.service",
    "node_exporter.service",
    "prometheus.service",
)

# Which input digest changed, in the order a difference is named.
INPUTS = (
    ("plan", "the plan"),
    ("variables", "the collection's variables"),
    ("serving", "the model or the serving settings"),
    ("collection", "the collection's files"),
    # Only a monitoring host has one: its scrape targets follow every host of the fleet.
    ("fleet", "the fleet's hosts or their plans, which its scrape targets follow"),
)


def observation(files, units, containers, held):
    """What a host holds now: {path: sha256}, the active units, {container: image ID} and the held packages."""
    return {"files": dict(files), "units": sorted(units), "containers": dict(containers), "held": sorted(held)}


def new_record(run, inputs, observed):
    """The record a complete run leaves: which run, the digests of its inputs and what it observed at its end."""
    record = {"format": RECORD_FORMAT, "run": {"id": run.get("id"), "started": run.get("started")}, "inputs": dict(inputs)}
    record.update(observed)
    return record


def since(record):
    run = record.get("run") or {}
    return "run %s of %s" % (run.get("id"), run.get("started"))


def input_difference(record, inputs):
    recorded = record.get("inputs") or {}
    for key, name in INPUTS:
        if recorded.get(key) != inputs.get(key):
            return "%s changed since %s" % (name, since(record))
    return None


def file_difference(record, observed):
    recorded, now = record.get("files") or {}, observed["files"]
    for path in sorted(set(recorded) | set(now)):
        if path not in now:
            return "%s is gone since %s" % (path, since(record))
        if path not in recorded:
            return "%s appeared since %s" % (path, since(record))
        if recorded[path] != now[path]:
            return "%s changed since %s" % (path, since(record))
    return None


def unit_difference(record, observed):
    for unit in record.get("units") or []:
        if unit not in observed["units"]:
            return "%s is not active" % unit
    return None


def container_difference(record, observed):
    for name, image in sorted((record.get("containers") or {}).items()):
        running = observed["containers"].get(name)
        if running is None:
            return "container %s is not running" % name
        if running != image:
            return "container %s runs image %s, not %s as after %s" % (name, running, image, since(record))
    return None


def held_difference(record, observed):
    for package in record.get("held") or []:
        if package not in observed["held"]:
            return "package %s is no longer held" % package
    return None


def first_difference(record, inputs, observed):
    """One line naming the first way the host or the run differs from the record; None where nothing does."""
    if not record:
        return "no complete run is recorded on this host"
    if record.get("format") != RECORD_FORMAT:
        return "the record of the last run is of another format"
    for difference in (input_difference(record, inputs), file_difference(record, observed),
                       unit_difference(record, observed), container_difference(record, observed),
                       held_difference(record, observed)):
        if difference:
            return difference
    return None


def verdict(record, inputs, observed, refusal=None):
    """(unchanged, one line saying why): unchanged only where no refusal holds and nothing differs."""
    if refusal:
        return False, "%s: every stage runs" % refusal
    difference = first_difference(record, inputs, observed)
    if difference:
        return False, "%s: every stage runs" % difference
    return True, "unchanged since %s: nothing to do" % since(record)


def held_packages(dpkg_status, packages):
    """The packages of the list that dpkg's status file marks as held."""
    held = set()
    for stanza in dpkg_status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") in packages and fields.get("Status", "").startswith("hold "):
            held.add(fields["Package"])
    return sorted(held)
