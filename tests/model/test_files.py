"""Atomic writes: all or nothing, and readable by other users (e.g. a non-root model server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.files import staged_directory, write_json_atomic


def test_atomic_json_is_complete_and_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "a" / "m.json"

    write_json_atomic(path, {"b": 1, "a": [1, 2]})

    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["m.json"], "no temp file may be left behind"


def test_staged_directory_replaces_the_target_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with staged_directory(target) as stage:
        (stage / "v").write_text("1")
    assert target.stat().st_mode & 0o777 == 0o755

    with pytest.raises(RuntimeError), staged_directory(target) as stage:
        (stage / "v").write_text("2")
        raise RuntimeError("crash mid-write")

    assert (target / "v").read_text() == "1", "a failed write must leave the old directory intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no stage directory may be left behind"
