"""Config fuzzing: mutated configs load or are refused in one line, and the steps never trace back or hang.

The variants are seeded mutations of two real configs: the bundled ``ml-cicd.toml``
(pointed at a seeded table, as every test project is) and one written by ``python -m pipeline
init``. Each mutation is one of: a value of the wrong type, NaN or infinity, a huge, negative or
boundary number, an empty or long string, a date, an unknown key, a missing key or section, a
table turned into a list or a scalar, a list or table emptied, a value nudged within its type, or
a count set to the largest value its key accepts (the work it sizes must still end in time).

The quick test loads every variant: it must either load or be refused with a ``ConfigError``
whose one line names the file, and a refused one must make the real CLI exit 2 with exactly that
one ``error:`` line. The slow test runs ``validate``, ``train``, ``evaluate`` and ``gate`` (against
a copy of the candidate as champion, so the bootstrap runs) in subprocesses, on the bundled config
with every count that sizes work at its upper bound and on a seeded subset of the variants that
load: no traceback, an exit code of 0, 1 or 2, and no step past its timeout.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.cli import main
from pipeline.config import WORK_PARAMS, load_config, parse_config
from pipeline.config_types import (
    MAX_BINS,
    MAX_BOOTSTRAP,
    MAX_FEATURES,
    MAX_LATENCY_SAMPLES,
    MAX_LEAKAGE_ROWS,
    MAX_ROWS,
    MAX_TEST_ROWS,
)
from pipeline.core.synth import churn_frame
from pipeline.errors import ConfigError
from tests.conftest import REPO, write_project

SEED = 20240617
VARIANTS = 320  # half from each base config
HEAVY_RUNS = 24  # variants that load run through validate, train, evaluate and gate
STEP_TIMEOUT = 120  # seconds for one step of one variant
STEPS = ("validate", "train", "evaluate", "gate")

KeyPath = tuple[str | int, ...]

ODD_VALUES: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    10**9,
    2**63 - 1,
    -(2**63),
    -1,
    -5,
    0,
    0.0,
    1,
    2,
    100,
    10_000,
    50_000,
    1e-12,
    0.5,
    0.999,
    1.0,
    1e300,
    -1e300,
    "",
    " ",
    "x" * 300,
    "nan",
    "1",
    True,
    False,
    [],
    [1, "a"],
    [[1]],
    {},
    {"a": 1},
    [{"a": 1}],
    date(2020, 1, 1),
    datetime(2020, 1, 1, 12, 30),
    clock(12, 30),
]
LADDER = [10**9, 10**6, 100_000, 50_000, 10_000, 1000]  # tried from the top: the largest count a key takes
NAMES = ["", " ", "x", "roc_auc", "rmse", "r2", "churned", "region", "customer_id", "nope/../x"]


@dataclass(frozen=True)
class Variant:
    """One mutated config: which base it came from and what was done to it."""

    base: str
    what: str
    raw: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# TOML out: every value the mutations make, NaN, infinities, dates and mixed arrays included.


def toml_text(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Return ``table`` as TOML: scalars under a ``[header]``, sub-tables as their own headers."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = []
    if prefix and (scalars or not tables):
        lines.append("[" + ".".join(_key(k) for k in prefix) + "]")
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    text = "\n".join(lines) + "\n" if lines else ""
    return text + "".join(toml_text(v, (*prefix, k)) for k, v in tables.items())


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date | datetime | clock):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


# ---------------------------------------------------------------------------------------------
# Mutations of a parsed config, addressed by paths of keys and list indices.


def _nodes(value: Any, path: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    """Return every (path, value) below ``value``, the root excluded."""
    found: list[tuple[KeyPath, Any]] = []
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    )
    for key, child in children:
        found.append(((*path, key), child))
        found += _nodes(child, (*path, key))
    return found


def _dotted(path: KeyPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _set(raw: dict[str, Any], path: KeyPath, value: Any) -> None:
    parent: Any = raw
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value


def _delete(raw: dict[str, Any], path: KeyPath) -> None:
    parent: Any = raw
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]


def _nudged(rng: random.Random, value: Any) -> Any:
    """Return ``value`` changed within its type: a flipped boolean, a scaled number, another name."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * rng.choice([-1, 0, 2, 10, 1000]) + rng.choice([0, 1])
    if isinstance(value, float):
        return value * rng.choice([-1.0, 0.0, 0.5, 2.0, 10.0, 1e6])
    if isinstance(value, str):
        return rng.choice(NAMES)
    return rng.choice(ODD_VALUES)


def _loads(raw: dict[str, Any]) -> bool:
    try:
        parse_config(copy.deepcopy(raw))
    except ConfigError:
        return False
    return True


