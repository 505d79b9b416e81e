# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The NVIDIA Container Toolkit floor: the fixes as NVIDIA's bulletins state them, versions as apt orders them, and the
sentences a pinned or installed version below the floor gets."""

from __future__ import annotations

import pytest

from ansible_collections.gpufleet.vllm.plugins.module_utils._toolkit_floor import (
    FIXES,
    FLOOR,
    installed_warning,
    missing_fixes,
    pin_refusal,
    version_key,
)

BULLETIN = "https://nvidia.custhelp.com/app/answers/detail/a_id/%d"


def test_fixes_hold_the_bulletins_fixed_versions():
    # The "Updated Version" column of each bulletin (NVIDIA/product-security, 2024/5582 to 2026/5850).
    assert [(fix.cve, fix.fixed_in, fix.bulletin) for fix in FIXES] == [
        ("CVE-2024-0132", "1.16.2", BULLETIN % 5582),
        ("CVE-2025-23359", "1.17.4", BULLETIN % 5616),
        ("CVE-2025-23266", "1.17.8", BULLETIN % 5659),
        ("CVE-2025-23267", "1.17.8", BULLETIN % 5659),
        ("CVE-2026-24260", "1.19.1", BULLETIN % 5850),
    ]


def test_floor_is_the_newest_fix():
    assert FLOOR == "1.19.1"


@pytest.mark.parametrize("older, newer", [
    ("1.17.8", "1.19.1"),
    ("1.17.8-1", "1.17.9-1"),
    ("1.9.0", "1.17.0"),
    ("1.18.0~rc.1-1", "1.18.0-1"),
    ("1.18.0~rc.1-1", "1.18.0~rc.2-1"),
    ("1.17.8-1", "1.18.0~rc.1-1"),
    ("1.19", "1.19.1"),
    ("1.99.0", "1:1.0.0"),
])
def test_versions_order_as_apt_orders_them(older, newer):
    assert version_key(older) < version_key(newer)


@pytest.mark.parametrize("same, other", [("1.19.1", "1.19.1-1"), ("1.19.1-1", "1.19.1-3"), ("v1.19.1", "1.19.1"), ("1.19", "1.19.0")])
def test_packaging_revision_and_tag_prefix_do_not_change_the_release(same, other):
    assert version_key(same) == version_key(other)


@pytest.mark.parametrize("text", ["latest", "", "1.19.x", "1..2"])
def test_version_key_names_what_it_cannot_read(text):
    with pytest.raises(ValueError) as caught:
        version_key(text)
    assert str(caught.value) == "NVIDIA Container Toolkit version %r is no version like 1.19.1 or 1.19.1-1." % text


def test_missing_fixes_lists_only_those_after_the_version():
    assert [fix.cve for fix in missing_fixes("1.17.8-1")] == ["CVE-2026-24260"]
    assert [fix.cve for fix in missing_fixes("1.17.4-1")] == ["CVE-2025-23266", "CVE-2025-23267", "CVE-2026-24260"]
    assert missing_fixes("1.19.1-1") == ()


def test_release_candidate_of_the_floor_is_below_it():
    assert [fix.cve for fix in missing_fixes("1.19.1~rc.1-1")] == ["CVE-2026-24260"]


def test_pin_at_or_above_the_floor_or_unset_is_fine():
    assert pin_refusal("1.19.1-1") is None
    assert pin_refusal("1.20.0-1") is None
    assert pin_refusal("") is None
    assert pin_refusal(None) is None


def test_pin_below_the_floor_names_version_cves_bulletin_and_floor():
    assert pin_refusal("1.17.8-1") == (
        "container_toolkit_version 1.17.8-1 lacks the container-escape fixes of CVE-2026-24260 "
        "(https://nvidia.custhelp.com/app/answers/detail/a_id/5850); pin 1.19.1-1 or newer, or leave it unset to install "
        "the newest.")


def test_pin_far_below_the_floor_names_every_cve_and_each_bulletin_once():
    assert pin_refusal("1.16.1-1") == (
        "container_toolkit_version 1.16.1-1 lacks the container-escape fixes of CVE-2024-0132, CVE-2025-23359, CVE-2025-23266, "
        "CVE-2025-23267 and CVE-2026-24260 (%s, %s, %s, %s); pin 1.19.1-1 or newer, or leave it unset to install the newest."
        % (BULLETIN % 5582, BULLETIN % 5616, BULLETIN % 5659, BULLETIN % 5850))


def test_pin_that_is_no_version_is_refused():
    assert pin_refusal("latest") == (
        "container_toolkit_version 'latest' is no version like 1.19.1-1; set NVIDIA's package version, or leave it unset to "
        "install the newest.")


def test_installed_at_the_floor_or_missing_draws_no_warning():
    assert installed_warning("1.19.1-1") is None
    assert installed_warning(None) is None


def test_installed_below_the_floor_draws_a_warning():
    assert installed_warning("1.18.0~rc.1-1") == (
        "The installed NVIDIA Container Toolkit 1.18.0~rc.1-1 lacks the container-escape fixes of CVE-2026-24260 "
        "(https://nvidia.custhelp.com/app/answers/detail/a_id/5850), so a crafted image can reach the host; upgrade it to "
        "1.19.1 or newer (leave container_toolkit_version unset, or pin 1.19.1-1).")


def test_installed_version_that_is_no_version_draws_a_warning():
    assert installed_warning("unknown") == (
        "The installed NVIDIA Container Toolkit reports version 'unknown', which cannot be held against the security floor "
        "1.19.1; check it with nvidia-ctk --version.")
