"""``meshsim demo``: build the example mesh small and show it, as a walk through the product."""

from __future__ import annotations

from pathlib import Path

from meshsim.console import Console
from meshsim.mesh import Mesh

DEMO_QUERY = """\
SELECT n.n_name AS nation,
       count(DISTINCT c.c_custkey) AS customers,
       round(sum(l.l_extendedprice * (1 - l.l_discount)), 2) AS revenue
FROM sales.lineitem AS l
JOIN sales.orders AS o ON l.l_orderkey = o.o_orderkey
JOIN customer.customer AS c ON o.o_custkey = c.c_custkey
JOIN customer.nation AS n ON c.c_nationkey = n.n_nationkey
GROUP BY n.n_name
ORDER BY revenue DESC
LIMIT 5"""

DEMO_SCALE = 0.01
DEMO_CONSUMERS = ("governance_admin", "eu_marketing_analyst", "finance_controller")


def access_summary(mesh: Mesh) -> list[dict[str, str]]:
    """One row per consumer and table it can read: columns masked, denied, row filters."""
    from meshsim.reprs import access_summary as summary

    return summary(mesh.access())


def demo_scale(workspace: str | Path, requested: float | None) -> float:
    """The scale to build at: as asked, else the workspace's (never shrink a user's build), else
    small."""
    from meshsim.workspace import Workspace

    if requested is not None:
        return requested
    ws = Workspace.at(workspace)
    return ws.read_state().scale if ws.exists else DEMO_SCALE


def run_demo(
    mesh_dir: str | Path, workspace: str | Path, *, scale: float, console: Console
) -> Mesh:
    mesh = Mesh.build(mesh_dir, workspace, scale=scale, console=console)
    console.note(f"\nmesh '{mesh.name}' built at TPC-H scale {scale:g} in {mesh.workspace.root}\n")
    console.table(
        "domains",
        ["domain", "owner team", "products", "storage account"],
        [
            [d["domain"], d["owner_team"], ", ".join(d["products"]), d["account"]]
            for d in mesh.domains()
        ],
    )
    console.table(
        "tables",
        ["table", "product", "version", "rows", "files"],
        [[t.ref, t.product, t.version, f"{t.rows:,}", t.files] for t in mesh.tables()],
    )
    summary = access_summary(mesh)
    console.table(
        "who may see what (everything not listed is denied)",
        list(summary[0]) if summary else [],
        [list(r.values()) for r in summary],
    )
    _governed_queries(mesh, console)
    _quality_report(mesh, console)
    _lineage_answer(mesh, console)
    _subscription_walkthrough(mesh, console)
    return mesh


def _governed_queries(mesh: Mesh, console: Console) -> None:
    console.note("\nThe same cross-domain query (revenue by nation), run as three consumers:\n")
    console.note(DEMO_QUERY + "\n")
    for consumer in DEMO_CONSUMERS:
        result = mesh.session(consumer).sql(DEMO_QUERY)
        rows = result.fetchall()
        console.table(f"as {consumer}", result.columns, rows)


DEMO_LINEAGE = "sales.customer_revenue.c_name"


def _lineage_answer(mesh: Mesh, console: Console) -> None:
    """Where a derived product's column comes from, and the mask it was built through."""
    from meshsim.lineage.render import ROW_COLUMNS

    console.note(
        f"\nWhere does a derived column come from?\n$ meshsim lineage {DEMO_LINEAGE} --upstream"
    )
    answer = mesh.lineage(DEMO_LINEAGE, direction="upstream")
    rows = answer.rows()
    console.table(answer.summary(), list(ROW_COLUMNS), [[r[c] for c in ROW_COLUMNS] for r in rows])


def _quality_report(mesh: Mesh, console: Console) -> None:
    """The rules sales promises on its orders, checked on the published versions."""
    product = "sales.order_history"
    console.note(
        f"\nQuality rules: what {product} promises (build and write refuse a version that "
        f"breaks an error rule).\n$ meshsim check {product}"
    )
    run = mesh.check(product)
    counts = run.counts()
    console.table(
        f"quality: {counts['passed']} passed, {counts['failed']} failed",
        ["table", "version", "rule", "severity", "status", "failing", "found"],
        [
            [
                r.table,
                r.version,
                r.rule,
                r.severity,
                r.status,
                r.failing_rows,
                r.message or r.observed or "",
            ]
            for r in run.results
        ],
    )


WALKTHROUGH_QUERY = (
    "SELECT c_mktsegment, count(*) AS customers FROM customer.customer GROUP BY 1 ORDER BY 1"
)


def _try(mesh: Mesh, consumer: str, query: str, console: Console) -> None:
    from meshsim.errors import AccessDenied

    try:
        result = mesh.sql(consumer, query)
    except AccessDenied as refused:
        console.note(f"  refused: {refused.message}")
        return
    console.table(f"as {consumer}", result.columns, result.fetchall())


def _subscription_walkthrough(mesh: Mesh, console: Console) -> None:
    consumer, product, owner = "external_partner", "customer.customer_profiles", "customer-data"
    console.note(f"\nA subscription, start to end: {consumer} asks for customer segments.\n")
    console.note(f'$ meshsim sql --as {consumer} "{WALKTHROUGH_QUERY}"')
    _try(mesh, consumer, WALKTHROUGH_QUERY, console)
    request = mesh.catalog.request(
        consumer,
        product,
        "size our wholesale offer by market segment",
        tables=["customer.customer"],
        columns=["c_custkey", "c_name", "c_mktsegment"],
    )
    console.note(
        f"\n$ meshsim request --as {consumer} {product} --tables customer.customer "
        f"--columns c_custkey,c_name,c_mktsegment --reason '...'\n  request {request.id}: "
        f"{request.state} (it asks for PII, so the owner '{owner}' decides)"
    )
    approved = mesh.catalog.approve(
        request.id, by=owner, columns=["c_custkey", "c_mktsegment"], comment="segments, not names"
    )
    console.note(
        f"$ meshsim approve {request.id} --by {owner} --columns c_custkey,c_mktsegment\n"
        f"  request {request.id}: {approved.state}, narrowed to c_custkey, c_mktsegment\n"
    )
    _try(mesh, consumer, WALKTHROUGH_QUERY, console)
    _try(mesh, consumer, "SELECT c_name FROM customer.customer LIMIT 1", console)
    mesh.catalog.revoke(request.id, by=owner, comment="demo over")
    console.note(f"\n$ meshsim revoke {request.id} --by {owner}")
    _try(mesh, consumer, WALKTHROUGH_QUERY, console)
    console.note(
        "\nEvery attempt above is in the audit log: 'meshsim audit --as governance_admin', "
        "or with SQL: 'meshsim sql --as governance_admin \"SELECT * FROM meshsim.audit\"'."
    )
