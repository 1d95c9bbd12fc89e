"""OpenLineage run events: START then COMPLETE or FAIL for every derived build and producer
write, with schema, version, column lineage and quality facets, written to the workspace's
JSON-lines file and posted to ``OPENLINEAGE_URL``; a failing endpoint is a warning."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError
from meshsim.lineage.events import Assertion
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run
from tests.lineage.conftest import derive
from tests.lineage.olmodels import rebuilt

QUERY = (
    "SELECT region, sum(amount) AS total FROM shop.orders "
    "WHERE ordered_on IS NOT NULL GROUP BY region"
)


class Warnings:
    """A console that keeps the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def table(self, *args: object, **kwargs: object) -> None:
        pass

    def progress(self, *args: object, **kwargs: object):
        from meshsim.console import NullConsole

        return NullConsole().progress(*args, **kwargs)


def _events(ws: Path) -> list[dict]:
    lines = (ws / "governance" / "lineage" / "events.jsonl").read_text().splitlines()
    for line in lines:
        rebuilt(line)  # each one is an event of the client's models, field for field
    return [json.loads(line) for line in lines]


def _built(mesh_dir: Path, ws: Path) -> Path:
    derive(mesh_dir, "totals", QUERY, {"region": "varchar", "total": "decimal(38,2)"})
    Mesh.build(mesh_dir, ws).close()
    return ws


