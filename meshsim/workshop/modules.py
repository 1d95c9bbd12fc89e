"""The workshop's modules and the known state each one starts from.

Every module starts from a fresh copy of the example mesh (the repository's ``domains/``) built
into its own workspace, so modules can be done in any order and a student's edits in one never
leak into another. The copies live under ``MESHSIM_WORKSHOP_DIR`` (default ``workshop-runs``
at the top of the repository).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError, unknown_name_message

if TYPE_CHECKING:
    from meshsim.mesh import Mesh

#: Scale factor of the workshop's TPC-H data: small enough to build in seconds.
WORKSHOP_SCALE = 0.01
ENV_DIR = "MESHSIM_WORKSHOP_DIR"


@dataclass(frozen=True)
class Module:
    number: int
    title: str
    notebook: str
    minutes: int

    @property
    def solutions(self) -> str:
        return f"solutions/{self.notebook}"


MODULES: tuple[Module, ...] = (
    Module(0, "What a data mesh is", "00-what-is-a-data-mesh.ipynb", 20),
    Module(1, "Producer: publish a data product", "01-producer.ipynb", 30),
    Module(2, "Central governance: catalog, tags and grants", "02-governance.ipynb", 30),
    Module(3, "Consumer: discover, request, query", "03-consumer.ipynb", 30),
    Module(4, "Fine-grained access: row filters, masks, audit", "04-fine-grained-access.ipynb", 35),
    Module(5, "Producer updates: appends, upserts, time travel", "05-producer-updates.ipynb", 30),
    Module(6, "Consumer becomes producer: derived products", "06-derived-products.ipynb", 40),
    Module(7, "Performance: what governance costs", "07-performance.ipynb", 25),
)

_current: dict[str, Any] = {}


def module(number: int | str) -> Module:
    """The module numbered ``number`` (``3`` or ``"3"``)."""
    for candidate in MODULES:
        if str(candidate.number) == str(number).strip():
            return candidate
    raise MeshsimError(
        unknown_name_message("workshop module", str(number), [str(m.number) for m in MODULES])
    )


def example_mesh() -> Path:
    """The example mesh the workshop copies: the repository's ``domains/`` folder."""
    root = Path(__file__).resolve().parent.parent.parent / "domains"
    if not (root / "mesh.yaml").is_file():
        raise MeshsimError(
            f"the workshop uses the repository's example mesh 'domains/', which is not next to "
            f"this installation of meshsim ('{root}')",
            hint="run the workshop from a clone of the meshsim repository",
        )
    return root


def runs_dir() -> Path:
    """Where the modules' workspaces live: ``MESHSIM_WORKSHOP_DIR``, else ``workshop-runs`` at
    the top of the repository (the same folder whichever notebook folder a kernel runs in)."""
    configured = os.environ.get(ENV_DIR)
    if configured:
        return Path(configured).expanduser().resolve()
    return example_mesh().parent / "workshop-runs"


def start(number: int | str, *, scale: float = WORKSHOP_SCALE) -> Mesh:
    """Module ``number``'s known state: a fresh copy of the example mesh, built; returns the
    :class:`~meshsim.mesh.Mesh` and remembers it for :func:`meshsim.workshop.check`.

    Starting a module again discards what was done in it before, also in another notebook
    (or kernel) that started the same module: work on one module in one notebook at a time.
    """
    from meshsim.mesh import Mesh

    chosen = module(number)
    home = runs_dir() / f"module-{chosen.number}"
    previous = _current.pop("mesh", None)
    if previous is not None:
        previous.close()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    mesh_dir = home / "mesh"
    shutil.copytree(example_mesh(), mesh_dir)
    mesh = Mesh.build(mesh_dir, home / "workspace", scale=scale)
    _current["mesh"] = mesh
    _current["module"] = chosen.number
    _connect_magics(mesh)
    return mesh


def _connect_magics(mesh: Mesh) -> None:
    """Point ``%%meshsql`` and ``%meshsim`` at the module's workspace, when they are loaded."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from meshsim.magics import Connection

    for magics in shell.magics_manager.registry.values():
        connection = getattr(magics, "connection", None)
        if isinstance(connection, Connection):
            root = mesh.workspace.root.resolve()
            connection.workspace = str(root)
            connection.meshes[root] = mesh


def current_module() -> int | None:
    """The number of the module started last in this Python session."""
    return _current.get("module")


def current() -> Mesh:
    """The mesh of the module started last (what the checker inspects)."""
    mesh = _current.get("mesh")
    if mesh is None:
        raise MeshsimError(
            "no workshop module has been started in this Python session",
            hint="run workshop.start(N) at the top of the module's notebook",
        )
    return mesh
