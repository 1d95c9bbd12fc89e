"""Listings page in SQLite: a page of requests or search hits reads only that page, and
shows how many there are in all."""

from __future__ import annotations

import json

from meshsim.catalog import models
from tests.cli.clihelpers import run

CONSUMERS = ("external_partner", "eu_marketing_analyst", "finance_analyst")


def _seed(catalog, count: int) -> None:
    with catalog.store.write() as con:
        con.executemany(
            "INSERT INTO requests (consumer, product, reason, tables, columns, state, created_at)"
            " VALUES (?, 'customer.customer_profiles', 'seeded', '[\"customer\"]', '[]',"
            " 'pending', '2026-03-01T12:00:00+00:00')",
            [(CONSUMERS[i % len(CONSUMERS)],) for i in range(count)],
        )


def _count_request_rows(monkeypatch) -> list[int]:
    made: list[int] = []
    original = models.Request.from_row.__func__

    def counted(cls, row):
        made.append(1)
        return original(cls, row)

    monkeypatch.setattr(models.Request, "from_row", classmethod(counted))
    return made


def test_a_page_of_requests_reads_only_that_page(catalog, monkeypatch):
    _seed(catalog, 300)
    made = _count_request_rows(monkeypatch)
    page = catalog.requests(pending=True, limit=5, offset=10)
    assert [r.id for r in page] == list(range(11, 16))
    assert len(made) == 5
    assert catalog.request_count(pending=True) == 300
    assert catalog.request_count(consumer="external_partner") == 100
    assert [r.id for r in catalog.requests(consumer="external_partner", limit=2, offset=1)] == [
        4,
        7,
    ]


def test_the_requests_command_pages_and_shows_the_total(capsys, cli_catalog, monkeypatch):
    _seed(cli_catalog, 50)
    made = _count_request_rows(monkeypatch)
    code, out, err = run(capsys, "requests", "--limit", "3", "--offset", "47", "--format", "json")
    assert code == 0, err
    assert [row["id"] for row in json.loads(out)] == [48, 49, 50]
    assert len(made) == 3
    assert "50" in err  # the page note names the total
    code, out, err = run(capsys, "requests", "--offset", "-1")
    assert code != 0 and "Error: Invalid value for '--offset'" in err and "Traceback" not in err


def test_search_pages_keep_their_ranks_and_the_total(capsys, cli_catalog):
    everything = cli_catalog.search("customer", limit=None)
    assert len(everything) > 6
    page = cli_catalog.search("customer", limit=3, offset=4)
    assert page == everything[4:7]
    assert [hit["rank"] for hit in page] == [5, 6, 7]
    assert cli_catalog.search_count("customer") == len(everything)
    code, out, err = run(capsys, "search", "customer", "--limit", "2", "--format", "json")
    assert code == 0, err
    assert [hit["ref"] for hit in json.loads(out)] == [hit["ref"] for hit in everything[:2]]
    assert str(len(everything)) in err


def _seed_approved(catalog, count: int) -> None:
    with catalog.store.write() as con:
        con.executemany(
            "INSERT INTO requests (consumer, product, reason, tables, columns, state, created_at,"
            " expires_at) VALUES (?, 'customer.customer_profiles', 'seeded', '[\"customer\"]',"
            " '[]', 'approved', '2026-03-01T12:00:00+00:00', ?)",
            [
                (CONSUMERS[i % len(CONSUMERS)], None if i % 4 else "2099-01-01T00:00:00+00:00")
                for i in range(count)
            ],
        )


def test_a_page_of_subscriptions_reads_only_that_page_then_the_declared_grants(
    catalog, monkeypatch
):
    """Review finding: a page of subscriptions read every approved request."""
    _seed_approved(catalog, 40)
    everything = catalog.subscriptions()
    requested = [row for row in everything if row["source"] == "request"]
    assert len(requested) == 40 and len(everything) > 40  # mesh.yaml declares grants too
    made = _count_request_rows(monkeypatch)
    assert catalog.subscriptions(limit=5, offset=10) == everything[10:15]
    assert len(made) == 5
    assert catalog.subscriptions(limit=4, offset=38) == everything[38:42]  # across the two
    assert catalog.subscriptions(limit=3, offset=41) == everything[41:44]  # grants only
    assert catalog.subscriptions(offset=len(everything)) == []
    assert catalog.subscription_count() == len(everything)
    mine = catalog.subscriptions("external_partner")
    assert catalog.subscriptions("external_partner", limit=2, offset=1) == mine[1:3]
    assert catalog.subscription_count("external_partner") == len(mine)


def test_the_subscriptions_command_pages_and_shows_the_total(capsys, cli_catalog):
    _seed_approved(cli_catalog, 30)
    total = len(cli_catalog.subscriptions())
    code, out, err = run(
        capsys, "subscriptions", "--limit", "3", "--offset", "28", "--format", "json"
    )
    assert code == 0, err
    expected = cli_catalog.subscriptions()[28:31]
    assert [(r["grant"], r["consumer"]) for r in json.loads(out)] == [
        (r["grant"], r["consumer"]) for r in expected
    ]
    assert err.strip() == f"rows 29-31 of {total} (--offset 31 for more)"


def test_a_page_of_the_access_matrix_resolves_only_its_tables(built_workspace, monkeypatch):
    """Review finding: ``access --limit 2`` resolved every consumer's access to every table."""
    from meshsim.mesh import Mesh

    with Mesh.open(built_workspace) as mesh:
        everything = mesh.access().cells()
        mine = mesh.access("eu_marketing_analyst").cells()
        resolved: list[str] = []
        served = Mesh._served

        def counting(self, access):
            resolved.append(f"{access.consumer} {access.table}")
            return served(self, access)

        monkeypatch.setattr(Mesh, "_served", counting)
        for offset in (0, 3, len(mine) - 2, len(mine) + 1, len(everything) - 1):
            resolved.clear()
            page = mesh.access_cells(limit=4, offset=offset)
            assert page == everything[offset : offset + 4]
            assert page.total == len(everything)
            assert resolved == list(dict.fromkeys(f"{r['consumer']} {r['table']}" for r in page))
        assert mesh.access_cells("eu_marketing_analyst", offset=5) == mine[5:]
        resolved.clear()
        assert mesh.access_cells(limit=3, offset=len(everything)) == []
        assert resolved == []


def test_show_pages_each_of_its_lists_with_their_totals(built_workspace, capsys):
    """Review finding: 'meshsim show' refused --limit/--offset and listed every subscriber."""
    from meshsim.mesh import Mesh

    ref = "customer.customer_profiles"
    with Mesh.open(built_workspace) as mesh:
        whole = mesh.show(ref, as_consumer="eu_marketing_analyst")
        page = mesh.show(ref, as_consumer="eu_marketing_analyst", limit=2, offset=1)
    assert whole.totals == {}
    for name in ("versions", "columns", "quality", "subscribers"):
        assert getattr(page, name) == getattr(whole, name)[1:3], name
        assert page.totals[name] == len(getattr(whole, name)), name
    assert len(whole.columns) > 3 and len(whole.subscribers) > 1
    ws = ["--workspace", str(built_workspace)]
    code, out, err = run(capsys, "show", ref, *ws, "--format", "json", "--limit", "1")
    assert code == 0, err
    assert len(json.loads(out)["columns"]) == 1
    assert f"columns: rows 1-1 of {len(whole.columns)}" in err
