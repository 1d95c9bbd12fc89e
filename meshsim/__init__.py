"""meshsim: a local lakehouse data-mesh simulator.

>>> import meshsim
>>> mesh = meshsim.open("meshsim-workspace")          # doctest: +SKIP
>>> analyst = mesh.session("eu_marketing_analyst")  # doctest: +SKIP
>>> analyst.sql("SELECT count(*) FROM customer.customer")  # doctest: +SKIP

Heavy dependencies (duckdb, deltalake, pyarrow) are imported only when first needed, so
``import meshsim`` and ``meshsim --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from meshsim.mesh import Mesh

__all__ = ["Mesh", "MeshsimError", "open", "__version__"]


def open(workspace: str | None = None, *, mesh: str | None = None) -> Mesh:  # noqa: A001
    """Open a built workspace (``$MESHSIM_WORKSPACE`` or ``./meshsim-workspace`` by default)."""
    from meshsim.mesh import Mesh

    return Mesh.open(workspace, mesh_dir=mesh)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext meshsim``: the ``%meshsim`` and ``%%meshsql`` magics (:mod:`meshsim.magics`,
    imported only now, so that ``import meshsim`` never imports IPython)."""
    from meshsim.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from meshsim.magics import unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "Mesh":
        from meshsim.mesh import Mesh

        return Mesh
    raise AttributeError(name)
