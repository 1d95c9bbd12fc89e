from __future__ import annotations

from tests.query.meshfixtures import audit, engine, mesh, run  # noqa: F401  (shared fixtures)
