"""Producers write: new Delta versions of a domain's tables, published for consumers at once.

- :mod:`meshsim.produce.inputs` reads a producer's files (csv, parquet, json, ndjson) into Arrow
  through DuckDB and checks them against the table's declared schema, every mismatch at once.
- :mod:`meshsim.produce.where` parses and checks a ``--where`` predicate with sqlglot.
- :mod:`meshsim.produce.writes` runs writes, deletes and maintenance (optimize, vacuum) and
  publishes the new versions: it moves the tables' pins in ``workspace.json`` in one step
  (:mod:`meshsim.pins`) and records the publication in the catalog.

Who may write a table: its product's owner or its domain's owner team, checked against the OS
user when the mesh binds them (``owner_os_users``, :mod:`meshsim.identity`).
"""
