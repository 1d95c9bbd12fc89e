"""The mesh topology as a graph: domains own products, products hold tables, consumers read
tables through grants and subscriptions and ask for products through pending requests, and
derived products' tables are derived from the tables their queries read. With ``lineage``,
each table's source (generated, files, a registered location) feeds it, and each derives edge
says which columns feed which and the masks and row filters on the way (:mod:`meshsim.lineage`).

:func:`mesh_graph` builds a networkx ``DiGraph``; :func:`render` turns it into Mermaid text or
a PNG/SVG drawn by matplotlib without a display or network (a ``Figure`` with no pyplot state).
networkx and matplotlib are imported only here, and only when called.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import CatalogError
from meshsim.files import check_output_file, write_output
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Policies

if TYPE_CHECKING:
    from meshsim.catalog.models import Request

FORMATS = ("mermaid", "png", "svg")
LAYERS = {"source": -1, "domain": 0, "product": 1, "table": 2, "consumer": 3}
EDGE_STYLE = {
    "owns": ("#555555", "solid"),
    "contains": ("#555555", "solid"),
    "grant": ("#1f77b4", "solid"),
    "subscription": ("#2ca02c", "solid"),
    "requested": ("#ff7f0e", "dashed"),
    "derives": ("#9467bd", "dotted"),
    "feeds": ("#8c564b", "dotted"),
}
NODE_COLOR = {
    "source": "#f7f7f7",
    "domain": "#d9d9d9",
    "product": "#c6dbef",
    "table": "#fdd0a2",
    "consumer": "#c7e9c0",
}


def mesh_graph(
    spec: MeshSpec, policies: Policies, pending: Sequence[Request] = (), *, lineage: bool = False
) -> Any:
    """Domains -> products -> tables, consumers -> tables (grants, subscriptions) and
    consumers -> products (pending requests). Node ids are ``kind:name``. With ``lineage``:
    sources -> tables, and column lineage on the derives edges."""
    import networkx as nx

    from meshsim.policy.access import access_matrix

    graph = nx.DiGraph()
    for domain in spec.domains:
        label = (
            f"{domain.name} ({domain.domain.owner_team})"
            if domain.domain.owner_team
            else domain.name
        )
        graph.add_node(f"domain:{domain.name}", kind="domain", label=label, layer=0)
        for product in domain.products:
            graph.add_node(f"product:{product.ref}", kind="product", label=product.ref, layer=1)
            graph.add_edge(f"domain:{domain.name}", f"product:{product.ref}", kind="owns", label="")
    for table in spec.tables():
        graph.add_node(f"table:{table.ref}", kind="table", label=table.ref, layer=2)
        graph.add_edge(
            f"product:{table.domain}.{table.product}",
            f"table:{table.ref}",
            kind="contains",
            label="",
        )
    from meshsim.sources.derived import derived_inputs

    for table in spec.tables():  # lineage: the tables a derived product's query reads
        for read in derived_inputs(table):
            if spec.table(read) is not None:
                graph.add_edge(f"table:{read}", f"table:{table.ref}", kind="derives", label="")
    if lineage:
        _add_lineage(graph, spec)
    for consumer in spec.consumer_names():
        graph.add_node(f"consumer:{consumer}", kind="consumer", label=consumer, layer=3)
    for access in access_matrix(spec, None, policies):
        if not access.granted:
            continue
        subscription = any(g.startswith("subscription_") for g in access.grants)
        graph.add_edge(
            f"consumer:{access.consumer}",
            f"table:{access.table}",
            kind="subscription" if subscription else "grant",
            label=", ".join(access.grants),
        )
    for request in pending:
        graph.add_edge(
            f"consumer:{request.consumer}",
            f"product:{request.product}",
            kind="requested",
            label=f"request {request.id} (pending)",
        )
    return graph


def _add_lineage(graph: Any, spec: MeshSpec) -> None:
    """Source nodes feeding their tables, and each derives edge labelled with its columns:
    ``input -> output (kind)``, filter-only inputs, masks and row filters."""
    from meshsim.lineage import mesh_lineage

    found = mesh_lineage(spec)
    for source in found.sources:
        node = f"source:{source.kind}:{source.source}"
        label = f"{source.kind}: {source.source}"
        graph.add_node(node, kind="source", label=label, layer=LAYERS["source"])
        graph.add_edge(node, f"table:{source.target}", kind="feeds", label="")
    parts: dict[tuple[str, str], list[str]] = {}
    for edge in found.columns:
        key = (edge.source.table, edge.target.table)
        if edge.kind == "filter":
            text = f"{edge.source.column} (filter)"
        else:
            text = f"{edge.source.column} -> {edge.target.column} ({edge.kind})"
        parts.setdefault(key, []).append(text)
    for rule in found.governance:
        key = (rule.source.table, rule.target.table)
        what = f" on {rule.source.column}" if rule.source.column else ""
        parts.setdefault(key, []).append(f"{rule.kind} {rule.policy}{what}")
    for (read, derived), texts in parts.items():
        if graph.has_edge(f"table:{read}", f"table:{derived}"):
            graph.edges[f"table:{read}", f"table:{derived}"]["label"] = "; ".join(texts)


def _mermaid_id(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node)


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: Any) -> str:
    """A Mermaid flowchart, one subgraph per domain."""
    shapes = {
        "product": ("[", "]"),
        "table": ("[(", ")]"),
        "consumer": ("([", "])"),
        "source": ("[/", "/]"),
    }
    lines = ["flowchart LR"]
    for node, data in graph.nodes(data=True):
        if data["kind"] != "domain":
            continue
        lines.append(f"  subgraph {_mermaid_id(node)}[{_mermaid_label(data['label'])}]")
        products = [p for p in graph.successors(node)]
        members = products + [t for p in products for t in graph.successors(p)]
        for member in members:
            kind = graph.nodes[member]["kind"]
            left, right = shapes[kind]
            lines.append(
                f"    {_mermaid_id(member)}{left}"
                f"{_mermaid_label(graph.nodes[member]['label'])}{right}"
            )
        lines.append("  end")
    for node, data in graph.nodes(data=True):
        if data["kind"] in ("consumer", "source"):
            left, right = shapes[data["kind"]]
            lines.append(f"  {_mermaid_id(node)}{left}{_mermaid_label(data['label'])}{right}")
    for source, target, data in graph.edges(data=True):
        if data["kind"] == "owns":
            continue
        a, b = _mermaid_id(source), _mermaid_id(target)
        if data["kind"] == "contains":
            lines.append(f"  {a} --> {b}")
        elif data["kind"] == "derives":
            label = _mermaid_label(data["label"]) if data["label"] else "derives"
            lines.append(f"  {a} -. {label} .-> {b}")
        elif data["kind"] == "feeds":
            lines.append(f"  {a} -. feeds .-> {b}")
        elif data["kind"] == "requested":
            lines.append(f"  {a} -. {_mermaid_label(data['label'])} .-> {b}")
        else:
            arrow = "==>" if data["kind"] == "subscription" else "-->"
            lines.append(f"  {a} {arrow}|{_mermaid_label(data['label'])}| {b}")
    return "\n".join(lines) + "\n"


def layered_positions(graph: Any) -> dict[str, tuple[float, float]]:
    """One column per layer (domains, products, tables, consumers), in insertion order, each
    column centred, so a domain sits level with its products and their tables."""
    columns: dict[int, list[str]] = {}
    for node, data in graph.nodes(data=True):
        columns.setdefault(data["layer"], []).append(node)
    pos = {}
    for layer, nodes in columns.items():
        for index, node in enumerate(nodes):
            pos[node] = (float(layer), (len(nodes) - 1) / 2 - index)
    return pos


def draw(graph: Any, path: Path, fmt: str) -> Path:
    """Draw with matplotlib's Agg/SVG canvases: no display, no network, no global state."""
    import io

    import networkx as nx
    from matplotlib.figure import Figure

    pos = layered_positions(graph)
    per_layer = max(
        sum(1 for _, d in graph.nodes(data=True) if d["layer"] == layer)
        for layer in LAYERS.values()
    )
    figure = Figure(figsize=(16, max(6, per_layer * 0.8)))
    ax = figure.add_subplot()
    ax.set_axis_off()
    for kind, color in NODE_COLOR.items():
        nodes = [n for n, d in graph.nodes(data=True) if d["kind"] == kind]
        nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=color, node_size=900, ax=ax)
    for kind, (color, style) in EDGE_STYLE.items():
        edges = [(a, b) for a, b, d in graph.edges(data=True) if d["kind"] == kind]
        nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=edges,
            edge_color=color,
            style=style,
            ax=ax,
            arrows=True,
            node_size=900,
            width=1.2,
        )
    labels = {n: d["label"] for n, d in graph.nodes(data=True)}
    nx.draw_networkx_labels(graph, pos, labels=labels, font_size=8, ax=ax)
    ax.set_title(
        "mesh topology: domains, products, tables, consumers (blue: grants, green: "
        "subscriptions, orange: pending requests, purple: derived from, brown: sources)",
        fontsize=9,
    )
    metadata = {"Date": None} if fmt == "svg" else {}
    drawing = io.BytesIO()
    figure.savefig(drawing, format=fmt, bbox_inches="tight", metadata=metadata)
    return write_output(path, drawing.getvalue())


def render(graph: Any, fmt: str = "mermaid", out: str | Path | None = None) -> str:
    """Mermaid text (written to ``out`` too when given), or the path of a PNG/SVG drawing."""
    if fmt not in FORMATS:
        raise CatalogError(
            f"graph format '{fmt}' is not supported (formats: {', '.join(FORMATS)})",
            hint="pass --format mermaid, png or svg",
        )
    if fmt == "mermaid":
        text = to_mermaid(graph)
        if out is not None:
            write_output(out, text)
        return text
    if out is None:
        raise CatalogError(f"a {fmt} drawing needs a file to write", hint=f"pass --out mesh.{fmt}")
    check_output_file(out)  # before the drawing, which takes a while
    return str(draw(graph, Path(out), fmt))
