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