def mutate(rng: random.Random, raw: dict[str, Any]) -> str:
    """Apply one random mutation to ``raw`` in place; return what it did."""
    nodes = _nodes(raw)
    tables = [(p, v) for p, v in nodes if isinstance(v, dict)]
    kinds = ["odd", "odd", "odd", "nudge", "nudge", "largest", "drop", "unknown", "shape", "section", "empty"]
    kind = rng.choice(kinds)
    counts = [(p, v) for p, v in nodes if isinstance(v, int) and not isinstance(v, bool)]
    if kind == "largest" and counts:
        path, old = rng.choice(counts)
        for value in LADDER:
            _set(raw, path, value)
            if _loads(raw):
                return f"{_dotted(path)}: {old!r} -> the largest that loads, {value!r}"
        _set(raw, path, old)
        return f"{_dotted(path)}: none larger loads"
    if kind == "odd":
        path, _ = rng.choice(nodes)
        value = rng.choice(ODD_VALUES)
        _set(raw, path, copy.deepcopy(value))
        return f"{_dotted(path)} = {value!r}"
    if kind == "nudge":
        path, old = rng.choice([(p, v) for p, v in nodes if not isinstance(v, dict | list)])
        value = _nudged(rng, old)
        _set(raw, path, value)
        return f"{_dotted(path)}: {old!r} -> {value!r}"
    if kind == "drop":
        path, _ = rng.choice([(p, v) for p, v in nodes if not isinstance(p[-1], int)])
        _delete(raw, path)
        return f"del {_dotted(path)}"
    if kind == "unknown":
        path, table = rng.choice([((), raw), *tables])
        table[rng.choice(["colour", "Threshold", "min_row", "extra"])] = rng.choice([1, "red", {"a": 1}])
        return f"unknown key in {_dotted(path) or 'top level'}"
    if kind == "shape" and tables:
        path, table = rng.choice(tables)
        value = rng.choice([[table], [table, table], "table", 3, [1, 2]])
        _set(raw, path, copy.deepcopy(value))
        return f"{_dotted(path)} reshaped to {type(value).__name__}"
    if kind == "section":
        name = rng.choice(sorted(raw))
        del raw[name]
        return f"del section {name}"
    lists_and_tables = [(p, v) for p, v in nodes if isinstance(v, dict | list)]
    path, value = rng.choice(lists_and_tables)
    _set(raw, path, type(value)())
    return f"{_dotted(path)} emptied"


def variants(bases: dict[str, dict[str, Any]], count: int, seed: int) -> list[Variant]:
    """Return ``count`` seeded variants, taking the bases in turn; one or two mutations each."""
    rng = random.Random(seed)
    names = sorted(bases)
    made = []
    for i in range(count):
        base = names[i % len(names)]
        raw = copy.deepcopy(bases[base])
        done = [mutate(rng, raw) for _ in range(1 if rng.random() < 0.7 else 2)]
        made.append(Variant(base, "; ".join(done), raw))
    return made


