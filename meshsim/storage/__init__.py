"""Storage: Delta tables on the local file system.

- :mod:`meshsim.storage.delta` is the only module that imports ``deltalake``: writes, merges,
  deletes, history, maintenance, version checks and type coercions.
- :mod:`meshsim.storage.snapshot` turns a table version into a :class:`Snapshot` (schema, files,
  partition values, statistics) without reading data, and refuses what it cannot read exactly.
- :mod:`meshsim.storage.scan` binds a snapshot to DuckDB as a sqlglot syntax tree.

Nothing here is imported by ``import meshsim``; heavy dependencies load on first use.
"""
