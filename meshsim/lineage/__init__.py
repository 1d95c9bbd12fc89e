"""Lineage: where each table's rows and columns come from, and the OpenLineage events of the
runs that produce them.

- :mod:`meshsim.lineage.model`: the typed graph and its up- and downstream questions;
- :mod:`meshsim.lineage.columns`: column lineage of one derived product's query (sqlglot);
- :mod:`meshsim.lineage.collect`: the graph of a whole mesh, governance edges included;
- :mod:`meshsim.lineage.render`: the graph as table rows, JSON or Mermaid;
- :mod:`meshsim.lineage.events`: OpenLineage run events (the one module that imports
  ``openlineage``).
"""

from meshsim.lineage.collect import downstream_tables, mesh_lineage, parse_focus
from meshsim.lineage.model import ColumnEdge, ColumnRef, GovernanceEdge, Lineage, SourceEdge

__all__ = [
    "ColumnEdge",
    "ColumnRef",
    "GovernanceEdge",
    "Lineage",
    "SourceEdge",
    "downstream_tables",
    "mesh_lineage",
    "parse_focus",
]
