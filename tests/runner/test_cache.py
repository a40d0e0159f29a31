"""The step cache: an entry is restored only for the key it was stored under, whole and byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.dag import Step, steps
from pipeline.runner.cache import MANIFEST, OUTPUTS, StaleEntry, StepCache
from pipeline.runner.scheduler import Runner
from tests.conftest import DEFAULT_CONFIG, Project

STEP = Step("train", (("python", "-c", "pass"),), writes=("model", "holdout.parquet", "notes.txt"))


def _cache(tmp_path: Path) -> StepCache:
    return StepCache(tmp_path / "cache", load_config(DEFAULT_CONFIG), DEFAULT_CONFIG, tmp_path / "out")


def _write_outputs(out: Path, model: bytes = b"model A") -> None:
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "model" / "model.joblib").write_bytes(model)
    (out / "model" / "metadata.json").write_text('{"config": "A"}')
    (out / "holdout.parquet").write_bytes(b"rows A")


def _clear(out: Path) -> None:
    for name in ("model", "holdout.parquet", "notes.txt"):
        path = out / name
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink(missing_ok=True)


def _stored(tmp_path: Path, key: str = "a" * 64) -> tuple[StepCache, str]:
    cache = _cache(tmp_path)
    _write_outputs(cache.out)
    assert cache.store(key, STEP)
    _clear(cache.out)
    return cache, key


def test_a_stored_entry_restores_every_output_as_it_was(tmp_path: Path) -> None:
    # given outputs stored under a key (notes.txt was not written: it is stored as absent)
    cache, key = _stored(tmp_path)
    (cache.out / "notes.txt").write_text("stale, from an earlier run")

    # when
    restored = cache.restore(key, STEP)

    # then
    assert restored
    assert (cache.out / "model" / "model.joblib").read_bytes() == b"model A"
    assert (cache.out / "holdout.parquet").read_bytes() == b"rows A"
    assert not (cache.out / "notes.txt").exists(), "an output the step did not write must be absent"
    assert [p.name for p in cache.out.iterdir() if p.name.startswith(".")] == [], "a temp copy was left"


def test_a_key_with_no_entry_is_a_plain_miss(tmp_path: Path) -> None:
    assert not _cache(tmp_path).restore("b" * 64, STEP)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda e: (e / OUTPUTS / "model" / "model.joblib").write_bytes(b"model B"),
            "differs from its sha256",
        ),
        (lambda e: (e / OUTPUTS / "holdout.parquet").write_bytes(b"rows B"), "differs from its sha256"),
        (lambda e: (e / OUTPUTS / "model" / "extra.bin").write_bytes(b"?"), "other files than listed"),
        (lambda e: (e / OUTPUTS / "model" / "metadata.json").unlink(), "other files than listed"),
        (lambda e: (e / OUTPUTS / "notes.txt").write_text("?"), "should be absent"),
        (lambda e: (e / MANIFEST).write_text("{not json"), "unreadable manifest"),
    ],
    ids=[
        "model file changed",
        "file changed",
        "extra file",
        "file missing",
        "absent output present",
        "manifest",
    ],
)
def test_an_entry_that_differs_from_its_manifest_is_a_reported_miss_and_is_removed(
    tmp_path: Path, damage, reason: str
) -> None:
    # given a stored entry, damaged one way, and the out directory holding this run's own files
    cache, key = _stored(tmp_path)
    damage(cache.entry(key))
    (cache.out / "holdout.parquet").write_bytes(b"untouched")

    # when / then: a miss naming what is wrong, never a restore
    with pytest.raises(StaleEntry, match=reason):
        cache.restore(key, STEP)
    assert not cache.entry(key).exists(), "a bad entry must be removed, so the step's run stores a good one"
    assert (cache.out / "holdout.parquet").read_bytes() == b"untouched", "a refused restore changed --out"
    assert not (cache.out / "model").exists()


def test_an_entry_moved_under_another_key_is_never_restored(tmp_path: Path) -> None:
    # given config B's entry renamed to config A's key (how a swapped or copied cache would look)
    cache, key_b = _stored(tmp_path, "b" * 64)
    key_a = "a" * 64
    cache.entry(key_a).parent.mkdir(parents=True, exist_ok=True)
    cache.entry(key_b).rename(cache.entry(key_a))

    # when / then
    assert not cache.has(key_a), "has() must not count an entry whose manifest names another key"
    with pytest.raises(StaleEntry, match="stored for 'train' under bbbbbbbbbbbb"):
        cache.restore(key_a, STEP)
    assert not (cache.out / "model").exists()


def test_an_entry_of_another_step_is_never_restored(tmp_path: Path) -> None:
    cache, key = _stored(tmp_path)
    other = Step("evaluate", STEP.commands, writes=STEP.writes)

    with pytest.raises(StaleEntry, match="stored for 'train'"):
        cache.restore(key, other)


def test_an_entry_of_the_old_layout_is_not_restored(tmp_path: Path) -> None:
    # given an entry as the cache wrote it before manifests: outputs beside a "complete" marker
    cache = _cache(tmp_path)
    key = "c" * 64
    entry = cache.entry(key)
    entry.mkdir(parents=True)
    (entry / "holdout.parquet").write_bytes(b"whose rows?")
    (entry / "complete").write_text("ok\n")

    # then it counts as no entry at all
    assert not cache.has(key)
    assert not cache.restore(key, STEP)


def test_a_restore_is_whole_or_nothing(tmp_path: Path) -> None:
    # given an entry whose second output (in the step's order) no longer matches
    cache, key = _stored(tmp_path)
    (cache.entry(key) / OUTPUTS / "holdout.parquet").write_bytes(b"rows B")

    with pytest.raises(StaleEntry):
        cache.restore(key, STEP)

    # then the first output was not restored either
    assert not (cache.out / "model").exists(), "a restore that failed its check left part of the entry"


def test_a_second_store_of_a_key_keeps_the_first_entry(tmp_path: Path) -> None:
    cache, key = _stored(tmp_path)
    _write_outputs(cache.out, model=b"model A, fitted again")

    assert not cache.store(key, STEP), "an existing entry must never be replaced"
    _clear(cache.out)
    cache.restore(key, STEP)
    assert (cache.out / "model" / "model.joblib").read_bytes() == b"model A"


def test_the_manifest_names_the_key_the_step_and_each_files_sha256(tmp_path: Path) -> None:
    cache, key = _stored(tmp_path)

    manifest = json.loads((cache.entry(key) / MANIFEST).read_text())

    assert manifest["key"] == key and manifest["step"] == "train"
    assert set(manifest["outputs"]["model"]["dir"]) == {"model.joblib", "metadata.json"}
    assert len(manifest["outputs"]["holdout.parquet"]["file"]) == 64
    assert manifest["outputs"]["notes.txt"] == {"absent": True}


def _runner(tmp_path: Path, cache_dir: Path | None = None) -> Runner:
    return Runner(
        load_config(DEFAULT_CONFIG),
        DEFAULT_CONFIG,
        tmp_path / "out",
        cache_dir or tmp_path / "cache",
        use_cache=True,
        skip=set(),
        engine=False,
    )


def test_a_step_whose_input_changed_while_it_ran_is_not_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a step that reads a file and, while it runs, the file changes (here: the step edits it)
    data = tmp_path / "data.txt"
    data.write_text("version 1")
    out = tmp_path / "out"
    code = "import sys; open(sys.argv[1], 'w').write('version 2'); open(sys.argv[2], 'w').write('result')"
    argv = ("python", "-c", code, str(data), str(out / "result.txt"))
    step = Step("s", (argv,), reads=(str(data),), writes=("result.txt",))

    # when
    assert _runner(tmp_path).execute((step,)) == 0

    # then its result is kept, but no entry claims it came from "version 1"
    assert "not stored: what it reads changed while it ran" in capsys.readouterr().err
    assert not list((tmp_path / "cache").rglob(MANIFEST)), "an entry was stored under the key of old inputs"


def test_a_cache_that_cannot_be_written_is_reported_and_the_run_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a cache directory that is a file (as unwritable as a full or read-only disk)
    blocked = tmp_path / "cache"
    blocked.write_text("not a directory")
    out = tmp_path / "out"
    step = Step("s", (("python", "-c", f"open({str(out / 'r.txt')!r}, 'w').write('r')"),), writes=("r.txt",))

    # when
    code = _runner(tmp_path, blocked).execute((step,))

    # then
    err = capsys.readouterr().err
    assert code == 0, err
    assert "cache  s            not stored:" in err, err
    assert (out / "r.txt").read_text() == "r"


def test_a_run_reports_a_bad_entry_runs_the_step_and_stores_a_good_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a cached step whose entry was then damaged
    out = tmp_path / "out"
    step = Step(
        "s", (("python", "-c", f"open({str(out / 'r.txt')!r}, 'w').write('good')"),), writes=("r.txt",)
    )
    assert _runner(tmp_path).execute((step,)) == 0
    (entry,) = (m.parent for m in (tmp_path / "cache").rglob(MANIFEST))
    (entry / OUTPUTS / "r.txt").write_text("evil")
    capsys.readouterr()

    # when
    assert _runner(tmp_path).execute((step,)) == 0

    # then
    err = capsys.readouterr().err
    assert "does not match its manifest (r.txt differs from its sha256); removed; running the step" in err
    assert "ok     s" in err and (out / "r.txt").read_text() == "good"
    assert (entry / OUTPUTS / "r.txt").read_text() == "good", "the run did not store a good entry"
    assert "cached s" in " ".join(_rerun(tmp_path, step, capsys).split())


def _rerun(tmp_path: Path, step: Step, capsys: pytest.CaptureFixture[str]) -> str:
    assert _runner(tmp_path).execute((step,)) == 0
    return capsys.readouterr().err


def test_a_check_reading_the_whole_project_keeps_its_key_when_a_test_run_writes_tool_caches(
    make_project: Callable[..., Project],
) -> None:
    # given a project and the test step, which reads the whole project
    project = make_project()
    config = load_config(project.config)
    cache = StepCache(project.root / ".cache" / "ml-cicd", config, project.config, project.out)
    step = next(s for s in steps(str(project.config), str(project.out)) if s.name == "test")
    key = cache.key(step)
    # when the tests write what test tools keep between runs (hypothesis's database, pytest's cache)
    for name in (".hypothesis/examples/ab/cd", ".pytest_cache/v/cache/lastfailed", "out/report.md"):
        (project.root / name).parent.mkdir(parents=True, exist_ok=True)
        (project.root / name).write_text("written by the run")
    # then the key is the same (the step's result is stored), and a change to a project file changes it
    assert cache.unchanged(step, key)
    (project.root / "tests_extra.py").write_text("def test_new(): pass\n")
    assert not cache.unchanged(step, key)


def test_a_step_that_does_not_read_the_project_keeps_its_key_after_one_that_does(
    make_project: Callable[..., Project],
) -> None:
    # given the step cache of one run, which has already keyed the test step (it reads the whole project)
    project = make_project()
    config = load_config(project.config)
    cache = StepCache(project.root / ".cache" / "ml-cicd", config, project.config, project.out)
    by_name = {s.name: s for s in steps(str(project.config), str(project.out))}
    cache.key(by_name["test"])
    # when validate and train are keyed after it
    keys = {name: cache.key(by_name[name]) for name in ("validate", "train")}
    # then each key holds when their inputs are read again (so their results are stored) ...
    assert all(cache.unchanged(by_name[name], key) for name, key in keys.items())
    # ... and a project file neither of them reads does not change them
    (project.root / "notes.md").write_text("a team's notes\n")
    fresh = StepCache(project.root / ".cache" / "ml-cicd", config, project.config, project.out)
    assert {name: fresh.key(by_name[name]) for name in keys} == keys
