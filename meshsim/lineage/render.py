"""A lineage answer (:class:`LineageAnswer`): the edges up- or downstream of one table or
column, as rows for a table, a JSON document or a Mermaid flowchart."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from meshsim.lineage.model import ColumnRef, Edge, GovernanceEdge, Lineage, SourceEdge

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream", "both")
ROW_COLUMNS = ("from", "to", "edge", "detail")


class LineageAnswer(BaseModel):
    """Where ``focus`` comes from (upstream), what it reaches (downstream), or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    focus: ColumnRef
    direction: Direction
    lineage: Lineage

    def edges(self) -> list[Edge]:
        return [*self.lineage.sources, *self.lineage.columns, *self.lineage.governance]

    def rows(self) -> list[dict[str, str]]:
        """One row per edge: ``from``, ``to``, ``edge`` (its kind) and ``detail``."""
        return [_row(edge) for edge in self.edges()]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    def to_mermaid(self) -> str:
        """A left-to-right flowchart: sources, then columns and rows, governance dashed."""
        from meshsim.graph import _mermaid_id, _mermaid_label

        nodes: dict[str, str] = {}
        lines = ["flowchart LR"]

        def node(ref: ColumnRef | str) -> str:
            key = f"s:{ref}" if isinstance(ref, str) else f"c:{ref}"
            if key not in nodes:
                nodes[key] = _mermaid_id(key)
                label = _label(ref) if isinstance(ref, ColumnRef) else ref
                left, right = ("[/", "/]") if isinstance(ref, str) else ("[", "]")
                if isinstance(ref, ColumnRef) and ref == self.focus:
                    left, right = "[[", "]]"
                lines.append(f"  {nodes[key]}{left}{_mermaid_label(label)}{right}")
            return nodes[key]

        node(self.focus)
        for edge in self.edges():
            if isinstance(edge, SourceEdge):
                a, b = node(f"{edge.kind}: {edge.source}"), node(ColumnRef(table=edge.target))
                lines.append(f"  {a} --> {b}")
            elif isinstance(edge, GovernanceEdge):
                a, b = node(edge.source), node(edge.target)
                text = f"{edge.kind} {edge.policy}"
                lines.append(f"  {a} -. {_mermaid_label(text)} .-> {b}")
            else:
                a, b = node(edge.source), node(edge.target)
                lines.append(f"  {a} -->|{edge.kind}| {b}")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """One line: how many edges reach how many tables."""
        tables = [t for t in self.lineage.tables() if t != self.focus.table]
        if not tables:
            return f"no lineage {self.direction} of {_label(self.focus)}"
        return (
            f"{len(self.edges())} edge(s) {self.direction} of {_label(self.focus)}, "
            f"{len(tables)} other table(s): {', '.join(tables)}"
        )


def _label(ref: ColumnRef) -> str:
    return f"{ref.table} (rows)" if ref.column is None else str(ref)


def _row(edge: Any) -> dict[str, str]:
    if isinstance(edge, SourceEdge):
        return {"from": edge.source, "to": edge.target, "edge": edge.kind, "detail": "source"}
    if isinstance(edge, GovernanceEdge):
        detail = f"{edge.policy}: {edge.detail} (read as consumer '{edge.consumer}')"
        return {
            "from": _label(edge.source),
            "to": _label(edge.target),
            "edge": edge.kind,
            "detail": detail,
        }
    detail = "decides which rows" if edge.kind == "filter" else ""
    return {
        "from": _label(edge.source),
        "to": _label(edge.target),
        "edge": edge.kind,
        "detail": detail,
    }
