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

    from meshsim.policy.access import readable_access

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
    for access in readable_access(spec, policies):
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


#: above this many tables the picture groups products and tables into their domains
GROUP_OVER = 100
#: above this many consumers a grouped picture counts them on the domains they read
CONSUMER_NODES_UP_TO = 50


def focus(graph: Any, *, domain: str | None = None, consumer: str | None = None) -> Any:
    """The part of ``graph`` about one domain (its products and tables, who reads them, the
    tables they derive from or feed) and/or one consumer (what it reads or asks for, and
    where that lives). CatalogError naming the valid ones for an unknown name."""
    keep: set[str] | None = None
    for kind, name in (("domain", domain), ("consumer", consumer)):
        if name is None:
            continue
        node = f"{kind}:{name}"
        if node not in graph:
            names = sorted(d["label"].split(" ")[0] for _, d in _nodes(graph, kind))
            raise CatalogError(
                f"{kind} '{name}' is not in the mesh ({kind}s: {', '.join(names[:20])}"
                f"{', ...' if len(names) > 20 else ''})",
                hint=f"'meshsim {'domains' if kind == 'domain' else 'access'}' lists them",
            )
        found = _around_domain(graph, node) if kind == "domain" else _around_consumer(graph, node)
        keep = found if keep is None else keep & found
    return graph if keep is None else graph.subgraph(keep).copy()


def _nodes(graph: Any, kind: str) -> list[tuple[str, Any]]:
    return [(n, d) for n, d in graph.nodes(data=True) if d["kind"] == kind]


def _around_domain(graph: Any, node: str) -> set[str]:
    products = set(graph.successors(node))
    tables = {t for p in products for t in graph.successors(p)}
    lineage = {n for t in tables for n in [*graph.predecessors(t), *graph.successors(t)]}
    readers = {n for n in lineage | products if graph.nodes[n]["kind"] == "consumer"}
    linked = {n for n in lineage if graph.nodes[n]["kind"] == "table"}
    return {node} | products | tables | readers | linked


def _around_consumer(graph: Any, node: str) -> set[str]:
    reached = set(graph.successors(node))
    owners = {p for n in reached for p in graph.predecessors(n) if n.startswith("table:")}
    owners = {n for n in owners if graph.nodes[n]["kind"] == "product"}
    products = owners | {n for n in reached if graph.nodes[n]["kind"] == "product"}
    domains = {d for p in products for d in graph.predecessors(p)}
    domains = {d for d in domains if graph.nodes[d]["kind"] == "domain"}
    return {node} | reached | products | domains


def by_domain(graph: Any) -> Any:
    """One node per domain (its products, tables and readers counted in its label), the
    consumers' reads as edges to the domains (or, past :data:`CONSUMER_NODES_UP_TO`
    consumers, counted on each domain) and lineage between domains."""
    import networkx as nx

    owner = {}
    for domain, _ in _nodes(graph, "domain"):
        for product in graph.successors(domain):
            owner[product] = domain
            for table in graph.successors(product):
                owner[table] = domain
    consumers = _nodes(graph, "consumer")
    draw_consumers = len(consumers) <= CONSUMER_NODES_UP_TO
    reads: dict[tuple[str, str], set[str]] = {}
    derives: set[tuple[str, str]] = set()
    for source, target, data in graph.edges(data=True):
        if data["kind"] in ("grant", "subscription", "requested") and target in owner:
            reads.setdefault((source, owner[target]), set()).add(target)
        elif data["kind"] == "derives" and owner.get(source) != owner.get(target):
            derives.add((owner[source], owner[target]))
    grouped = nx.DiGraph()
    for domain, data in _nodes(graph, "domain"):
        products = list(graph.successors(domain))
        tables = sum(1 for p in products for _ in graph.successors(p))
        readers = len({c for c, d in reads if d == domain})
        label = f"{data['label']}: {len(products)} products, {tables} tables, {readers} readers"
        grouped.add_node(domain, kind="domain", label=label, layer=0)
    if draw_consumers:
        for consumer, data in consumers:
            grouped.add_node(consumer, kind="consumer", label=data["label"], layer=3)
        for (consumer, domain), read in reads.items():
            grouped.add_edge(consumer, domain, kind="grant", label=f"{len(read)} tables")
    for source, target in sorted(derives):
        grouped.add_edge(source, target, kind="derives", label="")
    return grouped


def readable(graph: Any, *, group: bool | None = None) -> Any:
    """``graph`` as it is, or grouped by domain (:func:`by_domain`): by default when it has
    more than :data:`GROUP_OVER` tables."""
    tables = len(_nodes(graph, "table"))
    return by_domain(graph) if (tables > GROUP_OVER if group is None else group) else graph


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
        products = [p for p in graph.successors(node) if graph.nodes[p]["kind"] == "product"]
        if not products:  # a domain drawn as one node (grouped), or one with no products
            lines.append(f"  {_mermaid_id(node)}[{_mermaid_label(data['label'])}]")
            continue
        lines.append(f"  subgraph {_mermaid_id(node)}[{_mermaid_label(data['label'])}]")
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
