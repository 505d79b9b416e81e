# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""The oldest NVIDIA Container Toolkit a host may run: every container escape fixed so far, with its bulletin.

Every vLLM replica runs an image through the toolkit's hooks, so a toolkit with a known escape hands the host to
whoever controls an image. A pinned version below the floor is refused before the host changes. An older installed
one draws a warning rather than a refusal: the host serves with it today, and the runtime role installs only a
missing toolkit, so the upgrade is the operator's to make (or to pin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Fix:
    """One vulnerability and the first toolkit release without it."""

    cve: str
    fixed_in: str
    bulletin: str


def _bulletin(answer_id):
    return "https://nvidia.custhelp.com/app/answers/detail/a_id/%d" % answer_id


# Each row as NVIDIA's bulletin states it: "Affected Versions" up to the release before fixed_in. The bulletins'
# text is mirrored in the repository NVIDIA/product-security as <year>/<answer id>/<answer id>.md.
FIXES = (
    # September 2024: a time-of-check time-of-use race lets a crafted image reach the host file system.
    Fix("CVE-2024-0132", "1.16.2", _bulletin(5582)),
    # February 2025: the same race again, past the 1.16.2 fix.
    Fix("CVE-2025-23359", "1.17.4", _bulletin(5616)),
    # July 2025, "NVIDIAScape": a container initialization hook runs code from the image with host privileges;
    # in the same bulletin, the update-ldcache hook follows links a crafted image plants.
    Fix("CVE-2025-23266", "1.17.8", _bulletin(5659)),
    Fix("CVE-2025-23267", "1.17.8", _bulletin(5659)),
    # June 2026: a time-of-check time-of-use race that leads to code execution and escalation of privileges.
    Fix("CVE-2026-24260", "1.19.1", _bulletin(5850)),
)

# Debian version syntax, which NVIDIA's apt packages use ("1.17.8-1") and its release candidates ("1.18.0~rc.1-1",
# where "~" sorts before the release); an RPM's "1.17.8-1" reads the same. A leading "v" is how release tags read.
_VERSION = re.compile(r"^v?(?:(?P<epoch>\d+):)?(?P<release>\d+(?:\.\d+)*)(?:~(?P<pre>[0-9A-Za-z.]+))?(?:-(?P<revision>[0-9A-Za-z.+~]+))?$")


def version_key(version):
    """A tuple that orders toolkit versions as apt does; raises ValueError naming a version it cannot read.

    The packaging revision ("-1") is left out: it repackages the same upstream release, so it holds the same fixes.
    """
    match = _VERSION.match(str(version).strip())
    if not match:
        raise ValueError("NVIDIA Container Toolkit version %r is no version like 1.19.1 or 1.19.1-1." % (version,))
    release = tuple(int(part) for part in match.group("release").split("."))
    release += (0,) * (3 - len(release))
    return (int(match.group("epoch") or 0), release, _pre_release_key(match.group("pre")))


def _pre_release_key(pre):
    """A release candidate ("rc.1") sorts before its release, and candidates among themselves part by part."""
    if not pre:
        return (1, ())
    return (0, tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")))


FLOOR = max((fix.fixed_in for fix in FIXES), key=version_key)


def missing_fixes(version):
    """The Fixes that version lacks, oldest first; raises ValueError for a version it cannot read."""
    key = version_key(version)
    return tuple(fix for fix in FIXES if key < version_key(fix.fixed_in))


def _cves(fixes):
    names = [fix.cve for fix in fixes]
    return names[0] if len(names) == 1 else "%s and %s" % (", ".join(names[:-1]), names[-1])


def _bulletins(fixes):
    seen = []
    for fix in fixes:
        if fix.bulletin not in seen:
            seen.append(fix.bulletin)
    return ", ".join(seen)


def pin_refusal(version):
    """Why container_toolkit_version cannot be pinned, in one sentence; None when it holds every fix or is unset."""
    if version in (None, ""):
        return None
    try:
        missing = missing_fixes(version)
    except ValueError:
        return ("container_toolkit_version %r is no version like %s-1; set NVIDIA's package version, or leave it unset to "
                "install the newest." % (version, FLOOR))
    if not missing:
        return None
    return ("container_toolkit_version %s lacks the container-escape fixes of %s (%s); pin %s-1 or newer, or leave it unset "
            "to install the newest." % (version, _cves(missing), _bulletins(missing), FLOOR))


def installed_warning(version):
    """A warning sentence when the installed toolkit lacks a fix; None when it holds them all or is not installed."""
    if version in (None, ""):
        return None
    try:
        missing = missing_fixes(version)
    except ValueError:
        return ("The installed NVIDIA Container Toolkit reports version %r, which cannot be held against the security floor %s; "
                "check it with nvidia-ctk --version." % (version, FLOOR))
    if not missing:
        return None
    return ("The installed NVIDIA Container Toolkit %s lacks the container-escape fixes of %s (%s), so a crafted image can "
            "reach the host; upgrade it to %s or newer (leave container_toolkit_version unset, or pin %s-1)."
            % (version, _cves(missing), _bulletins(missing), FLOOR, FLOOR))
