"""OpenLineage run events, with the ``openlineage-python`` client (the one module that imports
it, lazily: it is the ``lineage`` extra).

Every run meshsim does to a table (a derived product's build, a producer's write, a check run)
emits START, then COMPLETE or FAIL, with dataset facets: ``schema``, ``version`` (the Delta
version written), ``columnLineage`` (a derived product's column edges) and
``dataQualityAssertions`` (a check run's results). Events are appended to
``governance/lineage/events.jsonl`` in the workspace (the client's file transport) and, when
``OPENLINEAGE_URL`` is set, posted to it as the client's HTTP transport does
(``OPENLINEAGE_ENDPOINT``, ``OPENLINEAGE_API_KEY``; ``OPENLINEAGE_DISABLED=true`` turns
emission off).

Emission never stops or noticeably slows the run it describes: a transport that fails is a
warning on the console naming it (the file keeps every event the endpoint missed), and an
endpoint that failed once is not tried again by the same emitter. The client takes a while to
import (it brings requests and httpx), so a run imports it in a background thread while the
run works, and its START event (stamped with the time the run started) is written when the run
ends, just before COMPLETE or FAIL. A run killed midway thus leaves no event, as it leaves no
published version.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.lineage.model import ColumnEdge

if TYPE_CHECKING:
    from meshsim.spec.loader import TableSpec

EVENTS_FILE = "events.jsonl"
#: an endpoint gets this long per event: a build must not wait on an unreachable server
HTTP_TIMEOUT_S = 2.0
PRODUCER = "https://github.com/meshsim/meshsim"
_SUBTYPES = {"direct": "IDENTITY", "expression": "TRANSFORMATION", "aggregate": "AGGREGATION"}


@dataclass(frozen=True)
class Assertion:
    """One quality rule's result in a check run."""

    assertion: str  # the rule kind: not_null, unique, accepted_values, ...
    success: bool
    column: str | None = None
    name: str | None = None
    severity: str | None = None  # error | warn
    actual: str | None = None  # e.g. the failing row count


@dataclass(frozen=True)
class DatasetInfo:
    """A table as an OpenLineage dataset: its declared columns, the version a run read or
    wrote, and (outputs) its column lineage."""

    ref: str
    columns: tuple[tuple[str, str, str], ...] = ()  # name, type, description
    version: int | None = None
    lineage: tuple[ColumnEdge, ...] = ()
    assertions: tuple[Assertion, ...] = ()

    @classmethod
    def of(cls, table: TableSpec, **fields: Any) -> DatasetInfo:
        columns = tuple((c.name, c.type, c.description) for c in table.columns)
        return cls(ref=table.ref, columns=columns, **fields)


@dataclass
class RunRecord:
    """A run in progress: what its COMPLETE event says (outputs' versions are known only
    after the write)."""

    job: str
    run_id: str
    inputs: list[DatasetInfo]
    outputs: list[DatasetInfo]
    job_type: str
    sql: str | None = None
    versions: dict[str, int] = field(default_factory=dict)
    started: str = field(default_factory=lambda: _now())


