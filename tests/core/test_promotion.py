"""Promotion rules on plain data: the alias history replayed as a stack."""

from __future__ import annotations

from pipeline.core.promotion import alias_stack


def test_alias_stack_replays_moves_and_rollbacks() -> None:
    # given a history of promotes and a rollback
    history = [
        {"to": 1, "action": "promote"},
        {"to": 2, "action": "promote"},
        {"to": 3, "action": "promote"},
        {"to": 2, "action": "rollback"},
    ]
    # when it is replayed / then the rolled-back target is gone and v1 remains underneath
    assert alias_stack(history) == [1, 2]
    assert alias_stack([]) == []
