"""What an exported artefact lets each consumer see, compared with meshsim's access matrix.

Each test module reads its target's artefact back into :class:`Seen` cells, independently of
the exporter's code; :func:`check_against_matrix` then asserts that the artefact never shows
more than meshsim does (no raw value meshsim masks or denies, no unfiltered rows meshsim
filters) and, where the target can express it, exactly as much.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshsim.system import SYSTEM_DOMAIN


@dataclass
class Seen:
    raw: set[str] = field(default_factory=set)  # columns shown as they are
    masked: set[str] = field(default_factory=set)  # columns shown through a mask (or NULL)
    filtered: bool = False  # rows limited by a predicate


def check_against_matrix(
    mesh,
    seen: dict[tuple[str, str], Seen],
    *,
    withheld: set[tuple[str, str]] = frozenset(),
    masks_expressible: bool = True,
) -> int:
    """Assert the artefact's cells against the matrix; returns how many cells were compared."""
    compared = 0
    for cell in mesh.access():
        if cell.table.split(".")[0] == SYSTEM_DOMAIN:
            continue
        key = (cell.consumer, cell.table)
        got = seen.get(key)
        full = {c.column for c in cell.columns if c.state == "full"}
        masked = {c.column for c in cell.columns if c.state == "masked"}
        if not cell.granted:
            assert got is None or not (got.raw or got.masked), f"{key}: shown but not granted"
            continue
        if got is None:
            assert key in withheld, f"{key}: granted by meshsim, missing and not reported"
            continue
        compared += 1
        assert got.raw <= full, f"{key}: {got.raw - full} shown raw, meshsim does not"
        assert got.masked <= masked, f"{key}: {got.masked - masked} masked, meshsim does not"
        assert got.filtered == cell.filtered, (
            f"{key}: filtered {got.filtered}, meshsim {cell.filtered}"
        )
        assert full <= got.raw, f"{key}: {full - got.raw} missing"
        if masks_expressible:
            assert got.masked == masked, f"{key}: masks {got.masked} instead of {masked}"
        else:
            assert not got.masked
    return compared


def spec_governance(mesh_dir):
    """The governance of a mesh spec folder (its policies only, no workspace), each domain at
    ``s3://b/<domain>``: for tests that edit a copy of the example mesh."""
    from meshsim.platforms.governance import Governance
    from meshsim.policy.access import access_matrix
    from meshsim.spec.loader import load_mesh

    spec = load_mesh(mesh_dir)
    domains = {t.domain for t in spec.tables()}
    return Governance(spec, tuple(access_matrix(spec)), {d: f"s3://b/{d}" for d in domains})
