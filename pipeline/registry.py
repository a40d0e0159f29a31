"""Register, list, promote and roll back model versions in the directory registry.

    python -m pipeline registry register out/model --gates out/gates.json --alias staging
    python -m pipeline registry promote 3 --to production --approver alice --reason "beats v2"
    python -m pipeline registry rollback production

The registry is a directory (config ``registry.path``, or ``--registry PATH``):
``versions/<n>/`` holds immutable versions (model.joblib and metadata.json exactly as
``train`` wrote them, plus lineage.json, MODEL_CARD.md and metrics.json when known);
``history.jsonl`` logs every alias move and is the source of truth for aliases;
``aliases.json`` is its current state. A version is assembled under ``.staging/`` and
renamed into ``versions/`` while holding an exclusive lock, so concurrent writers never
share a number and a killed writer leaves no partial version. Reading a version checks
the model file's sha256 and refuses a tampered file (exit 2). Production needs an
approval and a passing gate record (exit 1 without them).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.files import sha256_file, staged_directory, write_json_atomic, write_text_atomic
from pipeline.config import load_config
from pipeline.errors import CheckFailed, DataError, ModelError, RegistryError

# The artefact's file names, as in model.artifact (not imported: it pulls in scikit-learn).
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
LINEAGE_FILE = "lineage.json"
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
VERSIONS = "versions"
ALIASES = "aliases.json"
HISTORY = "history.jsonl"
LOCK = ".lock"
STAGING = ".staging"
PRODUCTION = "production"
STAGING_ALIAS = "staging"
PROMOTE, ROLLBACK = "promote", "rollback"
PAUSE_ENV = "ML_CICD_REGISTRY_TEST_PAUSE"  # test hook: seconds to sleep, locked, before publishing
ALIAS_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
VERSION_REF = re.compile(r"v?([0-9]+)")


@dataclass(frozen=True)
class Registered:
    """The outcome of ``register``: the version and whether this call created it."""

    version: int
    created: bool
    alias_moved: str | None = None


class Registry:
    """A directory registry rooted at ``root``; nothing is created until the first write."""

    def __init__(self, root: Path) -> None:
        """Point at ``root`` (it may not exist yet)."""
        self.root = Path(root)
        self.versions_dir = self.root / VERSIONS
        self.aliases_path = self.root / ALIASES
        self.history_path = self.root / HISTORY

    # -- reading --------------------------------------------------------------------------------

    def numbers(self) -> list[int]:
        """Return the published version numbers, ascending."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())

    def path(self, version: int) -> Path:
        """Return the directory of ``version``, or raise RegistryError when it does not exist."""
        directory = self.versions_dir / str(version)
        if not (directory / LINEAGE_FILE).is_file():
            known = ", ".join(str(n) for n in self.numbers()) or "none"
            raise RegistryError(
                f"unknown model version {version} in registry {self.root} (versions: {known})"
            )
        return directory

    def aliases(self) -> dict[str, int]:
        """Return the current ``alias -> version`` map."""
        try:
            data = json.loads(self.aliases_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.aliases_path}: unreadable alias file ({exc})") from None
        if not isinstance(data, dict):
            raise RegistryError(f"{self.aliases_path}: expected an object of alias -> version")
        return {str(k): int(v) for k, v in data.items()}

    def history(self, alias: str | None = None) -> list[dict[str, Any]]:
        """Return the alias moves, oldest first (only ``alias``'s when given)."""
        try:
            text = self.history_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RegistryError(f"{self.history_path}: unreadable history ({exc})") from None
        complete = text[: text.rfind("\n") + 1]  # an unterminated tail is a torn, never-applied move
        entries = []
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                raise RegistryError(f"{self.history_path}:{number}: malformed history line") from None
            if alias is None or entry.get("alias") == alias:
                entries.append(entry)
        return entries

    def lineage(self, version: int) -> dict[str, Any]:
        """Return ``version``'s lineage record."""
        return _read_json(self.path(version) / LINEAGE_FILE)

    def metadata(self, version: int) -> dict[str, Any]:
        """Return ``version``'s model metadata (as train wrote it)."""
        return _read_json(self.path(version) / METADATA_FILE)

    def metrics(self, version: int) -> dict[str, Any] | None:
        """Return ``version``'s metrics.json, or None when it was registered without one."""
        path = self.path(version) / METRICS_FILE
        return _read_json(path) if path.is_file() else None

    def resolve(self, ref: str) -> int:
        """Return the version that ``ref`` (``3``, ``v3`` or an alias) names; exit 2 when unknown."""
        match = VERSION_REF.fullmatch(ref)
        if match:
            version = int(match.group(1))
            self.path(version)
            return version
        aliases = self.aliases()
        if ref not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise RegistryError(f"unknown alias {ref!r} in registry {self.root} (aliases: {known})")
        return aliases[ref]

    def verify(self, version: int) -> Path:
        """Return ``version``'s directory after checking the model file against its recorded sha256."""
        directory = self.path(version)
        verify_artifact(directory, f"registry version {version}")
        return directory

    def aliases_of(self, version: int, aliases: dict[str, int] | None = None) -> list[str]:
        """Return the aliases pointing at ``version``, sorted."""
        current = self.aliases() if aliases is None else aliases
        return sorted(name for name, target in current.items() if target == version)

    def find_model(self, model_sha256: str) -> int | None:
        """Return the version holding a model with this sha256, or None."""
        for version in self.numbers():
            path = self.versions_dir / str(version) / LINEAGE_FILE
            if path.is_file() and _read_json(path).get("model_sha256") == model_sha256:
                return version
        return None

    # -- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock (released by the kernel if the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def register(
        self,
        model_dir: Path,
        *,
        gates: dict[str, Any] | None,
        metrics_path: Path | None,
        by: str,
        description: str,
        alias: str | None = None,
    ) -> Registered:
        """Publish the artefact in ``model_dir`` as the next version (or return the one holding it)."""
        model_dir = Path(model_dir)
        metadata = read_artifact_metadata(model_dir)
        verify_artifact(model_dir, "candidate")
        digest = str(metadata["model_sha256"])
        if alias is not None:
            check_alias_name(alias)
        existing = self.find_model(digest)
        if existing is not None:
            return Registered(existing, False, self._point_after_register(alias, existing, by))
        self.root.mkdir(parents=True, exist_ok=True)
        with _Stage(self.root / STAGING) as stage:
            model_file = str(metadata.get("model_file", MODEL_FILE))
            _copy(model_dir / model_file, stage / model_file)
            _copy(model_dir / METADATA_FILE, stage / METADATA_FILE)
            if sha256_file(stage / model_file) != digest:
                raise ModelError(f"{model_dir / model_file}: changed while being copied; register again")
            metrics = _read_json(metrics_path) if metrics_path is not None else None
            if metrics_path is not None:
                _copy(metrics_path, stage / METRICS_FILE)
            with self.locked():
                _clean_stale_stages(self.root / STAGING)
                existing = self.find_model(digest)
                if existing is not None:
                    return Registered(existing, False, self._point_locked(alias, existing, by))
                version = max(self._all_numbers(), default=0) + 1
                lineage = {
                    "version": version,
                    "model_sha256": digest,
                    "git_commit": metadata.get("git_commit"),
                    "data_sha256": metadata.get("data_sha256"),
                    "config_sha256": metadata.get("config_sha256"),
                    "parent": self._aliases_locked().get(PRODUCTION),
                    "gates": gates,
                    "source": str(model_dir.resolve()),
                    "registered_by": by,
                    "registered_at": _now(),
                }
                write_json_atomic(stage / LINEAGE_FILE, lineage)
                write_text_atomic(stage / CARD_FILE, model_card(metadata, lineage, metrics, description))
                for item in stage.iterdir():
                    item.chmod(0o444)  # immutable by intent: promotion moves aliases, never files
                if PAUSE_ENV in os.environ:
                    time.sleep(float(os.environ[PAUSE_ENV]))
                self.versions_dir.mkdir(exist_ok=True)
                os.rename(stage, self.versions_dir / str(version))  # fails rather than overwrite
                _fsync_dir(self.versions_dir)
                moved = self._point_locked(alias, version, by)
        return Registered(version, True, moved)

    def move(
        self,
        alias: str,
        version: int,
        *,
        action: str,
        by: str,
        approver: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | None:
        """Point ``alias`` at ``version`` and log it; return the history entry (None: already there)."""
        check_alias_name(alias)
        self.path(version)
        with self.locked():
            return self._move_locked(alias, version, action, by, approver, reason)

    def rollback(self, alias: str, *, by: str, reason: str | None = None) -> dict[str, Any]:
        """Move ``alias`` back to its previous target in the history; exit 2 when there is none."""
        if alias not in self.aliases():
            self.resolve(alias)  # raises: unknown alias
        with self.locked():
            current = self._aliases_locked().get(alias)
            stack = alias_stack(self.history(alias))
            while stack and stack[-1] == current:
                stack.pop()
            if current is None or not stack:
                raise RegistryError(
                    f"nothing to roll back to: alias {alias!r} has no earlier target in {self.history_path}"
                )
            target = stack[-1]
            self.verify(target)
            entry = self._move_locked(alias, target, ROLLBACK, by, None, reason)
        assert entry is not None  # target differs from current by construction
        return entry

    def _all_numbers(self) -> list[int]:
        """Return every numeric name under versions/ (published or not), so none is reused."""
        if not self.versions_dir.is_dir():
            return []
        return [int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit()]

    def _aliases_locked(self) -> dict[str, int]:
        """Return the aliases replayed from the history, repairing aliases.json if a move was cut short."""
        self._drop_torn_history_tail()
        derived: dict[str, int] = {}
        for entry in self.history():
            derived[str(entry["alias"])] = int(entry["to"])
        if derived != self.aliases():
            write_json_atomic(self.aliases_path, derived)
        return derived

    def _drop_torn_history_tail(self) -> None:
        if not self.history_path.is_file():
            return
        data = self.history_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.history_path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def _move_locked(
        self, alias: str, version: int, action: str, by: str, approver: str | None, reason: str | None
    ) -> dict[str, Any] | None:
        current = self._aliases_locked()
        if current.get(alias) == version:
            return None
        entry = {
            "alias": alias,
            "from": current.get(alias),
            "to": version,
            "action": action,
            "by": by,
            "approver": approver,
            "reason": reason,
            "at": _now(),
        }
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.history_path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        current[alias] = version
        write_json_atomic(self.aliases_path, current)
        return entry

    def _point_locked(self, alias: str | None, version: int, by: str) -> str | None:
        if alias is None:
            return None
        entry = self._move_locked(alias, version, PROMOTE, by, None, "registered")
        return alias if entry is not None else None

    def _point_after_register(self, alias: str | None, version: int, by: str) -> str | None:
        if alias is None:
            return None
        with self.locked():
            return self._point_locked(alias, version, by)


# ---------------------------------------------------------------------------------------------
# Pure helpers: history replay, gate checks, the model card.


def alias_stack(entries: Sequence[dict[str, Any]]) -> list[int]:
    """Replay one alias's history into a stack: a move pushes its target, a rollback pops back to it."""
    stack: list[int] = []
    for entry in entries:
        target = int(entry["to"])
        if entry.get("action") == ROLLBACK:
            while stack and stack[-1] != target:
                stack.pop()
            if not stack:
                stack.append(target)
        else:
            stack.append(target)
    return stack


def check_alias_name(alias: str) -> None:
    """Raise RegistryError unless ``alias`` is a lower-case name that cannot be read as a version."""
    if not ALIAS_NAME.fullmatch(alias) or VERSION_REF.fullmatch(alias):
        raise RegistryError(
            f"bad alias name {alias!r}: expected lower-case letters, digits, '-' or '_', starting with "
            "a letter and not of the form v<number>"
        )


def production_blockers(version: int, lineage: dict[str, Any], approver: str | None) -> list[str]:
    """Return why ``version`` may not become production (empty: it may)."""
    problems = []
    if not approver:
        problems.append("it needs an approval: add --approve or --approver NAME")
    gates = lineage.get("gates")
    if not isinstance(gates, dict):
        problems.append(f"v{version} has no gate record (register it with --gates out/gates.json)")
    elif not gates.get("passed"):
        failed = [str(g.get("name")) for g in gates.get("results", []) if g.get("status") == "failed"]
        problems.append(f"v{version} failed its gates ({', '.join(failed) or 'passed is false'})")
    return problems


def gate_record(path: Path) -> dict[str, Any]:
    """Read a ``gates.json`` into the record kept in lineage.json."""
    data = _read_json(path, error=DataError)
    if not isinstance(data.get("passed"), bool) or not isinstance(data.get("gates"), list):
        raise DataError(f"{path}: not a gates.json (expected 'passed' true/false and a 'gates' list)")
    keep = ("name", "status", "required", "observed", "threshold", "message")
    results = [{k: g.get(k) for k in keep} for g in data["gates"] if isinstance(g, dict)]
    return {"passed": data["passed"], "file": str(path), "results": results}


def overall_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Return the overall metric values of a metrics.json (empty when unknown)."""
    if not metrics:
        return {}
    overall = metrics.get("metrics", metrics.get("overall"))
    if not isinstance(overall, dict):
        return {}
    return {k: v for k, v in overall.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def slice_rows(metrics: dict[str, Any] | None) -> list[tuple[str, Any, dict[str, Any]]]:
    """Return ``(column=value, rows, metrics)`` for each slice of a metrics.json."""
    slices = (metrics or {}).get("slices")
    found: list[tuple[str, Any, dict[str, Any]]] = []
    if not isinstance(slices, dict):
        return found
    for column, groups in slices.items():
        if not isinstance(groups, dict):
            continue
        for value, entry in groups.items():
            if not isinstance(entry, dict):
                continue
            numbers = entry.get("metrics", entry)
            values = {
                k: v
                for k, v in (numbers.items() if isinstance(numbers, dict) else ())
                if k != "rows" and (v is None or (isinstance(v, int | float) and not isinstance(v, bool)))
            }
            found.append((f"{column}={value}", entry.get("rows"), values))
    return found


def model_card(
    metadata: dict[str, Any], lineage: dict[str, Any], metrics: dict[str, Any] | None, description: str
) -> str:
    """Return MODEL_CARD.md for a version: use, data, metrics overall and per slice, gates, limits."""
    version = lineage.get("version")
    task = metadata.get("task", "?")
    target = metadata.get("target", "?")
    features = [f for f in metadata.get("features", []) if isinstance(f, dict)]
    train_rows, holdout_rows = metadata.get("train_rows"), metadata.get("holdout_rows")
    lines = [
        f"# Model card: {target} ({task}), registry version {version}",
        "",
        "## Intended use",
        "",
        description.strip() or "Not stated: set `description` in the pipeline config.",
        "",
        "## Model",
        "",
        *_md_table(
            ("field", "value"),
            [
                ("kind", metadata.get("kind")),
                ("parameters", json.dumps(metadata.get("params") or {}, sort_keys=True)),
                ("scikit-learn", metadata.get("sklearn_version")),
                ("python", metadata.get("python_version")),
                ("trained at", metadata.get("created_at")),
                ("model sha256", metadata.get("model_sha256")),
            ],
        ),
        "",
        "## Data",
        "",
        f"- rows: {_fmt(train_rows)} for training, {_fmt(holdout_rows)} held out for evaluation",
        f"- target: `{target}`"
        + (
            f", labels {metadata.get('labels')}, positive label {metadata.get('positive_label')!r}"
            if task == "classification"
            else ""
        ),
        f"- {len(features)} features; ids dropped: {', '.join(metadata.get('id_columns') or []) or 'none'}",
        f"- data sha256: {metadata.get('data_sha256')}",
        "",
        *_md_table(
            ("feature", "type", "expected values", "nullable"),
            [
                (f.get("name"), f.get("type"), _expected(f), "yes" if f.get("nullable") else "no")
                for f in features
            ],
        ),
        "",
        "## Metrics",
        "",
    ]
    overall = overall_metrics(metrics)
    if overall:
        lines += _md_table(("metric", "held-out value"), sorted(overall.items()))
    else:
        lines.append("No metrics.json was registered with this version.")
    slices = slice_rows(metrics)
    if slices:
        names = sorted({k for _, _, values in slices for k in values})
        lines += ["", "### Per slice", ""]
        lines += _md_table(
            ("slice", "rows", *names),
            [(key, rows, *(values.get(n) for n in names)) for key, rows, values in slices],
        )
    lines += ["", "## Gates", ""]
    gates = lineage.get("gates")
    if isinstance(gates, dict):
        lines.append(f"Overall: **{'passed' if gates.get('passed') else 'FAILED'}**.")
        lines.append("")
        lines += _md_table(
            ("gate", "status", "required", "message"),
            [
                (g.get("name"), g.get("status"), "yes" if g.get("required") else "no", g.get("message"))
                for g in gates.get("results", [])
            ],
        )
    else:
        lines.append("No gate record: this version cannot be promoted to production.")
    lines += [
        "",
        "## Lineage",
        "",
        *_md_table(
            ("field", "value"),
            [
                ("git commit", lineage.get("git_commit") or "unknown"),
                ("config sha256", lineage.get("config_sha256")),
                ("parent (production when registered)", _vname(lineage.get("parent"))),
                ("registered by", lineage.get("registered_by")),
                ("registered at", lineage.get("registered_at")),
            ],
        ),
        "",
        "## Limitations",
        "",
        f"- Quality was measured on {_fmt(holdout_rows)} held-out rows of the training table only; it says "
        "nothing about data from another period, market or population.",
        "- Inputs outside the expected values above (new categories, out-of-range numbers) were never "
        "seen in training; unknown categories are ignored by the encoder, so predictions for them fall "
        "back on the other features. Check drift against the profile in metadata.json first.",
        "- Slice figures on few rows are noisy; slices not listed were not evaluated.",
    ]
    if task == "classification":
        lines.append("- Predictions use the estimator's default decision rule; no threshold was tuned.")
    if isinstance(gates, dict) and not gates.get("passed"):
        lines.append("- This version failed required gates and must not serve production traffic.")
    return "\n".join(str(line) for line in lines) + "\n"


def _expected(feature: dict[str, Any]) -> str:
    if feature.get("allowed") is not None:
        return ", ".join(str(v) for v in feature["allowed"])
    low, high = feature.get("min"), feature.get("max")
    if low is None and high is None:
        return "any"
    return f"{_fmt(low) if low is not None else '-inf'} .. {_fmt(high) if high is not None else 'inf'}"


# ---------------------------------------------------------------------------------------------
# Files: verification, staging, copying.


def read_artifact_metadata(directory: Path) -> dict[str, Any]:
    """Return an artefact's metadata.json, or raise ModelError naming the directory."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a model artefact (no {METADATA_FILE})")
    data = _read_json(path, error=ModelError)
    if not isinstance(data.get("model_sha256"), str):
        raise ModelError(f"{path}: metadata has no model_sha256")
    return data


def verify_artifact(directory: Path, what: str) -> dict[str, Any]:
    """Check the model file in ``directory`` against the sha256 in its metadata; return the metadata."""
    metadata = read_artifact_metadata(directory)
    model_path = Path(directory) / str(metadata.get("model_file", MODEL_FILE))
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file missing ({what})")
    actual = sha256_file(model_path)
    if actual != metadata["model_sha256"]:
        raise ModelError(
            f"{model_path}: sha256 {actual[:12]}... does not match metadata {metadata['model_sha256'][:12]}... "
            f"({what}); refusing a tampered or corrupt model"
        )
    return metadata


def production_model_dir(registry_path: Path) -> Path | None:
    """Return the verified directory of the version ``production`` points at, or None when unset."""
    registry = Registry(registry_path)
    version = registry.aliases().get(PRODUCTION)
    return None if version is None else registry.verify(version)


def version_of(model_dir: Path) -> int | None:
    """Return the registry version of an artefact directory (a version or an export), or None."""
    path = Path(model_dir) / LINEAGE_FILE
    if not path.is_file():
        return None
    version = _read_json(path).get("version")
    return version if isinstance(version, int) else None


def export(registry: Registry, version: int, target: Path) -> Path:
    """Copy ``version``'s artefact (model, metadata, lineage) to ``target`` atomically, verified."""
    source = registry.verify(version)
    metadata = read_artifact_metadata(source)
    names = (str(metadata.get("model_file", MODEL_FILE)), METADATA_FILE, LINEAGE_FILE)
    with staged_directory(Path(target)) as stage:
        for name in names:
            _copy(source / name, stage / name)
            (stage / name).chmod(0o644)
        verify_artifact(stage, f"export of version {version}")
    return Path(target)


class _Stage:
    """A temp directory under ``.staging/`` owned by this process through a held lock file.

    A stage whose lock file can be locked by someone else belongs to a dead writer and
    is removed by the next registration (see ``_clean_stale_stages``).
    """

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.handle: int | None = None
        self.lock_path: Path | None = None
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stage-", suffix=".lock", dir=self.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.handle, self.lock_path = fd, Path(name)
        self.path = self.lock_path.with_suffix("")
        self.path.mkdir()
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        if self.lock_path is not None:
            self.lock_path.unlink(missing_ok=True)
        if self.handle is not None:
            os.close(self.handle)


def _clean_stale_stages(parent: Path) -> None:
    """Remove stages left by killed writers (their lock files are no longer held)."""
    if not parent.is_dir():
        return
    for lock in parent.glob("stage-*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)


def _copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise ModelError(f"{source}: file missing")
    shutil.copyfile(source, target)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path, error: type[Exception] = RegistryError) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object")
    return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def actor(by: str | None) -> str:
    """Return who acts: ``--by``, else $GITHUB_ACTOR, else $USER, else ``unknown``."""
    return by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"


# ---------------------------------------------------------------------------------------------
# Tables.


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _gates_word(passed: Any) -> str:
    return "-" if passed is None else ("passed" if passed else "failed")


def _vname(version: Any) -> str:
    return "-" if version is None else f"v{version}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(headers)] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return _fmt(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _headline_metric(task: str | None, metrics: dict[str, Any]) -> str | None:
    from pipeline.metrics import DEFAULT_METRIC  # imports scikit-learn: only where a metric is shown

    name = DEFAULT_METRIC.get(str(task))
    return name if name in metrics else (sorted(metrics)[0] if metrics else None)


# ---------------------------------------------------------------------------------------------
# CLI.


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``registry`` subcommands and their options."""
    parser.add_argument(
        "--registry", default=None, help="registry directory (default: registry.path in --config)"
    )
    sub = parser.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_, description=help_)
        command.add_argument("--config", default=argparse.SUPPRESS, help="pipeline config file")
        command.add_argument(
            "--registry",
            default=argparse.SUPPRESS,
            help="registry directory (default: registry.path in --config)",
        )
        return command

    register = add("register", "register a model artefact directory as a new immutable version")
    register.add_argument(
        "model_dir", help="artefact directory (model.joblib + metadata.json), e.g. out/model"
    )
    register.add_argument("--gates", help="gates.json of this model (needed later for production)")
    register.add_argument("--metrics", help="metrics.json (default: metrics.json beside MODEL_DIR, if any)")
    register.add_argument("--alias", help="point this alias at the version (e.g. staging; not production)")
    register.add_argument("--by", help="who registers (default $GITHUB_ACTOR, else $USER)")
    register.add_argument("--json", action="store_true", help="print the result as JSON")

    listing = add("list", "list versions with their metric, gates and aliases")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = add("show", "show one version (number, v<number> or alias); verifies its model file")
    show.add_argument("ref", metavar="VERSION|ALIAS")
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")

    promote = add("promote", "point an alias at a version; production needs an approval and passed gates")
    promote.add_argument("ref", metavar="VERSION")
    promote.add_argument(
        "--to", required=True, metavar="ALIAS", help="alias to move (staging, production, ...)"
    )
    promote.add_argument("--approve", action="store_true", help="approve as the acting user (--by)")
    promote.add_argument("--approver", help="name of the person approving")
    promote.add_argument("--reason", help="why (recorded in the history)")
    promote.add_argument("--by", help="who moves the alias (default $GITHUB_ACTOR, else $USER)")

    rollback = add("rollback", "move an alias back to its previous target in the history")
    rollback.add_argument("alias", metavar="ALIAS")
    rollback.add_argument("--reason", help="why (recorded in the history)")
    rollback.add_argument("--by", help="who rolls back (default $GITHUB_ACTOR, else $USER)")

    history = add("history", "show every alias move, oldest first")
    history.add_argument("alias", nargs="?", metavar="ALIAS", help="only this alias")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")

    diff = add("diff", "compare two versions: metrics and lineage")
    diff.add_argument("a", metavar="A", help="version or alias")
    diff.add_argument("b", metavar="B", help="version or alias")
    diff.add_argument("--json", action="store_true", help="print JSON instead of a table")

    export_ = add("export", "copy a version's artefact directory to DIR (atomic, verified)")
    export_.add_argument("ref", metavar="VERSION|ALIAS")
    export_.add_argument("--to", required=True, metavar="DIR", help="target directory (replaced)")
    export_.add_argument(
        "--missing-ok", action="store_true", help="an unset alias removes DIR and exits 0 instead of 2"
    )


def run(args: argparse.Namespace) -> int:
    """Run one registry subcommand."""
    handlers = {
        "register": _cmd_register,
        "list": _cmd_list,
        "show": _cmd_show,
        "promote": _cmd_promote,
        "rollback": _cmd_rollback,
        "history": _cmd_history,
        "diff": _cmd_diff,
        "export": _cmd_export,
    }
    return handlers[args.registry_command](args)


def _open(args: argparse.Namespace) -> Registry:
    if args.registry:
        return Registry(Path(args.registry))
    return Registry(Path(load_config(args.config).registry.path))


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


def _cmd_register(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = Registry(Path(args.registry or config.registry.path))
    model_dir = Path(args.model_dir)
    gates = gate_record(Path(args.gates)) if args.gates else None
    metrics_path: Path | None = Path(args.metrics) if args.metrics else model_dir.parent / METRICS_FILE
    if args.metrics and not Path(args.metrics).is_file():
        raise DataError(f"{args.metrics}: metrics file not found")
    if metrics_path is not None and not metrics_path.is_file():
        metrics_path = None  # no metrics.json beside the model: the card says so
    if args.alias == PRODUCTION:
        raise RegistryError("register cannot set production: use `registry promote VERSION --to production`")
    result = registry.register(
        model_dir,
        gates=gates,
        metrics_path=metrics_path,
        by=actor(args.by),
        description=config.description,
        alias=args.alias,
    )
    if args.json:
        _print_json(
            {
                "version": result.version,
                "created": result.created,
                "alias": args.alias,
                "path": str(registry.path(result.version)),
            }
        )
    elif result.created:
        print(f"registered {model_dir} as version {result.version} in {registry.root}")
    else:
        print(
            f"already registered: {model_dir} is version {result.version} (same model sha256); nothing copied"
        )
    if args.alias and not args.json:
        state = "now points" if result.alias_moved else "already points"
        print(f"{args.alias} {state} at v{result.version}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    registry = _open(args)
    aliases = registry.aliases()
    rows: list[dict[str, Any]] = []
    for version in registry.numbers():
        lineage = registry.lineage(version)
        metadata = registry.metadata(version)
        metrics = overall_metrics(registry.metrics(version))
        gates = lineage.get("gates")
        rows.append(
            {
                "version": version,
                "registered_at": lineage.get("registered_at"),
                "registered_by": lineage.get("registered_by"),
                "task": metadata.get("task"),
                "kind": metadata.get("kind"),
                "metrics": metrics,
                "gates_passed": gates.get("passed") if isinstance(gates, dict) else None,
                "aliases": registry.aliases_of(version, aliases),
            }
        )
    if args.json:
        _print_json({"registry": str(registry.root), "aliases": aliases, "versions": rows})
        return 0
    if not rows:
        print(f"registry {registry.root} has no versions")
        return 0
    table = []
    for row in rows:
        name = _headline_metric(row["task"], row["metrics"])
        metric = f"{name}={_fmt(row['metrics'][name])}" if name else "-"
        gates = _gates_word(row["gates_passed"])
        table.append(
            (
                row["version"],
                row["registered_at"],
                row["kind"],
                metric,
                gates,
                ", ".join(row["aliases"]) or "-",
            )
        )
    print(_table(("version", "registered", "kind", "metric", "gates", "aliases"), table))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    registry = _open(args)
    version = registry.resolve(args.ref)
    directory = registry.verify(version)
    lineage = registry.lineage(version)
    metadata = registry.metadata(version)
    metrics = registry.metrics(version)
    aliases = registry.aliases_of(version)
    if args.json:
        _print_json(
            {
                "version": version,
                "path": str(directory),
                "aliases": aliases,
                "verified": True,
                "lineage": lineage,
                "metadata": metadata,
                "metrics": metrics,
            }
        )
        return 0
    gates = lineage.get("gates")
    fields = [
        ("version", f"v{version}"),
        ("aliases", ", ".join(aliases) or "-"),
        ("path", directory),
        ("task / target", f"{metadata.get('task')} / {metadata.get('target')}"),
        ("kind", metadata.get("kind")),
        ("trained at", metadata.get("created_at")),
        ("registered", f"{lineage.get('registered_at')} by {lineage.get('registered_by')}"),
        ("model sha256", f"{lineage.get('model_sha256')} (verified)"),
        ("data sha256", lineage.get("data_sha256")),
        ("config sha256", lineage.get("config_sha256")),
        ("git commit", lineage.get("git_commit") or "unknown"),
        ("parent", _vname(lineage.get("parent"))),
        ("gates", _gates_word(gates.get("passed") if isinstance(gates, dict) else None)),
    ]
    print(_table(("field", "value"), fields))
    overall = overall_metrics(metrics)
    if overall:
        print()
        print(_table(("metric", "value"), sorted(overall.items())))
    if isinstance(gates, dict):
        print()
        results = [(g.get("name"), g.get("status"), g.get("message")) for g in gates.get("results", [])]
        print(_table(("gate", "status", "message"), results))
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    registry = _open(args)
    check_alias_name(args.to)
    version = registry.resolve(args.ref)
    by = actor(args.by)
    approver = args.approver or (by if args.approve else None)
    if args.to == PRODUCTION:
        problems = production_blockers(version, registry.lineage(version), approver)
        if problems:
            raise CheckFailed(f"refusing to promote v{version} to production: " + "; ".join(problems))
    registry.verify(version)
    entry = registry.move(args.to, version, action=PROMOTE, by=by, approver=approver, reason=args.reason)
    if entry is None:
        print(f"{args.to} already points at v{version}; nothing to do")
    else:
        who = f", approved by {approver}" if approver else ""
        print(f"{args.to}: {_vname(entry['from'])} -> v{version} (promote by {by}{who})")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    registry = _open(args)
    entry = registry.rollback(args.alias, by=actor(args.by), reason=args.reason)
    print(f"{args.alias}: {_vname(entry['from'])} -> {_vname(entry['to'])} (rollback by {entry['by']})")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    registry = _open(args)
    entries = registry.history(args.alias)
    if args.alias and not entries and args.alias not in registry.aliases():
        registry.resolve(args.alias)  # raises: unknown alias
    if args.json:
        _print_json(entries)
        return 0
    if not entries:
        print(f"registry {registry.root} has no alias moves")
        return 0
    rows = [
        (
            e.get("at"),
            e.get("alias"),
            e.get("action"),
            _vname(e.get("from")),
            _vname(e.get("to")),
            e.get("by"),
            e.get("approver"),
            e.get("reason"),
        )
        for e in entries
    ]
    print(_table(("at", "alias", "action", "from", "to", "by", "approver", "reason"), rows))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from pipeline.metrics import DIRECTION  # imports scikit-learn; diff is not on a hot path

    registry = _open(args)
    a, b = registry.resolve(args.a), registry.resolve(args.b)
    metrics_a, metrics_b = overall_metrics(registry.metrics(a)), overall_metrics(registry.metrics(b))
    metric_rows: list[dict[str, Any]] = []
    for name in sorted(set(metrics_a) | set(metrics_b)):
        va, vb = metrics_a.get(name), metrics_b.get(name)
        delta = vb - va if va is not None and vb is not None else None
        better = "-"
        if delta is not None and name in DIRECTION and delta != 0:
            b_wins = (delta > 0) == (DIRECTION[name] == "higher")
            better = f"v{b}" if b_wins else f"v{a}"
        metric_rows.append({"metric": name, "a": va, "b": vb, "delta": delta, "better": better})
    lineage_a, lineage_b = _diff_fields(registry, a), _diff_fields(registry, b)
    changed = [
        {"field": k, "a": lineage_a.get(k), "b": lineage_b.get(k)}
        for k in lineage_a
        if lineage_a.get(k) != lineage_b.get(k)
    ]
    same = [k for k in lineage_a if lineage_a.get(k) == lineage_b.get(k)]
    if args.json:
        _print_json(
            {"a": a, "b": b, "metrics": metric_rows, "lineage_changed": changed, "lineage_same": same}
        )
        return 0
    if metric_rows:
        rows = [(r["metric"], r["a"], r["b"], _signed(r["delta"]), r["better"]) for r in metric_rows]
        print(_table(("metric", f"v{a}", f"v{b}", "delta", "better"), rows))
    else:
        print("no metrics recorded for either version")
    print()
    if changed:
        print(_table(("lineage", f"v{a}", f"v{b}"), [(r["field"], r["a"], r["b"]) for r in changed]))
    else:
        print("lineage: no differences")
    if same:
        print(f"same in both: {', '.join(same)}")
    return 0


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _diff_fields(registry: Registry, version: int) -> dict[str, Any]:
    lineage, metadata = registry.lineage(version), registry.metadata(version)
    gates = lineage.get("gates")
    return {
        "model_sha256": _short(lineage.get("model_sha256")),
        "git_commit": _short(lineage.get("git_commit")),
        "data_sha256": _short(lineage.get("data_sha256")),
        "config_sha256": _short(lineage.get("config_sha256")),
        "parent": _vname(lineage.get("parent")),
        "gates": gates.get("passed") if isinstance(gates, dict) else None,
        "kind": metadata.get("kind"),
        "params": json.dumps(metadata.get("params") or {}, sort_keys=True),
        "features": len(metadata.get("features") or []),
        "train_rows": metadata.get("train_rows"),
        "holdout_rows": metadata.get("holdout_rows"),
        "sklearn_version": metadata.get("sklearn_version"),
        "trained_at": metadata.get("created_at"),
        "registered_by": lineage.get("registered_by"),
        "registered_at": lineage.get("registered_at"),
    }


def _short(value: Any) -> Any:
    return value[:12] if isinstance(value, str) else value


def _cmd_export(args: argparse.Namespace) -> int:
    registry = _open(args)
    target = Path(args.to)
    is_alias = VERSION_REF.fullmatch(args.ref) is None
    if args.missing_ok and is_alias and args.ref not in registry.aliases():
        if target.exists():
            shutil.rmtree(target)
        print(f"no {args.ref} alias: nothing exported")
        return 0
    version = registry.resolve(args.ref)
    export(registry, version, target)
    print(f"exported v{version} ({args.ref}) to {target}")
    return 0
