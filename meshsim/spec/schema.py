"""JSON Schemas of the spec files, for editors (``meshsim schema``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from meshsim.errors import MeshsimError, unknown_name_message
from meshsim.spec.models import DomainFile, MeshFile, Policies, Product

SCHEMAS: dict[str, type[BaseModel]] = {
    "mesh": MeshFile,
    "domain": DomainFile,
    "product": Product,
    "policies": Policies,
}


def json_schemas(which: str = "all") -> dict[str, Any]:
    """One schema, or all of them keyed by file kind.

    >>> json_schemas("domain")["title"]
    'DomainFile'
    """
    if which == "all":
        return {name: model.model_json_schema(by_alias=True) for name, model in SCHEMAS.items()}
    if which not in SCHEMAS:
        raise MeshsimError(unknown_name_message("schema", which, [*SCHEMAS, "all"]))
    return SCHEMAS[which].model_json_schema(by_alias=True)