def _new_orders():
    import pyarrow as pa

    return pa.table(
        {
            "order_id": pa.array([1001], pa.int64()),
            "customer_email": ["new@example.com"],
            "region": ["EU"],
            "amount": pa.array([Decimal("9.99")], pa.decimal128(10, 2)),
            "ordered_on": [date(2026, 11, 30)],
        }
    )


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A local OpenLineage endpoint on a random port: its URL and what it received."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_derived_build_emits_start_and_complete_with_column_lineage(
    marketing: Path, tmp_path: Path
):
    events = _events(_built(marketing, tmp_path / "ws"))
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "build.marketing.totals"),
        ("COMPLETE", "build.marketing.totals"),
    ]
    start, complete = events
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"]["namespace"] == "meshsim://my_mesh"
    assert complete["job"]["facets"]["sql"]["query"] == QUERY
    (read,) = complete["inputs"]
    assert (read["name"], read["facets"]["version"]["datasetVersion"]) == ("shop.orders", "0")
    (out,) = complete["outputs"]
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["region", "total"]
    assert out["facets"]["version"]["datasetVersion"] == "0"
    assert "version" not in start["outputs"][0]["facets"]  # not written yet at START
    lineage = out["facets"]["columnLineage"]
    assert lineage["fields"] == {
        "region": {
            "inputFields": [
                {
                    "namespace": "meshsim://my_mesh",
                    "name": "shop.orders",
                    "field": "region",
                    "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                }
            ]
        },
        "total": {
            "inputFields": [
                {
                    "namespace": "meshsim://my_mesh",
                    "name": "shop.orders",
                    "field": "amount",
                    "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}],
                }
            ]
        },
    }
    assert lineage["dataset"] == [  # read by the WHERE only
        {
            "namespace": "meshsim://my_mesh",
            "name": "shop.orders",
            "field": "ordered_on",
            "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}],
        }
    ]


def test_an_unchanged_derived_product_is_not_a_run(marketing: Path, tmp_path: Path):
    ws = _built(marketing, tmp_path / "ws")
    Mesh.build(marketing, ws).close()
    assert len(_events(ws)) == 2


def test_a_failing_derivation_emits_fail_and_the_build_error_stays(marketing: Path, tmp_path: Path):
    derive(marketing, "broken", QUERY, {"region": "varchar", "missing": "bigint"})
    with pytest.raises(MeshsimError, match="declared column 'missing' is not in the query"):
        Mesh.build(marketing, tmp_path / "ws")
    events = _events(tmp_path / "ws")
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    message = events[1]["run"]["facets"]["errorMessage"]["message"]
    assert "declared column 'missing' is not in the query's result" in message


def test_a_producer_write_emits_start_and_complete(marketing: Path, tmp_path: Path):
    ws = _built(marketing, tmp_path / "ws")
    with Mesh.open(ws) as mesh:
        result = mesh.write("shop.orders", _new_orders(), mode="append")
    write_events = [e for e in _events(ws) if e["job"]["name"] == "append.shop.orders"]
    assert [e["eventType"] for e in write_events] == ["START", "COMPLETE"]
    (out,) = write_events[1]["outputs"]
    assert out["facets"]["version"]["datasetVersion"] == str(result.version)
    assert write_events[1]["job"]["facets"]["jobType"]["jobType"] == "WRITE"


def test_a_refused_write_emits_fail(marketing: Path, tmp_path: Path):
    ws = _built(marketing, tmp_path / "ws")
    with Mesh.open(ws) as mesh, pytest.raises(MeshsimError):
        mesh.write("shop.orders", _new_orders().drop_columns(["region"]), mode="append")
    write_events = [e for e in _events(ws) if e["job"]["name"] == "append.shop.orders"]
    assert [e["eventType"] for e in write_events] == ["START", "FAIL"]


def test_events_reach_the_http_endpoint(marketing: Path, tmp_path: Path, receiver, monkeypatch):
    url, received = receiver
    ws = _built(marketing, tmp_path / "ws")
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    console = Warnings()
    with Mesh.open(ws, console=console) as mesh:
        mesh.write("shop.orders", _new_orders(), mode="append")
    assert console.warnings == []
    written = [e for e in _events(ws) if e["job"]["name"] == "append.shop.orders"]
    assert [path for path, _ in received] == ["/api/v1/lineage", "/api/v1/lineage"]
    assert [event for _, event in received] == written


def test_a_failing_endpoint_is_a_warning_and_the_file_keeps_the_events(
    marketing: Path, tmp_path: Path, capsys, monkeypatch
):
    import socket

    ws = _built(marketing, tmp_path / "ws")
    data = tmp_path / "new.csv"
    data.write_text(
        "order_id,customer_email,region,amount,ordered_on\n1001,a@example.com,EU,9.99,2026-11-30\n"
    )
    # a port nothing listens on: held (bound, not listening) until the write is done, so that
    # no other process (another pytest-xdist worker's server, a kernel) takes it meanwhile
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
        code, out, err = run(
            capsys, "write", "shop.orders", "--from", str(data), "--workspace", str(ws)
        )
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count(f"OpenLineage endpoint http://127.0.0.1:{port} failed") == 1  # once
    assert "events are in" in err
    written = [e["eventType"] for e in _events(ws) if e["job"]["name"] == "append.shop.orders"]
    assert written == ["START", "COMPLETE"]


def test_check_runs_carry_quality_assertions(marketing: Path, tmp_path: Path):
    ws = _built(marketing, tmp_path / "ws")
    with Mesh.open(ws) as mesh:
        table = mesh.spec.table("shop.orders")
        assert table is not None
        mesh.lineage_events.emit_check_run(
            table,
            0,
            [
                Assertion("not_null", True, column="order_id", severity="error"),
                Assertion("unique", False, column="order_id", name="keys", actual="2"),
            ],
        )
    checks = [e for e in _events(ws) if e["job"]["name"] == "check.shop.orders"]
    assert [e["eventType"] for e in checks] == ["START", "COMPLETE"]
    (checked,) = checks[1]["inputs"]
    assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions == [
        {
            "assertion": "not_null",
            "success": True,
            "column": "order_id",
            "severity": "error",
            "params": {},
        },
        {
            "assertion": "unique",
            "success": False,
            "column": "order_id",
            "name": "keys",
            "actual": "2",
            "params": {},
        },
    ]


def test_without_the_client_a_build_warns_once_and_succeeds(
    marketing: Path, tmp_path: Path, monkeypatch
):
    import sys

    for name in [m for m in sys.modules if m == "openlineage" or m.startswith("openlineage.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "openlineage", None)
    derive(marketing, "totals", QUERY, {"region": "varchar", "total": "decimal(38,2)"})
    console = Warnings()
    Mesh.build(marketing, tmp_path / "ws", console=console).close()
    assert console.warnings == [
        "no OpenLineage events are written: openlineage-python is not installed "
        "(pip install 'meshsim[lineage]')"
    ]


def test_openlineage_disabled_emits_nothing(marketing: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    ws = _built(marketing, tmp_path / "ws")
    assert not (ws / "governance" / "lineage" / "events.jsonl").exists()


def test_an_endpoint_url_the_client_refuses_costs_only_the_endpoint(
    marketing: Path, tmp_path: Path, monkeypatch
):
    ws = _built(marketing, tmp_path / "ws")
    monkeypatch.setenv("OPENLINEAGE_URL", "ftp://[not a host")
    console = Warnings()
    with Mesh.open(ws, console=console) as mesh:
        mesh.write("shop.orders", _new_orders(), mode="append")
    (warning,) = console.warnings
    assert warning.startswith("OpenLineage endpoint ftp://[not a host cannot be used (")
    written = [e["eventType"] for e in _events(ws) if e["job"]["name"] == "append.shop.orders"]
    assert written == ["START", "COMPLETE"]


def test_meshsim_check_emits_a_check_run_per_table(workspace: Path):
    # the seam wired at the merge: every check run (meshsim check, and the gates) is an
    # OpenLineage run of its table with the rules' results as assertions
    ws = workspace
    with Mesh.open(ws) as mesh:
        run = mesh.check("sales.order_history")
        checked = {r.table for r in run.results}
    assert checked, "the test mesh has quality rules"
    for ref in checked:
        events = [e for e in _events(ws) if e["job"]["name"] == f"check.{ref}"]
        assert [e["eventType"] for e in events][-2:] == ["START", "COMPLETE"]
        facet = events[-1]["inputs"][0]["inputFacets"]["dataQualityAssertions"]
        assert {a["assertion"] for a in facet["assertions"]} == {
            r.kind for r in run.results if r.table == ref
        }
