"""Trust boundaries, attacked as a probe would: no code runs from an artefact someone could change.

An attacker who can write a registry, an ``out/`` or a champion image replaces ``model.joblib`` with
a pickle that runs a payload (it creates a marker file) and rewrites the hash in ``metadata.json``.
Nothing may run it: ``registry show`` (which prints the file's own hash), ``registry export``,
``gate`` (candidate or champion), ``serve`` and the serving image's entry point. A champion this
key cannot speak for is scored through its ONNX form instead, and says so. Gate records belong to
their model; artefact file names stay inside their directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest

from pipeline.cli import main
from tests.conftest import REPO, Project, copy_of

MARKER_ENV = "ML_CICD_TEST_MARKER"


class Payload:
    """Unpickling this creates the file named by ``$ML_CICD_TEST_MARKER``: proof that code ran."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ('touch "$ML_CICD_TEST_MARKER"',))


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "payload-ran"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


def swap_pickle(model_dir: Path) -> None:
    """Replace the model with the payload and rewrite its recorded hash, as an attacker with write access would."""
    path = model_dir / "model.joblib"
    path.chmod(0o644)
    joblib.dump(Payload(), path)
    metadata_path = model_dir / "metadata.json"
    metadata_path.chmod(0o644)
    metadata = json.loads(metadata_path.read_text())
    metadata["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    metadata_path.write_text(json.dumps(metadata))


def cli(*argv: str) -> tuple[int, str]:
    """Run ``python -m pipeline`` in a subprocess (as a user would); return its exit code and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *argv], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stderr


@pytest.fixture
def project(trained: dict[str, Project], tmp_path: Path) -> Project:
    """A trained, evaluated and validated project of its own, with an empty registry."""
    return copy_of(trained["good"], tmp_path / "project")


def test_a_swapped_pickle_never_runs_through_show_export_gate_or_serve(
    project: Project, marker: Path, tmp_path: Path
) -> None:
    # given a registered version whose pickle an attacker swapped in the registry, hash rewritten
    config = str(project.config)
    assert main(["registry", "register", str(project.out / "model"), "--config", config]) == 0
    version = project.root / "registry" / "versions" / "1"
    swap_pickle(version)

    # when the version is shown: the file's own hash is printed, and its signature is said not to hold
    code, _ = cli("registry", "show", "1", "--config", config)
    shown = subprocess.run(
        [sys.executable, "-m", "pipeline", "registry", "show", "1", "--config", config],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    own = hashlib.sha256((version / "model.joblib").read_bytes()).hexdigest()
    assert code == 0 and own in shown and "NOT checked" in shown and "not the file that was signed" in shown

    # when it is exported and gated against as the champion
    champion = tmp_path / "champion"
    assert cli("registry", "export", "1", "--to", str(champion), "--config", config)[0] == 0
    code, err = cli("gate", "--config", config, "--out", str(project.out), "--champion", str(champion))
    # then the gate refuses the changed champion in one line (exit 2)
    assert code == 2 and err.count("\n") == 1 and "refusing a tampered artefact" in err, err

    # when the swapped artefact is the candidate itself, or is served (host CLI and the image's entry point)
    candidate = project.out / "model"
    shutil.rmtree(candidate)
    shutil.copytree(champion, candidate)
    code, err = cli(
        "gate", "--config", config, "--out", str(project.out), "--champion", str(tmp_path / "none")
    )
    assert code == 2 and "refusing a tampered artefact" in err, err
    served = cli("serve", "--model", str(candidate), "--runtime", "sklearn", "--port", "0")
    assert served[0] == 2 and "refusing a tampered artefact" in served[1], served
    entry = subprocess.run(
        [sys.executable, "-m", "model", "--model-dir", str(candidate), "--runtime", "sklearn", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert entry.returncode == 2 and "refusing a tampered artefact" in entry.stderr, entry.stderr
    # and no image is built from it (the image's server trusts the model it was built with)
    built = cli("image", "build", "--out", str(project.out))
    assert built[0] == 2 and "refusing a tampered artefact" in built[1] and built[1].count("\n") == 1, built

    # then the payload never ran
    assert not marker.exists(), "the swapped pickle was unpickled"


def test_a_champion_this_key_cannot_speak_for_is_scored_from_its_onnx_form(
    project: Project, marker: Path, tmp_path: Path
) -> None:
    # given a champion signed by another key (CI's), whose pickle carries the payload
    champion = tmp_path / "champion"
    shutil.copytree(project.out / "model", champion)
    swap_pickle(champion)
    other_key = {"ML_CICD_SIGNING_KEY": "a-key-this-machine-does-not-hold-0123456789"}
    resigned = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tests.conftest import resign; resign(__import__('pathlib').Path(sys.argv[1]))",
            str(champion),
        ],
        cwd=REPO,
        env=os.environ | other_key,
        check=False,
        capture_output=True,
        text=True,
    )
    assert resigned.returncode == 0, resigned.stderr
    # when the gate compares against it with this machine's key
    code, err = cli(
        "gate", "--config", str(project.config), "--out", str(project.out), "--champion", str(champion)
    )
    # then no code from it ran, it was compared all the same, and the gate says how
    assert not marker.exists(), "the champion's pickle was unpickled"
    assert code == 0, err
    gate = next(
        g
        for g in json.loads((project.out / "gates.json").read_text())["gates"]
        if g["name"] == "no_regression"
    )
    assert gate["status"] == "passed", gate
    assert "the champion was scored from its ONNX form, not its pickle (signed with key" in gate["message"], (
        gate
    )


def test_a_champion_of_another_key_without_an_onnx_form_is_refused_naming_the_key(
    make_project: Any, tmp_path: Path, marker: Path
) -> None:
    # given a candidate and a champion that cannot be compiled (HistGradientBoosting), signed by another key
    def unconvertible(raw: dict[str, Any]) -> None:
        raw["model"] = {"kind": "hist_gradient_boosting", "params": {"max_iter": 20}}

    project = make_project(config=unconvertible)
    for step in ("validate", "train", "evaluate"):
        assert main(project.cli(step)) == 0, step
    champion = tmp_path / "champion"
    shutil.copytree(project.out / "model", champion)
    swap_pickle(champion)
    env = os.environ | {"ML_CICD_SIGNING_KEY": "yet-another-key-that-is-long-enough"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from tests.conftest import resign; resign(pathlib.Path(sys.argv[1]))",
            str(champion),
        ],
        cwd=REPO,
        env=env,
        check=True,
    )
    # when the gate runs against it
    code, err = cli(
        "gate", "--config", str(project.config), "--out", str(project.out), "--champion", str(champion)
    )
    # then it is refused in one line naming why, and nothing ran
    assert code == 2 and err.count("\n") == 1, err
    assert "signed with key" in err and "no ONNX form to score safely" in err, err
    assert not marker.exists()


def test_register_and_promote_refuse_a_gate_record_of_another_model(
    project: Project, trained: dict[str, Project], tmp_path: Path
) -> None:
    # given the gates.json written for another model (the weak one)
    other = trained["weak"].out / "gates.json"
    if not other.is_file():
        assert main(trained["weak"].cli("gate", "--champion", str(tmp_path / "none"))) in (0, 1)
    # when it is passed to register with this model
    code, err = cli(
        "registry",
        "register",
        str(project.out / "model"),
        "--gates",
        str(other),
        "--config",
        str(project.config),
    )
    # then the registration is refused in one line, and nothing was registered
    assert code == 2 and "judged model" in err and "not this artefact's" in err and err.count("\n") == 1, err
    assert not (project.root / "registry" / "versions").exists()


def test_promote_refuses_a_lineage_whose_gate_record_judged_another_model() -> None:
    from model.records import GateRecord, Lineage
    from pipeline.core.promotion import production_blockers

    record = GateRecord(passed=True, file="gates.json", model_sha256="b" * 64, results=())
    lineage = Lineage(1, "a" * 64, None, "d" * 64, "c" * 64, None, record, "src", "me", "now")
    problems = production_blockers(1, lineage, "alice")
    assert problems == ["v1's gate record judged model bbbbbbbbbbbb, not its own (aaaaaaaaaaaa)"], problems


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model_file", "../../outside.joblib"),
        ("compiled.file", "../../x.onnx"),
        ("compiled.file", "sub/x.onnx"),
    ],
)
def test_artefact_file_names_that_are_paths_are_refused_and_nothing_is_written_outside(
    project: Project, tmp_path: Path, key: str, value: str
) -> None:
    # given an artefact whose metadata names a file outside its directory
    model = project.out / "model"
    metadata = json.loads((model / "metadata.json").read_text())
    section, _, name = key.rpartition(".")
    (metadata[section] if section else metadata)[name] = value
    (model / "metadata.json").write_text(json.dumps(metadata))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # when it is registered and (an earlier export) exported
    code, err = cli("registry", "register", str(model), "--config", str(project.config))
    # then each refuses in one line naming the key, exit 2, and nothing new appears outside
    assert code == 2 and err.count("\n") == 1 and "is not a plain file name" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_missing_ok_never_deletes_what_it_did_not_create(project: Project, tmp_path: Path) -> None:
    # given a directory of unrelated work and a registry without production
    target = tmp_path / "work"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    config = str(project.config)
    assert main(["registry", "register", str(project.out / "model"), "--config", config]) == 0
    # when a typo'd alias and the real one are exported there with --missing-ok
    typo = cli("registry", "export", "prodution", "--to", str(target), "--missing-ok", "--config", config)
    real = cli("registry", "export", "production", "--to", str(target), "--missing-ok", "--config", config)
    # then both refuse in one line (an unknown alias; a directory this command did not make) and it survives
    assert typo[0] == 2 and "unknown alias 'prodution'" in typo[1] and typo[1].count("\n") == 1, typo
    assert real[0] == 2 and "not a model exported by this command" in real[1], real
    assert (target / "notes.txt").read_text() == "mine"


def test_odd_registry_contents_give_one_line_not_a_traceback(project: Project) -> None:
    config = str(project.config)
    assert (
        main(["registry", "register", str(project.out / "model"), "--config", config, "--alias", "staging"])
        == 0
    )
    root = project.root / "registry"
    # a version directory with a non-ASCII digit in its name is not a version
    (root / "versions" / "²").mkdir()
    code, err = cli("registry", "list", "--config", config)
    assert code == 0 and "Traceback" not in err, err
    # a broken aliases.json (a view) does not matter: the history is the truth
    (root / "aliases.json").write_text('{"staging": "x"')
    code, err = cli("registry", "show", "staging", "--config", config)
    assert code == 0 and "Traceback" not in err, err
    # a malformed history line is one line naming the file and line, exit 2
    with (root / "history.jsonl").open("a") as handle:
        handle.write("[1, 2]\n")
    code, err = cli("registry", "list", "--config", config)
    assert code == 2 and err.count("\n") == 1 and "history.jsonl:2: malformed history line" in err, err


def test_the_session_key_lives_outside_every_artefact(project: Project) -> None:
    key_file = Path(os.environ["ML_CICD_SIGNING_KEY_FILE"])
    assert key_file.is_file() and key_file.stat().st_mode & 0o077 == 0, "the key file must be private"
    signature = json.loads((project.out / "model" / "signature.json").read_text())
    assert key_file.read_text().strip() not in json.dumps(signature)
    assert set(signature["files"]) == {"model.joblib", "metadata.json", "model.onnx"}
