"""Model registry: immutable versions, concurrent and killed writers, approvals, rollback, tampering."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.errors import ArtifactError
from pipeline.cli import main
from pipeline.io.registry import Registry, production_model_dir, version_of
from tests.conftest import Cli, Project, register

# ---------------------------------------------------------------------------------------------
# Registration


def test_register_publishes_a_complete_version_with_lineage_and_card(
    cli: Cli, registry: Path, artefacts: list[Path]
) -> None:
    # given a trained artefact with metrics.json and gates.json beside it
    model = artefacts[0]
    # when it is registered with the staging alias
    code, out, err = cli(
        "register", str(model), "--gates", str(model.parent / "gates.json"), "--alias", "staging"
    )
    # then version 1 holds the artefact byte for byte, its lineage and a model card
    assert code == 0, f"register failed: {err}"
    assert "version 1" in out, f"register did not print the version number: {out!r}"
    version = registry / "versions" / "1"
    assert (version / "metadata.json").read_bytes() == (model / "metadata.json").read_bytes(), (
        "metadata.json must stay byte-identical to what train wrote"
    )
    assert (version / "model.joblib").read_bytes() == (model / "model.joblib").read_bytes()
    lineage = json.loads((version / "lineage.json").read_text())
    metadata = json.loads((model / "metadata.json").read_text())
    assert lineage["version"] == 1 and lineage["model_sha256"] == metadata["model_sha256"]
    assert lineage["data_sha256"] == metadata["data_sha256"], "lineage lost the data hash"
    assert lineage["parent"] is None, "no production alias existed, so there is no parent"
    assert lineage["gates"]["passed"] is True, f"gate record missing: {lineage['gates']}"
    assert lineage["registered_by"], "lineage must say who registered the version"
    card = (version / "MODEL_CARD.md").read_text()
    for expected in ("Intended use", "retention", "roc_auc", "region=north", "metric:roc_auc", "Limitations"):
        assert expected in card, f"MODEL_CARD.md lacks {expected!r}:\n{card}"
    assert Registry(registry).aliases() == {"staging": 1}, "staging should point at the new version"
    assert version_of(version) == 1


def test_register_is_idempotent_for_the_same_model(cli: Cli, registry: Path, artefacts: list[Path]) -> None:
    # given a registered model
    first = register(cli, artefacts[0])
    # when the same artefact is registered again
    code, out, _ = cli("register", str(artefacts[0]))
    # then the existing version is returned and nothing new is created
    assert code == 0
    assert "already registered" in out and f"version {first}" in out, f"no idempotency notice: {out!r}"
    assert Registry(registry).numbers() == [1], "a duplicate version was created"


def test_register_refuses_a_tampered_candidate(
    cli: Cli, registry: Path, artefacts: list[Path], tmp_path: Path
) -> None:
    # given a copy of an artefact whose model file was changed after training
    import shutil

    copy = tmp_path / "copy" / "model"
    shutil.copytree(artefacts[1], copy)
    with (copy / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    # when it is registered
    code, _, err = cli("register", str(copy))
    # then registration is refused as bad input and nothing is published
    assert code == 2, f"expected exit 2 for a tampered candidate, got {code}"
    assert "sha256" in err and "tampered" in err, f"unclear error line: {err!r}"
    assert Registry(registry).numbers() == []


# ---------------------------------------------------------------------------------------------
# Reading: tampering, unknown names, export


def test_tampered_version_is_refused_with_exit_2(
    cli: Cli, registry: Path, artefacts: list[Path], tmp_path: Path
) -> None:
    # given a registered version promoted to production, whose model file is then modified
    register(cli, artefacts[0])
    assert cli("promote", "1", "--to", "production", "--approve")[0] == 0
    model_file = registry / "versions" / "1" / "model.joblib"
    model_file.chmod(0o644)
    with model_file.open("ab") as handle:
        handle.write(b"\0")
    # when it is shown, exported or resolved as the champion
    show = cli("show", "1")
    exported = cli("export", "production", "--to", str(tmp_path / "champion"))
    # then each refuses it with exit 2 and a line naming the problem
    for code, _, err in (show, exported):
        assert code == 2, f"tampered model accepted (exit {code})"
        assert err.startswith("error: ") and "sha256" in err and "tampered" in err, f"unclear error: {err!r}"
        assert len(err.strip().splitlines()) == 1, f"expected one line, got: {err!r}"
    assert not (tmp_path / "champion").exists(), "export wrote a directory for a tampered model"
    with pytest.raises(ArtifactError, match="tampered"):
        production_model_dir(registry)


@pytest.mark.parametrize(
    "args",
    [
        ("show", "99"),
        ("show", "nosuch"),
        ("promote", "99", "--to", "staging"),
        ("promote", "nosuch", "--to", "staging"),
        ("rollback", "nosuch"),
        ("history", "nosuch"),
        ("diff", "1", "v42"),
        ("export", "nosuch", "--to", "unused"),
        ("export", "7", "--to", "unused", "--missing-ok"),
    ],
)
def test_unknown_version_or_alias_exits_2(cli: Cli, artefacts: list[Path], args: tuple[str, ...]) -> None:
    # given a registry with one version
    register(cli, artefacts[0])
    # when a command names a version or alias that does not exist
    code, _, err = cli(*args)
    # then it exits 2 with one line naming it
    assert code == 2, f"{args}: expected exit 2, got {code}"
    assert "unknown" in err and args[1] in err, f"{args}: unclear error line: {err!r}"


def test_export_copies_the_verified_artefact_and_missing_ok_clears_a_stale_dir(
    cli: Cli, registry: Path, artefacts: list[Path], tmp_path: Path
) -> None:
    # given a stale champion directory (an earlier export) and a registry without a production alias
    target = tmp_path / "out" / "champion"
    register(cli, artefacts[0])
    assert cli("export", "1", "--to", str(target))[0] == 0
    # when production is exported with --missing-ok
    code, out, _ = cli("export", "production", "--to", str(target), "--missing-ok")
    # then the stale directory is gone and nothing else happens
    assert code == 0 and "no production alias: nothing exported" in out, out
    assert not target.exists(), "a stale champion survived an export of an unset alias"
    # and once production is set, export materialises that version
    cli("promote", "1", "--to", "production", "--approve")
    code, _, err = cli("export", "production", "--to", str(target), "--missing-ok")
    assert code == 0, err
    source = artefacts[0]
    for name in ("model.joblib", "metadata.json"):
        assert (target / name).read_bytes() == (source / name).read_bytes(), f"exported {name} differs"
    assert version_of(target) == 1, "the export should carry the version in lineage.json"


# ---------------------------------------------------------------------------------------------
# Aliases: promotion and rollback


def test_promotion_to_production_needs_approval_and_passed_gates(
    cli: Cli, registry: Path, artefacts: list[Path], failing_artefact: Path
) -> None:
    # given a passing version, a failing one and one registered without gates
    passing = register(cli, artefacts[0])
    failing = register(cli, failing_artefact)
    code, out, _ = cli("register", str(artefacts[1]), "--json")
    ungated = int(json.loads(out)["version"])
    # when production is requested without approval, or for versions without passed gates
    no_approval = cli("promote", str(passing), "--to", "production")
    failed_gates = cli("promote", str(failing), "--to", "production", "--approve")
    no_gates = cli("promote", str(ungated), "--to", "production", "--approver", "alice")
    # then each is refused as a failed check and production stays unset
    assert no_approval[0] == 1 and "approval" in no_approval[2], f"unapproved promotion: {no_approval}"
    assert failed_gates[0] == 1 and "failed its gates" in failed_gates[2], (
        f"failed gates promoted: {failed_gates}"
    )
    assert no_gates[0] == 1 and "no gate record" in no_gates[2], f"ungated version promoted: {no_gates}"
    assert "production" not in Registry(registry).aliases()
    # and staging needs no approval, production with an approver works and is logged
    assert cli("promote", str(ungated), "--to", "staging")[0] == 0
    code, _, err = cli("promote", str(passing), "--to", "production", "--approver", "alice", "--reason", "q3")
    assert code == 0, err
    assert Registry(registry).aliases()["production"] == passing
    last = Registry(registry).history("production")[-1]
    assert (last["approver"], last["reason"], last["action"]) == ("alice", "q3", "promote"), last


def test_rollback_walks_back_through_history_one_step_per_call(
    cli: Cli, registry: Path, artefacts: list[Path]
) -> None:
    # given production promoted through v1, v2 and v3
    versions = [register(cli, model) for model in artefacts[:3]]
    for version in versions:
        assert cli("promote", str(version), "--to", "production", "--approve")[0] == 0
    reg = Registry(registry)
    # when production is rolled back twice
    first = cli("rollback", "production")
    after_first = reg.aliases()["production"]
    second = cli("rollback", "production")
    after_second = reg.aliases()["production"]
    third = cli("rollback", "production")
    # then it goes to v2, then one further to v1, then there is nothing left
    assert first[0] == 0 and after_first == 2, f"first rollback went to v{after_first}: {first}"
    assert second[0] == 0 and after_second == 1, f"second rollback went to v{after_second}: {second}"
    assert third[0] == 2 and "nothing to roll back" in third[2], f"third rollback: {third}"
    assert reg.aliases()["production"] == 1
    actions = [(e["action"], e["from"], e["to"]) for e in reg.history("production")]
    assert actions[-2:] == [("rollback", 3, 2), ("rollback", 2, 1)], f"history not recorded: {actions}"
    assert production_model_dir(registry) == registry / "versions" / "1"


def test_rollback_skips_targets_equal_to_the_current_one(
    cli: Cli, registry: Path, artefacts: list[Path]
) -> None:
    # given production moved v1 -> v2 -> v1
    register(cli, artefacts[0])
    register(cli, artefacts[1])
    for version in ("1", "2", "1"):
        cli("promote", version, "--to", "production", "--approve")
    # when it is rolled back
    code, out, err = cli("rollback", "production")
    # then it goes to v2 (the previous target), not to v1 again
    assert code == 0, err
    assert Registry(registry).aliases()["production"] == 2, f"rollback went elsewhere: {out}"


# ---------------------------------------------------------------------------------------------
# Tables


def test_list_show_history_and_diff_print_tables_and_json(cli: Cli, artefacts: list[Path]) -> None:
    # given two versions, one of them in staging
    register(cli, artefacts[0], "--alias", "staging")
    register(cli, artefacts[1])
    # when they are listed, shown, compared and the history printed
    listed, listed_json = cli("list"), cli("list", "--json")
    shown, shown_json = cli("show", "staging"), cli("show", "2", "--json")
    diff, history = cli("diff", "1", "2"), cli("history", "staging", "--json")
    # then each answers with the expected facts
    assert all(result[0] == 0 for result in (listed, listed_json, shown, shown_json, diff, history))
    assert "roc_auc=" in listed[1] and "staging" in listed[1], f"list table lacks metric/alias:\n{listed[1]}"
    rows = json.loads(listed_json[1])["versions"]
    assert [r["version"] for r in rows] == [1, 2] and rows[0]["aliases"] == ["staging"], rows
    own = hashlib.sha256((artefacts[0] / "model.joblib").read_bytes()).hexdigest()
    assert f"{own} (the file's own" in shown[1] and "v1" in shown[1], f"show output:\n{shown[1]}"
    assert "signed with this key" in shown[1], f"show output:\n{shown[1]}"
    assert json.loads(shown_json[1])["lineage"]["version"] == 2
    assert "roc_auc" in diff[1] and "delta" in diff[1] and "data_sha256" in diff[1], (
        f"diff output:\n{diff[1]}"
    )
    assert [e["to"] for e in json.loads(history[1])] == [1]


# ---------------------------------------------------------------------------------------------
# End to end with the host runner


@pytest.mark.slow
def test_second_run_gates_against_the_promoted_first_version(make_project: Callable[..., Project]) -> None:
    # given a project run once by the host runner
    project = make_project(rows=600)
    run = ["run", "--config", str(project.config), "--out", str(project.out), "--skip", "lint,test"]
    run += ["--image", "never", "--cache-dir", str(project.root / "cache")]
    assert main(run) == 0, "first run failed"
    reg = Registry(project.root / "registry")
    assert reg.numbers() == [1] and reg.aliases() == {"staging": 1}, (
        "first run should register v1 into staging"
    )
    # when v1 is promoted and the pipeline runs again
    config = ["--config", str(project.config)]
    assert main(["registry", "promote", "1", "--to", "production", "--approve", *config]) == 0
    assert main(run) == 0, "second run failed"
    # then the gate compared against v1 and the report shows the deltas
    gates: dict[str, Any] = json.loads((project.out / "gates.json").read_text())
    assert gates["champion"] and gates["champion"]["model_sha256"] == reg.lineage(1).model_sha256
    report = (project.out / "report.md").read_text()
    assert "champion" in report.lower() and "delta" in report.lower(), f"report lacks deltas:\n{report}"
