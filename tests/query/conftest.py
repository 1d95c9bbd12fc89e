from tests.query.meshfixtures import audit, engine, mesh, run  # noqa: F401  (shared fixtures)
