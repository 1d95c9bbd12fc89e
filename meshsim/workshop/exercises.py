"""The checkers of the workshop's exercises, one per "your turn" cell, by module.

Each computes the expected answer from the module's mesh through the facade (so an exercise
follows meshsim's behaviour, never a copy of it) and returns ``None`` when the answer is right,
else a hint of what to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.workshop.checker import as_number, compare_names, exercise

if TYPE_CHECKING:
    from meshsim.mesh import Mesh


def _table_access(mesh: Mesh, consumer: str, ref: str) -> Any:
    return mesh.table_access(consumer, ref)


# --- module 0: what a data mesh is --------------------------------------------------------


@exercise("0.1", "the example mesh's domains")
def _domains(answer: Any, mesh: Mesh) -> str | None:
    return compare_names(answer, [d["domain"] for d in mesh.domains()], "domains")


@exercise("0.2", "the tables of sales.order_history")
def _product_tables(answer: Any, mesh: Mesh) -> str | None:
    product = next(p for p in mesh.products() if p["product"] == "sales.order_history")
    hint = compare_names(answer, product["tables"], "tables")
    return hint and hint + " (write each as domain.table)"


@exercise("0.3", "where supply.partsupp is stored")
def _location(answer: Any, mesh: Mesh) -> str | None:
    if not isinstance(answer, str | Path):
        return "give the folder as a string"
    if Path(answer).resolve() == Path(mesh.locate("supply.partsupp")).resolve():
        return None
    return "that is not where supply.partsupp lives: look at mesh.locate or mesh.tables()"


@exercise("0.4", "what eu_marketing_analyst sees masked in customer.customer")
def _masked(answer: Any, mesh: Mesh) -> str | None:
    access = _table_access(mesh, "eu_marketing_analyst", "customer.customer")
    masked = [c.column for c in access.columns if c.state == "masked"]
    return compare_names(answer, masked, "masked columns")


# --- module 1: producer -------------------------------------------------------------------


def _rows(mesh: Mesh, ref: str) -> int | None:
    return next((t.rows for t in mesh.tables() if t.ref == ref), None)


@exercise("1.1", "the rows of marketing.campaigns")
def _campaign_rows(answer: Any, mesh: Mesh) -> str | None:
    expected = _rows(mesh, "marketing.campaigns")
    if expected is None:
        return "marketing.campaigns is not built yet: run the build cells above"
    answer = _number(answer)
    if answer is None:
        return "give the count as a number"
    return None if answer == expected else "not that many: look at mesh.tables()"


@exercise("1.2", "the pii columns of marketing.campaigns")
def _pii_columns(answer: Any, mesh: Mesh) -> str | None:
    table = mesh.spec.table("marketing.campaigns")
    if table is None:
        return "marketing.campaigns is not in the mesh yet: run the cells above"
    pii = [c.name for c in table.table.columns if c.classification == "pii"]
    return compare_names(answer, pii, "pii columns")


@exercise("1.3", "where marketing.stores is stored")
def _registered_location(answer: Any, mesh: Mesh) -> str | None:
    if not isinstance(answer, str | Path):
        return "give the folder as a string"
    actual = Path(mesh.locate("marketing.stores")).resolve()
    if Path(answer).resolve() == actual:
        return None
    if "accounts" in Path(answer).parts:
        return "a registered table is not copied into the domain's account: it stays in place"
    return "not there: look at mesh.locate('marketing.stores')"


@exercise("1.4", "the column the publish gate named")
def _gate_column(answer: Any, mesh: Mesh) -> str | None:
    if not isinstance(answer, str):
        return "give the column as a string, domain.table.column"
    if answer.strip() == "marketing.campaigns.budget_eur":
        return None
    return (
        "look at the error line of the broken build: it names the column without a classification"
    )


# --- module 2: central governance ---------------------------------------------------------


def _readable_tables(mesh: Mesh, consumer: str) -> list[str]:
    return [
        a.table for a in mesh.access(consumer) if a.granted and not a.table.startswith("meshsim.")
    ]


@exercise("2.1", "what external_partner reads after the retagging")
def _partner_tables(answer: Any, mesh: Mesh) -> str | None:
    if "supply.partsupp" not in _readable_tables(mesh, "external_partner"):
        return "run the retagging cell first: the question is what the partner reads after it"
    hint = compare_names(answer, _readable_tables(mesh, "external_partner"), "tables")
    return hint and hint + " (did the retagging cell run? look at mesh.access('external_partner'))"


@exercise("2.2", "the columns tagged confidentiality=sensitive")
def _sensitive_columns(answer: Any, mesh: Mesh) -> str | None:
    expected = [
        f"{table.ref}.{column.name}"
        for table in mesh.spec.tables()
        for column in table.table.columns
        if table.column_tags(column).get("confidentiality") == "sensitive"
    ]
    return compare_names(answer, expected, "columns")


@exercise("2.3", "what the what-if would give supply_planner")
def _what_if_tables(answer: Any, mesh: Mesh) -> str | None:
    proposed = mesh.mesh_dir.parent / "what-if.yaml"
    if not proposed.is_file():
        return "run the what-if cell first: it writes what-if.yaml next to the mesh"
    changes = mesh.access_changes(proposed, "supply_planner")
    return compare_names(answer, {row["table"] for row in changes}, "tables")


# --- module 3: consumer -------------------------------------------------------------------


@exercise("3.1", "the state of the first request")
def _first_request(answer: Any, mesh: Mesh) -> str | None:
    requests = sorted(mesh.catalog.requests(consumer="external_partner"), key=lambda r: r.id)
    if not requests:
        return "no request yet: run the request cell"
    if not isinstance(answer, str):
        return "give the state as a string"
    if answer.strip().lower() == requests[0].state:
        return None
    return "not that state: look at mesh.catalog.get_request(request.id)"


@exercise("3.2", "an auto-approved request for customer.region")
def _auto_approved(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the request's id, a number (request.id)"
    from meshsim.errors import MeshsimError

    try:
        request = mesh.catalog.get_request(answer)
    except MeshsimError:
        return f"there is no request {answer}"
    if request.consumer != "external_partner":
        return "make the request as external_partner"
    if "customer.region" not in (request.tables or []):
        return "request the table customer.region (tables=['customer.region'])"
    if not request.auto_approved:
        return "that request was not auto-approved: did it ask for personal columns?"
    return None


@exercise("3.3", "what external_partner reads at the end")
def _partner_final(answer: Any, mesh: Mesh) -> str | None:
    if not mesh.catalog.requests(consumer="external_partner"):
        return "run the module's request, approval and revoke cells first"
    return compare_names(answer, _readable_tables(mesh, "external_partner"), "tables")


# --- module 4: fine-grained access --------------------------------------------------------


def _number(answer: Any) -> int | None:
    return as_number(answer)


def _count(mesh: Mesh, consumer: str, sql: str) -> int:
    return int(mesh.sql(consumer, sql).fetchall()[0][0])


@exercise("4.1", "the customers eu_marketing_analyst sees")
def _filtered_count(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the count as a number"
    expected = _count(mesh, "eu_marketing_analyst", "SELECT count(*) FROM customer.customer")
    if answer == expected:
        return None
    everyone = _count(mesh, "governance_admin", "SELECT count(*) FROM customer.customer")
    if answer == everyone:
        return "that is every customer: run the count as the analyst, under its row filter"
    return "not that many: run the count as eu_marketing_analyst"


@exercise("4.2", "the mask on c_address")
def _address_mask(answer: Any, mesh: Mesh) -> str | None:
    column = mesh.table_access("eu_marketing_analyst", "customer.customer").column("c_address")
    expected = column.mask.function if column and column.mask else None
    if not isinstance(answer, str):
        return "give the function's name as a string"
    if expected is not None and answer.strip().lower() == expected.lower():
        return None
    return "look at the 'masked' column of mesh.access"


@exercise("4.3", "what external_partner cannot see in sales.orders")
def _denied_columns(answer: Any, mesh: Mesh) -> str | None:
    access = mesh.table_access("external_partner", "sales.orders")
    denied = [c.column for c in access.columns if c.state == "denied"]
    return compare_names(answer, denied, "columns")


@exercise("4.4", "the analyst's refused queries")
def _refused(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the count as a number"
    # the checker's own query is audited too, but as the admin, so it does not count here
    expected = _count(
        mesh,
        "governance_admin",
        "SELECT count(*) FROM meshsim.audit WHERE kind = 'query' "
        "AND consumer = 'eu_marketing_analyst' AND decision = 'refused'",
    )
    if expected == 0:
        return "run the module's cells first: the analyst has had no query refused yet"
    return None if answer == expected else "count the analyst's refused queries in meshsim.audit"


# --- module 5: producer updates -----------------------------------------------------------


@exercise("5.1", "the published version of sales.orders")
def _published(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the version as a number"
    expected = mesh.published_version("sales.orders")
    if not expected:
        return "run the append and upsert cells first"
    return None if answer == expected else "look at mesh.history('sales.orders')"


@exercise("5.2", "the orders after your append")
def _after_append(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the count as a number"
    found = _count(
        mesh, "governance_admin", "SELECT count(*) FROM sales.orders WHERE o_orderkey = 9000010"
    )
    if not found:
        return "append the order 9000010 first (mesh.write(..., by='sales-ops'))"
    expected = _count(mesh, "finance_controller", "SELECT count(*) FROM sales.orders")
    return None if answer == expected else "count the rows as finance_controller, after the write"


@exercise("5.3", "the orders at version 1")
def _at_version(answer: Any, mesh: Mesh) -> str | None:
    answer = _number(answer)
    if answer is None:
        return "give the count as a number"
    expected = _count(
        mesh, "finance_controller", "SELECT count(*) FROM sales.orders AT (VERSION => 1)"
    )
    if answer == expected:
        return None
    return "read version 1 with time travel: FROM sales.orders AT (VERSION => 1)"


# --- module 7: performance ----------------------------------------------------------------


def _with_result(answer: Any) -> tuple[Any, Any] | None:
    """Module 7's answers come with the benchmark's result: ``(answer, result)``."""
    if isinstance(answer, tuple) and len(answer) == 2 and hasattr(answer[1], "runs"):
        return answer
    return None


@exercise("7.1", "whether every answer was right")
def _all_right(answer: Any, mesh: Mesh) -> str | None:
    pair = _with_result(answer)
    if pair is None:
        return "pass (answer, result), as the cell does"
    given, result = pair
    if not isinstance(given, bool):
        return "give True or False"
    return None if given == (not result.problems) else "look at result.problems"


@exercise("7.2", "the slowest query through meshsim")
def _slowest(answer: Any, mesh: Mesh) -> str | None:
    pair = _with_result(answer)
    if pair is None:
        return "pass (answer, result), as the cell does"
    given, result = pair
    ours = [r for r in result.runs if r.engine == "meshsim" and r.ok and r.warm]
    if not ours:
        return "the benchmark ran no meshsim query: run the benchmark cell"

    def median(run: Any) -> float:
        return sorted(run.warm)[len(run.warm) // 2]

    expected = max(ours, key=median).query
    if not isinstance(given, str):
        return "give the query's name as a string, like 'q03'"
    return None if given.strip() == expected else "compare the medians of the meshsim runs"


# --- module 6: derived products -----------------------------------------------------------

REVENUE = "sales.customer_revenue.revenue"


@exercise("6.1", "the inputs of customer_revenue.revenue")
def _revenue_inputs(answer: Any, mesh: Mesh) -> str | None:
    rows = mesh.lineage(REVENUE, direction="upstream").rows()
    inputs = {
        r["from"] for r in rows if r["to"] == REVENUE and r["edge"] not in ("mask", "row_filter")
    }
    hint = compare_names(answer, inputs, "input columns")
    return hint and hint + " (look at the edges into revenue, in mesh.lineage(...))"


@exercise("6.2", "the mask c_name was read through")
def _build_mask(answer: Any, mesh: Mesh) -> str | None:
    rows = mesh.lineage("sales.customer_revenue.c_name", direction="upstream").rows()
    masks = {r["detail"].split(":")[0] for r in rows if r["edge"] == "mask"}
    if not isinstance(answer, str):
        return "give the mask policy's name as a string"
    if answer.strip().lower() in {m.lower() for m in masks}:
        return None
    return "look for the 'mask' edge in the c_name lineage"


@exercise("6.3", "the subscribers a breaking change would break")
def _subscribers(answer: Any, mesh: Mesh) -> str | None:
    from datetime import UTC, datetime

    from meshsim.contracts.impact import subscribers

    product = mesh.spec.product("sales.customer_revenue")
    if product is None:
        return "sales.customer_revenue is not in the mesh"
    if any(c.name == "orders" for t in product.product.tables for c in t.columns):
        return "run the breaking-change cells first: remove the orders column and try the build"
    with mesh.catalog.store.read() as con:
        expected = subscribers(con, mesh.spec, product, datetime.now(UTC).isoformat())
    return compare_names(answer, expected, "subscribers")


@exercise("6.4", "the published contract version")
def _contract_version(answer: Any, mesh: Mesh) -> str | None:
    from meshsim.catalog.views import published_products

    with mesh.catalog.store.read() as con:
        published = published_products(con, "sales.customer_revenue")
    if not published:
        return "sales.customer_revenue is not published"
    if not isinstance(answer, str):
        return "give the version as a string, like '1.0.0'"
    expected = published[-1][1].version
    if expected.split(".")[0] == "1":
        return "run the cells of the breaking change first, up to the build with version 2.0.0"
    if answer.strip() == expected:
        return None
    return "not that one: did the build with the new major version succeed? (mesh.show(...))"
