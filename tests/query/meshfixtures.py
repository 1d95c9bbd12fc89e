from __future__ import annotations

import pytest

from meshsim.errors import QueryError
from meshsim.query.audit import MemoryAuditSink
from meshsim.query.session import GovernedEngine
from tests.query.meshdata import MESH_KEY, MeshData, build


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> MeshData:
    return build(tmp_path_factory.mktemp("mesh"))


def make_engine(
    mesh: MeshData, audit: MemoryAuditSink | None = None, **kwargs
) -> tuple[GovernedEngine, MemoryAuditSink]:
    """A governed engine over the test mesh, auditing into ``audit`` (a new sink by default)."""
    audit = audit if audit is not None else MemoryAuditSink()
    kwargs.setdefault("timeout_s", 10)
    engine = GovernedEngine(
        mesh.spec,
        locate=mesh.path,
        mesh_key=MESH_KEY,
        allowed_paths=[str(mesh.root)],
        audit=audit,
        **kwargs,
    )
    return engine, audit


@pytest.fixture(scope="session")
def audit() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture(scope="session")
def engine(mesh: MeshData, audit: MemoryAuditSink):
    eng, _ = make_engine(mesh, audit)
    yield eng
    eng.close()


@pytest.fixture
def run(engine: GovernedEngine):
    def _run(consumer: str, sql: str, params=None):
        return engine.session(consumer).sql(sql, params)

    _run.engine = engine  # type: ignore[attr-defined]
    return _run


def refused(run, consumer: str, sql: str, match: str | None = None) -> QueryError:
    """The query is refused by meshsim's rules, and audited once, as refused (an engine
    failure is not a refusal)."""
    records = run.engine.audit.records
    before = len(records)
    with pytest.raises(QueryError, match=match) as info:
        run(consumer, sql)
    assert len(records) == before + 1, "every attempt is audited once"
    assert records[-1].decision == "refused", (records[-1].decision, info.value.message)
    assert records[-1].sql == sql and records[-1].consumer == consumer
    return info.value
