"""An OpenLineage event read back into the client's own models (attrs classes with their
validators: a run id that is a UUID, an ISO event time with a time...): an event that
rebuilds, and serialises back to the very same JSON, is one the client's models describe
completely (a field they do not know would be lost on the way)."""

from __future__ import annotations

import json
from typing import Any


def rebuilt(line: str) -> Any:
    """The client's ``RunEvent`` of one JSON line; asserts it serialises back unchanged."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.serde import Serde

    data = json.loads(line)  # read apart below, so compared with a copy of its own
    event = RunEvent(
        eventType=RunState(data["eventType"]),
        eventTime=data["eventTime"],
        run=Run(runId=data["run"]["runId"], facets=_facets(data["run"]["facets"])),
        job=Job(
            namespace=data["job"]["namespace"],
            name=data["job"]["name"],
            facets=_facets(data["job"]["facets"]),
        ),
        inputs=[
            InputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=_facets(d["facets"]),
                inputFacets=_facets(d["inputFacets"]),
            )
            for d in data["inputs"]
        ],
        outputs=[
            OutputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=_facets(d["facets"]),
                outputFacets=_facets(d["outputFacets"]),
            )
            for d in data["outputs"]
        ],
        producer=data["producer"],
    )
    assert json.loads(Serde.to_json(event)) == json.loads(line)
    assert event.schemaURL == data["schemaURL"]
    return event


def _facets(facets: dict[str, Any]) -> dict[str, Any]:
    return {name: _facet(name, dict(value)) for name, value in facets.items()}


def _facet(name: str, value: dict[str, Any]) -> Any:
    from openlineage.client.facet_v2 import (
        column_lineage_dataset,
        data_quality_assertions_dataset,
        dataset_version_dataset,
        error_message_run,
        job_type_job,
        schema_dataset,
        sql_job,
    )

    producer = value.pop("_producer")
    schema_url = value.pop("_schemaURL")
    if name == "schema":
        facet: Any = schema_dataset.SchemaDatasetFacet(
            fields=[_schema_field(f) for f in value["fields"]], producer=producer
        )
    elif name == "version":
        facet = dataset_version_dataset.DatasetVersionDatasetFacet(**value, producer=producer)
    elif name == "columnLineage":
        cl = column_lineage_dataset
        facet = cl.ColumnLineageDatasetFacet(
            fields={
                out: cl.Fields(inputFields=[_input_field(i) for i in f["inputFields"]])
                for out, f in value["fields"].items()
            },
            dataset=[_input_field(i) for i in value["dataset"]],
            producer=producer,
        )
    elif name == "dataQualityAssertions":
        dq = data_quality_assertions_dataset
        facet = dq.DataQualityAssertionsDatasetFacet(
            assertions=[dq.Assertion(**a) for a in value["assertions"]], producer=producer
        )
    elif name == "jobType":
        facet = job_type_job.JobTypeJobFacet(**value, producer=producer)
    elif name == "sql":
        facet = sql_job.SQLJobFacet(**value, producer=producer)
    elif name == "errorMessage":
        facet = error_message_run.ErrorMessageRunFacet(**value, producer=producer)
    else:
        raise AssertionError(f"facet '{name}' is not one meshsim emits")
    assert facet._schemaURL == schema_url, name
    return facet


def _schema_field(value: dict[str, Any]) -> Any:
    from openlineage.client.facet_v2 import schema_dataset

    nested = [_schema_field(f) for f in value.pop("fields")]
    return schema_dataset.SchemaDatasetFacetFields(**value, fields=nested)


def _input_field(value: dict[str, Any]) -> Any:
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    transformations = [cl.Transformation(**t) for t in value.pop("transformations")]
    return cl.InputField(**value, transformations=transformations)
