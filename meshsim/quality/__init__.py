"""Quality rules at run time: each rule of a product compiled to SQL and run over an exact
Delta snapshot (``meshsim check``), and the gates that run them before a new version of a
product becomes visible (``build``, ``write``, ``publish``). The rules' YAML shape is
:mod:`meshsim.spec.quality`; ``docs/QUALITY.md`` says what each kind checks.

- :mod:`.bound`: a rule with its table, name and columns resolved (shared with the lint);
- :mod:`.compile`: each kind as a syntax tree of the query of its failing rows;
- :mod:`.runner`: the rules executed on DuckDB at given table versions;
- :mod:`.results`: the typed results (also what an OpenLineage emitter reads);
- :mod:`.samples`: sample keys as a viewer may see them;
- :mod:`.gate`: the gates of build, write and publish.
"""
