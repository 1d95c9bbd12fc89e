"""The checkers of the workshop's exercises, one per "your turn" cell, by module.

Each computes the expected answer from the module's mesh through the facade (so an exercise
follows meshsim's behaviour, never a copy of it) and returns ``None`` when the answer is right,
else a hint of what to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.workshop.checker import compare_names, exercise

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
    if isinstance(answer, bool) or not isinstance(answer, int):
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
    return "look at the error line of the broken build: it names the column without a classification"
