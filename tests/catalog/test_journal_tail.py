"""The audit journal's last id, read from its end (every query reserves ids past it)."""

from __future__ import annotations

import json
from pathlib import Path

from meshsim.catalog.backup import journal_last_id, journal_path


def write_journal(governance: Path, lines: list[str]) -> None:
    governance.mkdir(parents=True, exist_ok=True)
    journal_path(governance).write_text("".join(lines))


def record(record_id: int, sql: str = "SELECT 1") -> str:
    return json.dumps({"id": record_id, "sql": sql}) + "\n"


def test_the_last_whole_line_gives_the_id(tmp_path: Path) -> None:
    write_journal(tmp_path, [record(i) for i in range(1, 2000)])
    assert journal_last_id(tmp_path) == 1999


def test_a_last_line_longer_than_the_short_tail_is_read_whole(tmp_path: Path) -> None:
    long_text = "SELECT " + ", ".join(f"c{i}" for i in range(4000))  # ~30 KB of SQL
    write_journal(tmp_path, [record(i) for i in range(1, 500)] + [record(500, long_text)])
    assert journal_last_id(tmp_path) == 500


def test_a_line_cut_short_gives_the_one_before(tmp_path: Path) -> None:
    write_journal(tmp_path, [record(i) for i in range(1, 50)] + ['{"id": 50, "sql": "SEL'])
    assert journal_last_id(tmp_path) == 49
