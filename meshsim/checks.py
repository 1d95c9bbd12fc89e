"""Every check that can refuse a mesh, in one ordered tuple: ``meshsim validate`` runs it, and
``meshsim build`` runs it before it writes anything, so a layout validate accepts is one build
can write and publish, and a layout build refuses leaves the workspace as it was.

1. the lint (:mod:`meshsim.spec.lint`): names, references, tags, conditions, unprotected PII;
2. the publish gates (:mod:`meshsim.catalog.publish`): owner, description, classifications,
   protected columns, for every product;
3. the sources (:mod:`meshsim.spec.sources`): TPC-H columns and types, registered locations
   (read from their Delta log, never their data), data files of file sources;
4. derived products: their queries, inputs, the grants their domain needs, cycles;
5. the policies bound on DuckDB (:mod:`meshsim.policy.binding`) against the declared schemas,
   for the policies the lint found nothing wrong with;
6. descriptions still to be written (``TODO: describe``, as ``meshsim new`` leaves them), as
   warnings (:func:`meshsim.scaffold.placeholder_problems`).

A problem two checks find (a missing owner, unmasked PII) is reported once, by the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from meshsim.errors import PolicyError
from meshsim.spec.lint import Problem, lint
from meshsim.spec.loader import MeshSpec, line_of
from meshsim.spec.models import Policy

Check = Callable[[MeshSpec, Path | None, list[Problem]], list[Problem]]


def _lint(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    return lint(spec)


def _gates(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    from meshsim.catalog.publish import gate_findings

    problems = []
    for product in spec.products():
        try:
            findings = gate_findings(spec, product)
        except PolicyError as exc:  # a broken 'when': the gate cannot judge who sees what
            if not any(p.severity == "error" for p in found):
                problems.append(Problem("error", str(product.path), exc.message))
            continue
        for finding in findings:
            problems.append(
                Problem(
                    "error",
                    line_of(spec, product.path, finding.path),
                    f"product '{product.ref}' cannot be published: {finding.message}",
                    finding.subject,
                )
            )
    return problems


def _sources(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    from meshsim.spec.sources import check_sources

    return list(check_sources(spec, workspace))


def _policy_labels(spec: MeshSpec) -> list[str]:
    policies = spec.policies
    kinds: tuple[tuple[str, Sequence[Policy]], ...] = (
        ("grant", policies.grants),
        ("tag grant", policies.tag_grants),
        ("mask", policies.masks),
        ("row filter", policies.row_filters),
    )
    return [f"{kind} '{p.name or i}'" for kind, items in kinds for i, p in enumerate(items)]


def _bindings(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    from meshsim.policy.binding import check_policy_binding

    errors = [p.message for p in found if p.severity == "error"]
    reported = {
        label for label in _policy_labels(spec) if any(m.startswith(f"{label}:") for m in errors)
    }
    return check_policy_binding(spec, skip=reported)


def _derived(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    from meshsim.spec.sources import check_derived

    return list(check_derived(spec))


def _placeholders(spec: MeshSpec, workspace: Path | None, found: list[Problem]) -> list[Problem]:
    from meshsim.scaffold import placeholder_problems

    return list(placeholder_problems(spec))


CHECKS: tuple[Check, ...] = (_lint, _gates, _sources, _derived, _bindings, _placeholders)
#: the checks an edit of mesh.yaml can change the answer of (a what-if): not the file and
#: table sources, which read data and depend only on the product files (derived products
#: do depend on the grants their domain has)
POLICY_CHECKS: tuple[Check, ...] = (_lint, _gates, _derived, _bindings)


def check_mesh(
    spec: MeshSpec, workspace: str | Path | None = None, checks: tuple[Check, ...] = CHECKS
) -> list[Problem]:
    """Every problem of ``spec`` that ``checks`` find, errors and warnings. ``workspace`` is
    the workspace a build will write (registered locations may not lie in its other
    accounts)."""
    root = Path(workspace) if workspace is not None else None
    found: list[Problem] = []
    subjects: set[tuple[str, ...]] = set()
    for check in checks:
        for problem in check(spec, root, found):
            if problem.subject and problem.subject in subjects:
                continue
            subjects.add(problem.subject)
            found.append(problem)
    return found