class LineageEmitter:
    """Emits one workspace's OpenLineage events (``namespace``: the mesh's, for jobs and
    datasets alike)."""

    def __init__(
        self, directory: Path, namespace: str, warn: Callable[[str], None] | None = None
    ) -> None:
        self.directory = directory
        self.namespace = namespace
        self.warn = warn or (lambda text: None)
        #: every transport failure so far, as the warnings said them
        self.failures: list[str] = []
        self._transports: list[Any] | None = None
        self._http_down = False
        self._unavailable = False
        self._prefetch: threading.Thread | None = None

    @property
    def events_file(self) -> Path:
        return self.directory / EVENTS_FILE

    @contextmanager
    def run(
        self,
        job: str,
        *,
        outputs: Sequence[DatasetInfo],
        inputs: Sequence[DatasetInfo] = (),
        job_type: str = "BUILD",
        sql: str | None = None,
    ) -> Iterator[RunRecord]:
        """A run around the block: when it ends, START (stamped with the time it began) and
        COMPLETE, or FAIL (with the error) when it raises; the error itself goes on unchanged."""
        from uuid import uuid4

        record = RunRecord(job, str(uuid4()), list(inputs), list(outputs), job_type, sql)
        self._import_meanwhile()
        try:
            yield record
        except BaseException as exc:
            self._emit(record, "START")
            self._emit(record, "FAIL", error=exc)
            raise
        self._emit(record, "START")
        self._emit(record, "COMPLETE")

    def emit_check_run(
        self, table: TableSpec, version: int | None, assertions: Sequence[Assertion]
    ) -> None:
        """A check run of ``table`` at ``version``: START and COMPLETE, the results as the
        input dataset's ``dataQualityAssertions`` facet."""
        checked = DatasetInfo.of(table, version=version, assertions=tuple(assertions))
        with self.run(f"check.{table.ref}", inputs=[checked], outputs=(), job_type="CHECK"):
            pass

    # --- events -----------------------------------------------------------------------------

    def _import_meanwhile(self) -> None:
        """Import the client in a thread of its own, once, while the run works."""
        if self._prefetch is not None or _disabled():
            return
        self._prefetch = threading.Thread(target=_import_client, name="openlineage-import")
        self._prefetch.daemon = True
        self._prefetch.start()

    def _emit(self, record: RunRecord, state: str, error: BaseException | None = None) -> None:
        if _disabled():
            return
        if self._prefetch is not None:
            self._prefetch.join()  # never two threads importing the same modules at once
        if self._unavailable:
            return  # said once, when the first event could not be written
        try:
            transports = self._ready()
        except Exception as exc:  # noqa: BLE001 - a lineage problem never stops the run
            self._unavailable = True
            self._failed(f"no OpenLineage events are written: {_why(exc)}")
            return
        try:
            event = self.event(record, state, error)
        except Exception as exc:  # noqa: BLE001 - as above
            self._failed(f"OpenLineage event {state} of '{record.job}' not written: {_why(exc)}")
            return
        for name, transport in transports:
            if name != "file" and self._http_down:
                continue
            try:
                transport.emit(event)
            except Exception as exc:  # noqa: BLE001 - as above; an endpoint is said down once
                if name == "file":
                    self._failed(
                        f"OpenLineage event {state} of '{record.job}' not written to "
                        f"{self.events_file}: {_why(exc)}"
                    )
                else:
                    self._http_down = True
                    self._failed(
                        f"OpenLineage endpoint {name} failed ({_why(exc)}); this run's events "
                        f"are in {self.events_file} only"
                    )

    def _failed(self, message: str) -> None:
        self.failures.append(message)
        self.warn(message)

    def _ready(self) -> list[tuple[str, Any]]:
        """The transports: the workspace's file, and the HTTP endpoint when configured."""
        if self._transports is None:
            from openlineage.client.transport.file import FileConfig, FileTransport

            self.directory.mkdir(parents=True, exist_ok=True)
            file = FileTransport(FileConfig(log_file_path=str(self.events_file), append=True))
            transports: list[tuple[str, Any]] = [("file", file)]
            url = os.environ.get("OPENLINEAGE_URL")
            if url:
                try:
                    transports.append((url, _http_transport(url)))
                except Exception as exc:  # noqa: BLE001 - a bad URL costs the endpoint, not the file
                    self._http_down = True
                    self._failed(
                        f"OpenLineage endpoint {url} cannot be used ({_why(exc)}); events are "
                        f"in {self.events_file} only"
                    )
            self._transports = transports
        return self._transports

    def event(self, record: RunRecord, state: str, error: BaseException | None = None) -> Any:
        """The client's ``RunEvent`` of ``record`` in ``state`` (START, COMPLETE or FAIL)."""
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.facet_v2 import error_message_run, job_type_job, sql_job

        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="MESHSIM", jobType=record.job_type
            )
        }
        if record.sql:
            job_facets["sql"] = sql_job.SQLJobFacet(query=record.sql, dialect="duckdb")
        run_facets: dict[str, Any] = {}
        if error is not None:
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=message, programmingLanguage="python"
            )
        done = state == "COMPLETE"
        inputs = [
            InputDataset(
                namespace=self.namespace,
                name=d.ref,
                facets=self._facets(d, d.version),
                inputFacets=self._quality(d),
            )
            for d in record.inputs
        ]
        outputs = [
            OutputDataset(
                namespace=self.namespace,
                name=d.ref,
                facets=self._facets(d, record.versions.get(d.ref) if done else None),
            )
            for d in record.outputs
        ]
        return RunEvent(
            eventType=RunState[state],
            eventTime=record.started if state == "START" else _now(),
            run=Run(runId=record.run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=record.job, facets=job_facets),
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )

    def _facets(self, dataset: DatasetInfo, version: int | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

        facets: dict[str, Any] = {}
        if dataset.columns:
            fields = [
                schema_dataset.SchemaDatasetFacetFields(
                    name=name, type=kind, description=text or None, ordinal_position=index
                )
                for index, (name, kind, text) in enumerate(dataset.columns, start=1)
            ]
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
        if version is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(version)
            )
        if dataset.lineage:
            facets["columnLineage"] = self._column_lineage(dataset.lineage)
        return facets

    def _column_lineage(self, edges: Sequence[ColumnEdge]) -> Any:
        """Column edges as the ``columnLineage`` facet: per output field its DIRECT inputs,
        and the filter-only inputs as the dataset's INDIRECT ones."""
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        def field_of(edge: ColumnEdge) -> Any:
            if edge.kind == "filter":
                transformation = cl.Transformation(type="INDIRECT", subtype="FILTER")
            else:
                transformation = cl.Transformation(type="DIRECT", subtype=_SUBTYPES[edge.kind])
            return cl.InputField(
                namespace=self.namespace,
                name=edge.source.table,
                field=edge.source.column or "",
                transformations=[transformation],
            )

        fields: dict[str, Any] = {}
        for edge in edges:
            if edge.target.column is not None:
                entry = fields.setdefault(edge.target.column, cl.Fields(inputFields=[]))
                entry.inputFields.append(field_of(edge))
        indirect = [field_of(e) for e in edges if e.target.column is None]
        return cl.ColumnLineageDatasetFacet(fields=fields, dataset=indirect)

    def _quality(self, dataset: DatasetInfo) -> dict[str, Any]:
        if not dataset.assertions:
            return {}
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        assertions = [
            dq.Assertion(
                assertion=a.assertion,
                success=a.success,
                column=a.column,
                name=a.name,
                severity=a.severity,
                actual=a.actual,
            )
            for a in dataset.assertions
        ]
        return {
            "dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(assertions=assertions)
        }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _disabled() -> bool:
    return os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"


