"""The exercise checker: ``workshop.check("3.2", answer)`` says right, or what to look at.

Each exercise is a function registered with :func:`exercise`; it receives the student's answer
and the mesh of the module started last, computes the expected answer from that mesh through the
facade (never a hard-coded copy that could drift from what meshsim does) and returns a
:class:`Verdict`. A wrong answer is a verdict, not an exception: a notebook cell never fails
because a student is still learning.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError, closest

if TYPE_CHECKING:
    from meshsim.mesh import Mesh


@dataclass(frozen=True)
class Verdict:
    exercise: str
    right: bool
    message: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        mark = "right" if self.right else "not yet"
        return f"{self.exercise}: {mark}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.right else "#9a6700"
        mark = "&#10004; right" if self.right else "&#10007; not yet"
        return (
            f'<div style="border-left:4px solid {colour};padding:4px 8px">'
            f"<b>{html.escape(self.exercise)}</b>: <b style='color:{colour}'>{mark}</b>: "
            f"{html.escape(self.message)}</div>"
        )


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    checker: Callable[[Any, Mesh], Verdict | str | None]


_EXERCISES: dict[str, Exercise] = {}


def exercise(exercise_id: str, title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a checker: it returns ``None`` (right), a hint (wrong) or a :class:`Verdict`."""

    def register(checker: Callable[..., Any]) -> Callable[..., Any]:
        if exercise_id in _EXERCISES:
            raise ValueError(f"exercise {exercise_id} is registered twice")
        _EXERCISES[exercise_id] = Exercise(exercise_id, title, checker)
        return checker

    return register


def exercises() -> list[Exercise]:
    _load()
    return sorted(_EXERCISES.values(), key=lambda e: tuple(int(p) for p in e.id.split(".")))


def _load() -> None:
    import meshsim.workshop.exercises  # noqa: F401 - registers the checkers


def check(exercise_id: str, answer: Any) -> Verdict:
    """Check ``answer`` to exercise ``exercise_id`` (``"3.2"``) against the module's mesh."""
    from meshsim.workshop.modules import current

    _load()
    key = str(exercise_id).strip()
    found = _EXERCISES.get(key)
    if found is None:
        guess = closest(key, list(_EXERCISES))
        known = ", ".join(e.id for e in exercises())
        hint = f"did you mean {guess}? " if guess else ""
        return Verdict(key, False, f"there is no exercise {key}; {hint}(exercises: {known})")
    if answer is ...:
        return Verdict(key, False, "replace the ... with your answer, then run the cell again")
    from meshsim.workshop.modules import current_module

    number = int(key.split(".")[0])
    started = current_module()
    if started is not None and started != number:
        return Verdict(
            key,
            False,
            f"exercise {key} belongs to module {number}, but module {started} was started last: "
            f"run workshop.start({number}) and the module's cells first",
        )
    try:
        mesh = current()
        outcome = found.checker(answer, mesh)
    except MeshsimError as exc:
        return Verdict(key, False, f"checking needs the module's mesh: {exc}")
    except Exception as exc:  # noqa: BLE001 - a student's odd answer is a verdict, never a crash
        return Verdict(key, False, f"this answer cannot be checked ({type(exc).__name__}): {exc}")
    if isinstance(outcome, Verdict):
        return outcome
    if outcome is None:
        return Verdict(key, True, found.title)
    return Verdict(key, False, outcome)


# --- helpers for checkers ----------------------------------------------------------------


def as_names(answer: Any) -> set[str] | None:
    """A set of names (lower case) from a string, or any iterable of strings; None if it is
    neither."""
    if isinstance(answer, str):
        return {part.strip().lower() for part in answer.replace(",", " ").split() if part.strip()}
    if isinstance(answer, Iterable):
        names = list(answer)
        if all(isinstance(name, str) for name in names):
            return {name.strip().lower() for name in names}
    return None


def as_number(answer: Any) -> int | None:
    """An integer from an int, a NumPy or Arrow integer scalar; None otherwise (bools too)."""
    if isinstance(answer, bool):
        return None
    as_py = getattr(answer, "as_py", None)
    if callable(as_py):
        answer = as_py()
    try:
        import operator

        return operator.index(answer)
    except TypeError:
        return None


def compare_names(answer: Any, expected: Iterable[str], what: str) -> str | None:
    """``None`` when ``answer`` names exactly ``expected``, else a hint saying how it differs
    (how many are missing or extra, never the whole answer)."""
    got = as_names(answer)
    if got is None:
        return f"give the {what} as a list of names, e.g. ['a', 'b']"
    want = {name.lower() for name in expected}
    missing, extra = want - got, got - want
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} {what} missing")
    if extra:
        parts.append(f"{len(extra)} that should not be there ({', '.join(sorted(extra))})")
    return "; ".join(parts)
