"""Every JSON file milp_map writes during the tests (through its one writer) is checked
against the shipped schema of its kind (data/schemas/); a file that breaks it fails the test
that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milp_map.io import files
from milp_map.io.schemas import kind_of, schema_errors


@pytest.fixture(autouse=True)
def written_json_follows_its_schema(monkeypatch):
    broken: list[str] = []
    original = files.write_text_atomic

    def checked(text: str, path, *, durable: bool = False):
        written = original(text, path, durable=durable)
        if Path(path).suffix == ".json":
            data = json.loads(text)
            kind = kind_of(data)
            if kind is not None:
                broken.extend(f"{path} ({kind}): {e}" for e in schema_errors(data, kind))
        return written

    monkeypatch.setattr(files, "write_text_atomic", checked)
    yield
    assert not broken, "written JSON breaks its schema: " + "; ".join(broken[:5])
