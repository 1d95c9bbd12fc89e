"""Several processes request and decide against one workspace at once: nothing is lost, and
each request is decided exactly once however many deciders race for it."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

from meshsim.catalog import Catalog
from meshsim.errors import CatalogError
from meshsim.spec.loader import load_mesh
from meshsim.workspace import Workspace
from tests.catalog.conftest import table_versions
from tests.conftest import EXAMPLE_MESH

PROCESSES = 4
REQUESTS_EACH = 8
CONSUMERS = ("eu_marketing_analyst", "finance_controller", "supply_planner", "external_partner")


def _catalog(root: str) -> Catalog:
    spec = load_mesh(EXAMPLE_MESH)
    return Catalog(Workspace(Path(root)), lambda: spec)


def _file_requests(args: tuple[str, int]) -> list[int]:
    root, worker = args
    catalog = _catalog(root)
    ids = []
    for index in range(REQUESTS_EACH):
        consumer = CONSUMERS[(worker + index) % len(CONSUMERS)]
        ids.append(catalog.request(consumer, "customer.customer_profiles", f"w{worker}-{index}").id)
        # an auto-approved one in between, so creations and decisions interleave
        catalog.request(consumer, "sales.order_history", f"w{worker}-{index}-auto")
    return ids


def _decide_all(args: tuple[str, int, list[int]]) -> dict[str, int]:
    root, worker, ids = args
    catalog = _catalog(root)
    won = Counter()
    order = ids if worker % 2 else list(reversed(ids))
    for request_id in order:
        for action in ("approve", "revoke"):
            try:
                if action == "approve":
                    catalog.approve(request_id, "customer-data", comment=f"w{worker}")
                else:
                    catalog.revoke(request_id, "governance_admin", comment=f"w{worker}")
                won[action] += 1
            except CatalogError as exc:
                assert "only a" in exc.message and "request can be" in exc.message, exc.message
    return dict(won)


def test_concurrent_requests_and_decisions_lose_nothing(tmp_path: Path):
    root = tmp_path / "ws"
    setup = _catalog(str(root))
    setup.publish_all(*table_versions(setup.spec))
    start = setup.revision()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        filed = pool.map(_file_requests, [(str(root), w) for w in range(PROCESSES)])
        ids = sorted(i for batch in filed for i in batch)
        won = pool.map(_decide_all, [(str(root), w, ids) for w in range(PROCESSES)])

    total = PROCESSES * REQUESTS_EACH
    assert len(set(ids)) == total
    requests = setup.requests()
    assert len(requests) == 2 * total
    states = Counter((r.product, r.state) for r in requests)
    assert states == {
        ("customer.customer_profiles", "revoked"): total,
        ("sales.order_history", "approved"): total,
    }
    assert sum(w.get("approve", 0) for w in won) == total  # each approved exactly once
    assert sum(w.get("revoke", 0) for w in won) == total
    transitions = Counter(e["transition"] for e in setup.audit() if e["kind"] == "decision")
    assert transitions == {
        "new->pending": 2 * total,
        "pending->approved": 2 * total,
        "approved->revoked": total,
    }
    # one revision per creation, per approval and per revocation
    assert setup.revision() == start + 2 * total + total + total
