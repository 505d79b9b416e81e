# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one reader of host files: text where the file is there, None where it is gone or refused."""

from __future__ import annotations

from ansible_collections.gpufleet.vllm.plugins.module_utils import _host_files
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_files import read_text


def test_a_file_reads_as_its_text(tmp_path):
    path = tmp_path / "comm"
    path.write_text("python3\n")
    assert read_text(str(path)) == "python3\n"


def test_an_empty_file_reads_as_empty_text_not_none(tmp_path):
    path = tmp_path / "cgroup"
    path.write_text("")
    assert read_text(str(path)) == ""


def test_a_file_that_is_gone_reads_as_none(tmp_path):
    assert read_text(str(tmp_path / "4242" / "cgroup")) is None


def test_a_directory_reads_as_none(tmp_path):
    assert read_text(str(tmp_path)) is None


def test_a_file_it_may_not_read_reads_as_none(monkeypatch, tmp_path):
    # Root reads any file by its mode, so the refusal procfs gives for another user's process is what the test raises.
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_host_files, "open", refuse, raising=False)
    assert _host_files.read_text(str(tmp_path / "environ")) is None


def test_bytes_that_are_not_utf8_are_replaced_and_the_rest_is_kept(tmp_path):
    path = tmp_path / "vllm-tiny-0.service"
    path.write_bytes(b"# caf\xe9\nX-GpufleetDeployment=tiny\n")
    assert read_text(str(path)) == "# caf\ufffd\nX-GpufleetDeployment=tiny\n"
