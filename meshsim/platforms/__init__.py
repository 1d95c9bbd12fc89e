"""Export a mesh's governance to the platforms teams move to: AWS Lake Formation
(:mod:`meshsim.platforms.lakeformation`), Databricks Unity Catalog
(:mod:`meshsim.platforms.unity`) and Trino's file-based access control
(:mod:`meshsim.platforms.trino`).

Every exporter reads the one answer meshsim's queries act on, the access matrix
(:meth:`meshsim.mesh.Mesh.access`: spec policies plus active subscriptions), through
:mod:`meshsim.platforms.governance`, and writes files; none needs a cloud SDK. What a target
cannot express is a :class:`~meshsim.platforms.governance.Limitation` with the safe alternative
the export took instead (which never grants more than meshsim does), listed in the export's plan.
"""

#: the export targets, as the command line names them
TARGETS = ("lakeformation", "unity-catalog", "trino")