# ---------------------------------------------------------------------------------------------
# The two bases and the variants, made once per module.


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Return the bundled config (pointed at a seeded table) and one written by ``init``, parsed."""
    root = tmp_path_factory.mktemp("fuzz-bases")
    project = write_project(root / "bundled", rows=400)
    table = root / "init" / "table.csv"
    table.parent.mkdir()
    churn_frame(400, seed=5).to_csv(table, index=False)
    written = root / "init" / "pipeline.toml"
    assert main(["init", str(table), "--target", "churned", "--config", str(written)]) == 0, "init failed"
    return {
        "bundled": tomllib.loads(project.config.read_text()),
        "init": tomllib.loads(written.read_text()),
    }


@pytest.fixture(scope="module")
def fuzzed(bases: dict[str, dict[str, Any]]) -> list[Variant]:
    """Return the seeded variants of both bases."""
    return variants(bases, VARIANTS, SEED)


def test_the_toml_writer_round_trips_both_bases(bases: dict[str, dict[str, Any]]) -> None:
    for name, raw in bases.items():
        assert tomllib.loads(toml_text(raw)) == raw, f"the fuzz TOML writer changed the {name} config"


def test_every_variant_loads_or_is_refused_in_one_error_line(
    fuzzed: list[Variant], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the seeded variants, each written as a TOML file; the CLI's top parser reads every
    # command's docstring from its file on each call (25 ms), which cannot change during the test
    monkeypatch.setattr(cli, "summary", functools.cache(cli.summary))
    loaded: list[Variant] = []
    refused: list[Variant] = []
    started = time.perf_counter()
    for i, variant in enumerate(fuzzed):
        path = tmp_path / f"variant{i:03d}.toml"
        path.write_text(toml_text(variant.raw))
        context = f"variant {i} ({variant.base}: {variant.what})"

        # when it is loaded
        try:
            load_config(path)
        except ConfigError as exc:
            message = str(exc)
        except Exception as exc:  # anything but a ConfigError is the bug this test looks for
            pytest.fail(f"{context}: load_config raised {type(exc).__name__}: {exc}")
        else:
            loaded.append(variant)
            continue

        # then a refusal is one line naming the file, and the CLI exits 2 with exactly that line
        refused.append(variant)
        assert "\n" not in message and message.startswith(f"{path}: "), f"{context}: {message!r}"
        capsys.readouterr()
        code = main(["validate", "--config", str(path), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2, f"{context}: exit {code}, expected 2; stderr:\n{err}"
        assert errors == [f"error: {message}"], f"{context}: expected one error line; stderr:\n{err}"
        assert "Traceback" not in err, f"{context}: a traceback leaked:\n{err}"
    seconds = time.perf_counter() - started

    assert len(loaded) + len(refused) == VARIANTS
    assert len(loaded) >= VARIANTS // 10 and len(refused) >= VARIANTS // 2, (
        f"the mutations should both pass and fail: {len(loaded)} loaded, {len(refused)} refused"
    )
    print(
        f"\nconfig fuzz: {VARIANTS} variants, {len(loaded)} loaded, {len(refused)} refused, {seconds:.1f} s"
    )


def _at_the_bounds(raw: dict[str, Any]) -> Variant:
    """Return ``raw`` with every count that sizes work at its upper bound (the work must still end)."""
    raw = copy.deepcopy(raw)
    raw["training"]["sample_rows"] = MAX_ROWS
    raw["schema"]["leakage_rows"] = MAX_LEAKAGE_ROWS
    raw["gates"]["champion"].update(bootstrap=MAX_BOOTSTRAP, min_rows=1)  # the ~100 held-out rows suffice
    raw["gates"]["latency"]["samples"] = MAX_LATENCY_SAMPLES
    raw["drift"].update(test_max_rows=MAX_TEST_ROWS, bins=MAX_BINS, max_drifted_features=MAX_FEATURES)
    raw["model"]["params"]["max_iter"] = WORK_PARAMS["max_iter"]
    return Variant("bundled", "every count that sizes work at its upper bound", raw)


def _heavy(fuzzed: list[Variant]) -> list[Variant]:
    """Return a seeded subset of the variants that load: a key at its largest first, then one per key."""
    loads = [variant for variant in fuzzed if _loads(variant.raw)]
    random.Random(SEED).shuffle(loads)
    key = {id(v): v.what.split(":")[0].split(" = ")[0] for v in loads}
    largest = list({key[id(v)]: v for v in loads if "the largest that loads" in v.what}.values())
    distinct = list({key[id(v)]: v for v in loads if v not in largest}.values())
    rest = [v for v in loads if v not in largest and v not in distinct]
    return (largest[: HEAVY_RUNS // 2] + distinct + rest)[: HEAVY_RUNS - 1]


def _step(command: str, root: Path) -> subprocess.CompletedProcess[str] | None:
    """Run one step on ``root``'s config and out in a subprocess; None when it runs past ``STEP_TIMEOUT``.

    The gate compares the candidate with a copy of itself, so the bootstrap and the alternate
    timing of two models run too.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "pipeline", command, "--config", "pipeline.toml", "--out", "out"]
    if command == "gate":
        shutil.copytree(root / "out" / "model", root / "champion")
        argv += ["--champion", "champion"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT, cwd=root, env=env)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.slow
def test_loaded_variants_run_every_step_without_a_traceback_or_a_hang(
    bases: dict[str, dict[str, Any]], fuzzed: list[Variant], tmp_path: Path
) -> None:
    # given every work-sizing count at its bound, and a seeded subset of the variants that load
    chosen = [_at_the_bounds(bases["bundled"]), *_heavy(fuzzed)]
    assert len(chosen) == HEAVY_RUNS, f"only {len(chosen)} variants load"
    codes: dict[int, int] = {}
    slowest = (0.0, "")
    started = time.perf_counter()
    for i, variant in enumerate(chosen):
        root = tmp_path / f"v{i:02d}"  # the working directory: relative paths land here, not in the repo
        root.mkdir()
        (root / "pipeline.toml").write_text(toml_text(variant.raw))
        context = f"heavy variant {i} ({variant.base}: {variant.what})"

        # when each step runs on it (train, evaluate and gate need the step before to have passed)
        for command in STEPS:
            began = time.perf_counter()
            done = _step(command, root)
            slowest = max(slowest, (time.perf_counter() - began, f"`{command}` of variant {i}"))

            # then no hang, no traceback, and a code of the CLI's contract
            assert done is not None, f"{context}: `{command}` ran past {STEP_TIMEOUT} s"
            assert "Traceback" not in done.stderr, f"{context}: `{command}` traced back:\n{done.stderr}"
            assert done.returncode in (0, 1, 2), (
                f"{context}: `{command}` exit {done.returncode}:\n{done.stderr}"
            )
            codes[done.returncode] = codes.get(done.returncode, 0) + 1
            if command != "validate" and done.returncode != 0:
                break
    seconds = time.perf_counter() - started
    print(
        f"\nconfig fuzz, heavy: {len(chosen)} variants, step exit codes {codes}, {seconds:.0f} s "
        f"(slowest: {slowest[1]}, {slowest[0]:.0f} s)"
    )
