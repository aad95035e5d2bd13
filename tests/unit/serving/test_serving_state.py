"""The serve command's state file: replaced in one step, owner-only, read back or None."""

from __future__ import annotations

import stat
from pathlib import Path

from serving.paths import read_state, write_state


def test_state_is_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "run" / "triton.json"
    assert read_state(path) is None
    write_state({"triton_pid": 1, "admin_key": "k"}, path)
    write_state({"triton_pid": 2, "admin_key": "k"}, path)  # a restart replaces it
    assert read_state(path) == {"triton_pid": 2, "admin_key": "k"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["triton.json"]  # no temporary file left


def test_a_torn_state_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "triton.json"
    path.write_text('{"triton_pid": ')
    assert read_state(path) is None
