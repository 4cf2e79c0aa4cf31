"""Names that reach file names or terminals: one validator for names a user declares
(platforms, accelerators) and one sanitiser for names that come from elsewhere (an ONNX
graph's name), so no name can point a file outside its folder or hide text on a terminal."""

from __future__ import annotations

import re

NAME_CHARACTERS = "letters, digits, '_', '-', '.' and '+'"
MAX_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def check_name(name: str, what: str) -> str:
    """`name` if it is a safe single path component, else ValueError naming `what` (the
    name is shown escaped, so control and direction-override characters are visible)."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{what} {name!r} is not a safe name: use {NAME_CHARACTERS}, at most "
            f"{MAX_NAME_LENGTH} characters, not starting with '.' and without '..'"
        )
    return name


def file_stem(name: str) -> str:
    """`name` made safe as (part of) a file name: every other character becomes '_', no
    leading dot, no '..', at most MAX_NAME_LENGTH characters."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    while ".." in cleaned:
        cleaned = cleaned.replace("..", "_")
    return cleaned[:MAX_NAME_LENGTH] or "unnamed"
