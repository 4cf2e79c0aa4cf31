"""The one output writer: atomic, umask-honouring, and every OS error one line naming the file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from milp_map.cli.solve import main
from milp_map.io import files


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    target = tmp_path / "result.json"
    with pytest.raises(files.WriteError) as caught:
        files.write_text_atomic("{}", target)
    message = str(caught.value)
    assert message.startswith(f"{target}: cannot write it (No space left on device)")
    assert "free some space" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no temporary twin left


def test_written_files_take_the_umask_mode(tmp_path: Path) -> None:
    path = files.write_text_atomic("x", tmp_path / "a.txt")
    assert path.stat().st_mode & 0o777 == files.FILE_MODE
    assert path.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_solve_out_into_proc_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--model", "resnet8", "--quiet", "--out", "/proc/version"])
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: /proc/version: cannot write it")
    assert ".version." not in err  # the temporary file's name is not the user's business
