"""Data contracts: a product as an Open Data Contract Standard (ODCS v3) document, and the
changes between two versions of a product (see ``docs/CONTRACTS.md``).

* :mod:`.odcs` exports a product spec as a contract, :mod:`.reader` reads one back, losslessly;
* :mod:`.quality` maps meshsim's quality rules to ODCS quality checks and back;
* :mod:`.diff` lists the changes between two versions, each breaking or not;
* :mod:`.impact` names who a breaking change would break: subscribers and derived products.

The ODCS models come from the ``open-data-contract-standard`` package, imported here only.
"""
