"""Names that reach file names: user-declared names are validated, others sanitised, so no
name writes outside its folder or hides text on a terminal (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milp_map.core.names import MAX_NAME_LENGTH, check_name, file_stem
from milp_map.errors import MilpMapError
from milp_map.io.platforms import load_platform

PLATFORM = """\
name: {platform}
accelerators:
  - name: {accelerator}
    precision: fp32
    cost: {{model: roofline, macs_per_s: 1.0e+9, bytes_per_s: 1.0e+9}}
"""


@given(st.text(max_size=300))
def test_a_file_stem_is_one_safe_path_component(name: str) -> None:
    stem = file_stem(name)
    assert stem and len(stem) <= MAX_NAME_LENGTH
    assert "/" not in stem and "\\" not in stem and ".." not in stem
    assert not stem.startswith(".")
    assert stem.isascii() and stem.isprintable()
    folder = Path("/out/dir")
    assert (folder / f"compare_{stem}.csv").parent == folder


@given(st.text(max_size=200))
def test_check_name_accepts_only_what_file_stem_leaves_alone(name: str) -> None:
    try:
        check_name(name, "name")
    except ValueError:
        return
    assert file_stem(name) == name


@pytest.mark.parametrize(
    ("platform", "accelerator", "field"),
    [
        ('"x/../../ESCAPED"', "cpu", "field 'name'"),
        ("ok", '"cpu\\u202egpu"', "accelerators[0].name"),  # a right-to-left override
        ("..", "cpu", "field 'name'"),
        ('".hidden"', "cpu", "field 'name'"),
        ("ok", '"a b"', "accelerators[0].name"),
        ("ok", "x" * (MAX_NAME_LENGTH + 1), "accelerators[0].name"),
    ],
)
def test_unsafe_platform_names_are_one_line_errors(
    tmp_path: Path, platform: str, accelerator: str, field: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PLATFORM.format(platform=platform, accelerator=accelerator))
    with pytest.raises(MilpMapError, match="not a safe name") as caught:
        load_platform(path)
    message = str(caught.value)
    assert field in message and "\n" not in message
    assert "\u202e" not in message  # shown escaped, never raw


def test_presets_have_safe_names() -> None:
    for preset in ("diana", "rockpi-n10", "jetson-xavier", "xavier-haxconn"):
        platform = load_platform(preset)
        check_name(platform.name, "platform")
        for accelerator in platform.accelerators:
            check_name(accelerator.name, "accelerator")


def test_compare_keeps_a_hostile_graph_name_inside_its_folder(tmp_path: Path) -> None:
    import onnx

    from milp_map.cli import compare
    from milp_map.io.zoo import build_model

    model = build_model("resnet8")
    model.graph.name = "../../ESCAPED"
    path = tmp_path / "net.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--model", str(path), "--platform", "diana", "--methods", "exact,single"]
    assert compare.main([*argv, "--out-dir", str(out), "--quiet"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written and all(name.startswith("compare_") for name in written)
    assert not list(tmp_path.parent.glob("ESCAPED*")) and not list(tmp_path.glob("ESCAPED*"))
