"""Promotion rules: alias names, the alias history replayed as a stack, and what production needs.

Production needs an approval and a passing gate record, publishable too (every required gate
passed: an inconclusive no-regression that a pull-request check let pass with a warning is not);
rollback walks one alias's history back, so it can be repeated. Pure logic: ``pipeline/io/registry.py`` stores and locks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from model.records import GateRecord, Lineage, Status
from pipeline.core.gates import publish_refusal
from pipeline.errors import RegistryError
from pipeline.records import Gates

PRODUCTION = "production"
STAGING = "staging"
MISSING_OK_ALIASES = (PRODUCTION, STAGING)  # the aliases the pipeline reads, which may be unset yet
PROMOTE, ROLLBACK = "promote", "rollback"
ALIAS_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
VERSION_REF = re.compile(r"v?([0-9]+)")


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


def production_blockers(version: int, lineage: Lineage, approver: str | None) -> list[str]:
    """Return why ``version`` may not become production (empty: it may)."""
    problems = []
    if not approver:
        problems.append("it needs an approval: add --approve or --approver NAME")
    gates = lineage.gates
    if gates is None:
        problems.append(f"v{version} has no gate record (register it with --gates out/gates.json)")
    elif gates.model_sha256 != lineage.model_sha256:
        problems.append(
            f"v{version}'s gate record judged model {gates.model_sha256[:12]}, not its own "
            f"({lineage.model_sha256[:12]})"
        )
    elif not gates.passed:
        failed = [g.name for g in gates.results if g.status is Status.FAILED]
        problems.append(f"v{version} failed its gates ({', '.join(failed) or 'passed is false'})")
    elif publish_refusal(gates.results):
        problems.append(f"v{version} may not be published: {publish_refusal(gates.results)}")
    return problems


def promotion_blockers(alias: str, version: int, lineage: Lineage, approver: str | None) -> list[str]:
    """Return why ``version`` may not be pointed at by ``alias`` (empty: it may).

    Production: :func:`production_blockers`. Any other alias: a version whose gate record is not
    publishable (a required gate failed, errored or was inconclusive); one registered without a
    gate record may be staged by hand.
    """
    if alias == PRODUCTION:
        return production_blockers(version, lineage, approver)
    refusal = publish_refusal(lineage.gates.results) if lineage.gates is not None else ""
    return [f"v{version} may not be published: {refusal}"] if refusal else []


def gate_record(gates: Gates, file: str, model_sha256: str) -> GateRecord:
    """Return the gate outcome a registered version keeps in its lineage; refuse gates of another model.

    ``model_sha256`` is the artefact's own: a ``gates.json`` that judged another model says nothing
    about this one (exit 2).
    """
    if gates.model_sha256 != model_sha256:
        raise RegistryError(
            f"{file} judged model {gates.model_sha256[:12]}, not this artefact's ({model_sha256[:12]}): "
            "pass the gates.json written by `gate` for this model"
        )
    return GateRecord(passed=gates.passed, file=file, model_sha256=gates.model_sha256, results=gates.gates)