def _import_client() -> None:
    """What emitting needs of the client, imported; a failure is the emission's to report."""
    try:
        import openlineage.client.event_v2  # noqa: F401
        import openlineage.client.facet_v2  # noqa: F401
        import openlineage.client.transport.file  # noqa: F401
    except Exception:  # noqa: BLE001 - the emission imports again and says why
        pass


def _http_transport(url: str) -> Any:
    """The client's HTTP transport, configured from the environment as the client does, with
    a short timeout and no retries."""
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config: dict[str, Any] = {
        "url": url,
        "endpoint": os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        "timeout": HTTP_TIMEOUT_S,
        "retry": {"total": 0},
    }
    if api_key := os.environ.get("OPENLINEAGE_API_KEY"):
        config["auth"] = {"type": "api_key", "apiKey": api_key}
    return HttpTransport(HttpConfig.from_dict(config))


def _why(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("openlineage"):
        return "openlineage-python is not installed (pip install 'meshsim[lineage]')"
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def emitter_for(governance: Path, mesh_name: str, warn: Callable[[str], None]) -> LineageEmitter:
    """The emitter of a workspace whose governance folder is ``governance``."""
    return LineageEmitter(governance / "lineage", f"meshsim://{mesh_name}", warn)


@contextmanager
def derived_build_run(
    emitter: LineageEmitter, spec: Any, table: TableSpec, version_of: Callable[[str], int]
) -> Iterator[RunRecord]:
    """The run of one derived product's build: its inputs at the versions it reads, its
    column lineage on the output (left out, with a warning, if it cannot be computed)."""
    from meshsim.lineage.collect import table_column_edges
    from meshsim.sources.derived import derived_inputs
    from meshsim.spec.models import SqlSource

    source = table.table.source
    assert isinstance(source, SqlSource)
    try:
        edges = tuple(table_column_edges(spec, table))
    except Exception as exc:  # noqa: BLE001 - lineage never stops a build
        emitter.warn(f"the OpenLineage events of '{table.ref}' have no column lineage: {_why(exc)}")
        edges = ()
    inputs = [
        DatasetInfo.of(spec.table(ref), version=version_of(ref))
        for ref in derived_inputs(table)
        if spec.table(ref) is not None
    ]
    output = DatasetInfo.of(table, lineage=edges)
    with emitter.run(f"build.{table.ref}", inputs=inputs, outputs=[output], sql=source.sql) as run:
        yield run
