"""The planning micro-benchmark measures what its columns say: 'new text' binds every sample's
shape afresh, 'seen shape' binds none (its shape was accepted once), 'new values' are texts
with other string values (filled in from a template), 'cached' plans nothing."""

from pathlib import Path

import meshsim
from meshsim import engine
from meshsim.bench import micro


def test_new_text_samples_bind_every_shape_and_seen_shape_samples_none(
    workspace: Path, monkeypatch
) -> None:
    binds: list[str] = []
    accept = engine.accept_shape
    monkeypatch.setattr(
        engine, "accept_shape", lambda db, shape: (binds.append(shape), accept(db, shape))
    )
    mesh = meshsim.open(str(workspace))
    try:
        result = micro.planning(mesh, counts=(10,), repeat=3)
    finally:
        mesh.close()
    row = result["rows"][0]
    queries = len(micro.queries.restricted())
    # one warm-up plan and three new-shape samples per query; the seen-shape, new-values
    # (filled in from a template) and cached samples bind nothing
    assert len(binds) == queries * (1 + 3)
    assert row["samples"] == queries * 3
    with_strings = [q for q in micro.queries.restricted() if micro.literal_variants(q.sql, 1)]
    assert with_strings and row["new_values_samples"] == len(with_strings) * 3
    assert {"p50_ms", "p95_ms", "seen_shape_p50_ms", "seen_shape_p95_ms", "cached_p95_ms"} <= set(
        row
    )


def test_planning_by_query_size_plans_each_size_by_every_rule(workspace: Path) -> None:
    mesh = meshsim.open(str(workspace))
    try:
        result = micro.planning_size(mesh, counts=(10, 30), repeat=1)
    finally:
        mesh.close()
    assert [r["predicates"] for r in result["rows"]] == [10, 30]
    assert all(r["p50_ms"] > 0 and r["us_per_predicate"] > 0 for r in result["rows"])
