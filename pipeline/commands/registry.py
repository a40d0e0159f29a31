"""Register, list, promote and roll back model versions in the directory registry.

    python -m pipeline registry register out/model --gates out/gates.json --alias staging
    python -m pipeline registry promote 3 --to production --approver alice --reason "beats v2"
    python -m pipeline registry rollback production

The registry is a directory (config ``registry.path``, or ``--registry PATH``) of immutable
versions, their aliases and the history of every alias move (``pipeline/io/registry.py``).
Reading a version checks the model file's sha256 and refuses a tampered file (exit 2).
Production needs an approval and a passing gate record (exit 1 without them); any alias refuses
a gate record that is not publishable (exit 1; ``register --if-publishable`` registers nothing
and says why): see ``pipeline/core/promotion.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from model.artifact import check_signature, verify_artifact
from model.codec import encode, read_record
from model.files import sha256_file
from model.records import Metrics
from model.signing import SignatureError
from pipeline.config import load_config
from pipeline.core.gates import publish_refusal
from pipeline.core.promotion import (
    MISSING_OK_ALIASES,
    PRODUCTION,
    PROMOTE,
    VERSION_REF,
    check_alias_name,
    gate_record,
    promotion_blockers,
)
from pipeline.errors import CheckFailed, DataError, RegistryError, first_line
from pipeline.io.registry import Registry, export, is_export
from pipeline.records import Gates
from pipeline.render.model_card import model_card
from pipeline.render.registry import gates_word, headline_metric, lineage_fields, metric_diff, overall, vname
from pipeline.render.tables import fmt, signed, text_table


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
    publishable = "register only when --gates lets the model be published; else say why and exit 0"
    register.add_argument("--if-publishable", action="store_true", help=publishable)
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
        "register": _register,
        "list": _list,
        "show": _show,
        "promote": _promote,
        "rollback": _rollback,
        "history": _history,
        "diff": _diff,
        "export": _export,
    }
    return handlers[args.registry_command](args)


def actor(by: str | None) -> str:
    """Return who acts: ``--by``, else $GITHUB_ACTOR, else $USER, else ``unknown``."""
    return by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"


def _open(args: argparse.Namespace) -> Registry:
    if args.registry:
        return Registry(Path(args.registry))
    return Registry(Path(load_config(args.config).registry.path))


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


def _register(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    registry = Registry(Path(args.registry or config.registry.path))
    model_dir = Path(args.model_dir)
    gates = None
    if args.if_publishable and not args.gates:
        raise RegistryError("--if-publishable needs --gates: the gates.json of this model")
    if args.gates:
        candidate = verify_artifact(model_dir, "candidate")
        recorded = read_record(Path(args.gates), Gates, "gates file")
        gates = gate_record(recorded, str(args.gates), candidate.model_sha256)
        refusal = publish_refusal(gates.results)
        if refusal and args.if_publishable:
            print(f"not registered: {model_dir} may not be published: {refusal}")
            return 0
        if refusal and args.alias:
            raise CheckFailed(f"refusing to point {args.alias} at {model_dir}: {refusal}")
    if args.metrics and not Path(args.metrics).is_file():
        raise DataError(f"{args.metrics}: metrics file not found")
    metrics_path: Path | None = Path(args.metrics) if args.metrics else model_dir.parent / Metrics.FILE
    if metrics_path is not None and not metrics_path.is_file():
        metrics_path = None  # no metrics.json beside the model: the card says so
    if args.alias == PRODUCTION:
        raise RegistryError("register cannot set production: use `registry promote VERSION --to production`")
    metrics = read_record(metrics_path, Metrics) if metrics_path is not None else None
    result = registry.register(
        model_dir,
        gates=gates,
        metrics_path=metrics_path,
        by=actor(args.by),
        card=lambda metadata, lineage: model_card(metadata, lineage, metrics, config.description),
        alias=args.alias,
    )
    if args.json:
        path = str(registry.path(result.version))
        _print_json({"version": result.version, "created": result.created, "alias": args.alias, "path": path})
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


def _list(args: argparse.Namespace) -> int:
    registry = _open(args)
    aliases = registry.aliases()
    rows: list[dict[str, Any]] = []
    for version in registry.numbers():
        lineage, metadata = registry.lineage(version), registry.metadata(version)
        rows.append(
            {
                "version": version,
                "registered_at": lineage.registered_at,
                "registered_by": lineage.registered_by,
                "task": metadata.task,
                "kind": metadata.kind,
                "metrics": overall(registry.metrics(version)),
                "gates_passed": lineage.gates.passed if lineage.gates is not None else None,
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
        name = headline_metric(row["task"], row["metrics"])
        metric = f"{name}={fmt(row['metrics'][name])}" if name else "-"
        aliases_text = ", ".join(row["aliases"]) or "-"
        table.append(
            (
                row["version"],
                row["registered_at"],
                row["kind"],
                metric,
                gates_word(row["gates_passed"]),
                aliases_text,
            )
        )
    print(text_table(("version", "registered", "kind", "metric", "gates", "aliases"), table))
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = _open(args)
    version = registry.resolve(args.ref)
    directory = registry.verify(version)
    lineage, metadata, metrics = (
        registry.lineage(version),
        registry.metadata(version),
        registry.metrics(version),
    )
    aliases = registry.aliases_of(version)
    actual = sha256_file(directory / metadata.model_file)  # the file's own hash, not a recorded one
    try:
        signed = f"signed with this key ({check_signature(directory, metadata).key_id})"
    except SignatureError as exc:
        signed = f"NOT checked: {first_line(exc).split(': ', 1)[-1].removesuffix('; refusing to load it')}"
    if args.json:
        payload = {
            "version": version,
            "path": str(directory),
            "aliases": aliases,
            "model_file_sha256": actual,
            "signature": signed,
            "verified": True,
            "lineage": encode(lineage),
            "metadata": encode(metadata),
            "metrics": encode(metrics) if metrics is not None else None,
        }
        _print_json(payload)
        return 0
    gates = lineage.gates
    fields = [
        ("version", f"v{version}"),
        ("aliases", ", ".join(aliases) or "-"),
        ("path", directory),
        ("task / target", f"{metadata.task} / {metadata.target}"),
        ("kind", metadata.kind),
        ("trained at", metadata.created_at),
        ("registered", f"{lineage.registered_at} by {lineage.registered_by}"),
        ("model file sha256", f"{actual} (the file's own; equal to its metadata)"),
        ("signature", signed),
        ("data sha256", lineage.data_sha256),
        ("config sha256", lineage.config_sha256),
        ("git commit", lineage.git_commit or "unknown"),
        ("parent", vname(lineage.parent)),
        ("gates", gates_word(gates.passed if gates is not None else None)),
    ]
    print(text_table(("field", "value"), fields))
    values = overall(metrics)
    if values:
        print()
        print(text_table(("metric", "value"), sorted(values.items())))
    if gates is not None:
        print()
        print(
            text_table(
                ("gate", "status", "message"), [(g.name, str(g.status), g.message) for g in gates.results]
            )
        )
    return 0


def _promote(args: argparse.Namespace) -> int:
    registry = _open(args)
    check_alias_name(args.to)
    version = registry.resolve(args.ref)
    by = actor(args.by)
    approver = args.approver or (by if args.approve else None)
    problems = promotion_blockers(args.to, version, registry.lineage(version), approver)
    if problems:
        raise CheckFailed(f"refusing to promote v{version} to {args.to}: " + "; ".join(problems))
    registry.verify(version)
    entry = registry.move(args.to, version, action=PROMOTE, by=by, approver=approver, reason=args.reason)
    if entry is None:
        print(f"{args.to} already points at v{version}; nothing to do")
    else:
        who = f", approved by {approver}" if approver else ""
        print(f"{args.to}: {vname(entry['from'])} -> v{version} (promote by {by}{who})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    registry = _open(args)
    entry = registry.rollback(args.alias, by=actor(args.by), reason=args.reason)
    move = f"{args.alias}: {vname(entry['from'])} -> {vname(entry['to'])}"
    if entry.get("landed_earlier"):
        print(
            f"{move}: the interrupted rollback had landed; nothing more done (run again to go further back)"
        )
    else:
        print(f"{move} (rollback by {entry['by']})")
    return 0


def _history(args: argparse.Namespace) -> int:
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
    keys = ("at", "alias", "action", "from", "to", "by", "approver", "reason")
    rows = [[vname(e.get(k)) if k in ("from", "to") else e.get(k) for k in keys] for e in entries]
    print(text_table(keys, rows))
    return 0


def _diff(args: argparse.Namespace) -> int:
    registry = _open(args)
    a, b = registry.resolve(args.a), registry.resolve(args.b)
    metrics_a, metrics_b = overall(registry.metrics(a)), overall(registry.metrics(b))
    metric_rows = metric_diff(a, b, metrics_a, metrics_b)
    lineage_a = lineage_fields(registry.lineage(a), registry.metadata(a))
    lineage_b = lineage_fields(registry.lineage(b), registry.metadata(b))
    changed = [
        {"field": k, "a": lineage_a[k], "b": lineage_b[k]} for k in lineage_a if lineage_a[k] != lineage_b[k]
    ]
    same = [k for k in lineage_a if lineage_a[k] == lineage_b[k]]
    if args.json:
        _print_json(
            {"a": a, "b": b, "metrics": metric_rows, "lineage_changed": changed, "lineage_same": same}
        )
        return 0
    if metric_rows:
        rows = [(r["metric"], r["a"], r["b"], signed(r["delta"]), r["better"]) for r in metric_rows]
        print(text_table(("metric", f"v{a}", f"v{b}", "delta", "better"), rows))
    else:
        print("no metrics recorded for either version")
    print()
    if changed:
        print(text_table(("lineage", f"v{a}", f"v{b}"), [(r["field"], r["a"], r["b"]) for r in changed]))
    else:
        print("lineage: no differences")
    if same:
        print(f"same in both: {', '.join(same)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    registry = _open(args)
    target = Path(args.to)
    is_alias = VERSION_REF.fullmatch(args.ref) is None
    if args.missing_ok and is_alias and args.ref not in registry.aliases():
        if args.ref not in MISSING_OK_ALIASES:
            known = ", ".join(sorted(registry.aliases())) or "none"
            raise RegistryError(
                f"unknown alias {args.ref!r} in registry {registry.root} (aliases: {known}); --missing-ok "
                f"covers an unset {' or '.join(MISSING_OK_ALIASES)} only"
            )
        if target.is_symlink() or target.exists():
            if not is_export(target):
                raise RegistryError(
                    f"--to {target}: exists and is not a model exported by this command; not removing it"
                )
            shutil.rmtree(target)  # a stale champion from an earlier export: it must not be gated against
        print(f"no {args.ref} alias: nothing exported")
        return 0
    version = registry.resolve(args.ref)
    export(registry, version, target)
    print(f"exported v{version} ({args.ref}) to {target}")
    return 0
