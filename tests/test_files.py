"""The one output writer: atomic, umask-honouring, and every OS error one line naming the file."""

from __future__ import annotations

import errno
import os
import stat
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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_out_onto_a_special_file_is_refused_and_it_stays(tmp_path: Path) -> None:
    """A rename over a device (as root: /dev/full, found by a hostile-input sweep), FIFO or
    socket would replace it; a FIFO stands in for the device here, harmlessly."""
    from milp_map.errors import MilpMapError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(MilpMapError, match="not a regular file"):
        files.write_text_atomic("x", fifo)
    assert main(["--model", "resnet8", "--quiet", "--out", str(fifo)]) == 2
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-latency", "1e308"],
        ["--max-energy", "1e308"],
        ["--max-latency", "1e200", "--granularity", "channel", "--group-size", "16"],
    ],
)
def test_a_bound_beyond_any_mapping_is_one_line(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a hostile-input sweep: these overflowed the solvers' scaled rows."""
    assert main(["--model", "resnet8", "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "beyond any mapping" in err


@pytest.mark.parametrize("solver", ["highs", "cpsat"])
def test_a_huge_proxy_bound_binds_nothing(solver: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-proxy 1e308 (no cap: scores have no natural unit) equals no proxy bound."""
    assert main(["--model", "resnet8", "--quiet", "--solver", solver, "--max-proxy", "1e308"]) == 0
    free = capsys.readouterr().out.split("status ")[1].split(";")[1]
    assert (
        main(["--model", "resnet8", "--quiet", "--solver", solver, "--max-proxy-fraction", "1"])
        == 0
    )
    assert capsys.readouterr().out.split("status ")[1].split(";")[1] == free
