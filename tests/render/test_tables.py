"""The one table renderer: numbers formatted once, columns aligned, markdown cells escaped."""

from __future__ import annotations

from pipeline.render.tables import fmt, markdown_table, signed, text_table


def test_numbers_read_the_same_everywhere() -> None:
    assert [fmt(None), fmt(True), fmt(0.823456), fmt(55.1234), fmt(0.0), fmt(0.00001234)] == [
        "-",
        "true",
        "0.8235",
        "55.12",
        "0",
        "1.23e-05",
    ]
    assert (signed(0.01234), signed(-0.5), signed(None), signed(True)) == ("+0.0123", "-0.5000", "-", "-")


def test_text_columns_line_up_and_the_last_is_not_padded() -> None:
    table = text_table(
        ("gate", "status", "message"), [("drift", "passed", "ok"), ("no_regression", "failed", "x")]
    )

    lines = table.splitlines()
    assert lines[0] == "gate           status  message"
    assert lines[2] == "no_regression  failed  x"
    assert all(not line.endswith(" ") for line in lines)


def test_markdown_cells_escape_pipes_and_newlines() -> None:
    lines = markdown_table(("a", "b"), [("x|y", "one\ntwo")])

    assert lines[0].startswith("| a ") and set(lines[1]) <= {"|", " ", "-"}
    assert lines[2] == "| x\\|y | one two |"
