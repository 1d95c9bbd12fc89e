"""One error hierarchy for meshsim.

Every error a user can cause is a :class:`MeshsimError`. Messages name the bad value, list
the valid ones, suggest the closest match and, where there is one, the next command to run.
The CLI prints ``Error: <message>`` and exits non-zero; nothing else catches these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``value``, if any is close enough to be a likely typo.

    >>> closest("eu_analist", ["eu_analyst", "finance_controller"])
    'eu_analyst'
    >>> closest("zzz", ["eu_analyst"]) is None
    True
    """
    matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(kind: str, value: str, choices: Iterable[str], hint: str = "") -> str:
    """``consumer 'x' is not defined; did you mean 'y'? (consumers: a, b)``.

    >>> print(unknown_name_message("consumer", "eu_analist", ["eu_analyst", "admin"]))
    consumer 'eu_analist' is not defined; did you mean 'eu_analyst'? (consumers: admin, eu_analyst)
    """
    choices = sorted(set(choices))
    message = f"{kind} '{value}' is not defined"
    guess = closest(value, choices)
    if guess:
        message += f"; did you mean '{guess}'?"
    listed = ", ".join(choices) if choices else "none"
    message += f" ({kind}s: {listed})"
    if hint:
        message += f"; {hint}"
    return message


class MeshsimError(Exception):
    """Base class of every error meshsim raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  next: {hint}")


class SpecError(MeshsimError):
    """A mesh spec file is missing, malformed or inconsistent.

    ``problems`` holds every problem found, so a user can fix them all at once.
    """

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the mesh spec:\n" + "\n".join(
                f"  - {p}" for p in problems
            )
        super().__init__(message, hint=hint)


class ContractError(SpecError):
    """A data contract cannot be read as a product: every key meshsim cannot represent and
    every value its spec refuses, named by its path in the contract (``file``, when known,
    heads the list)."""

    def __init__(
        self, problems: list[str], *, file: object = None, hint: str | None = None
    ) -> None:
        if file is None:
            super().__init__(problems, hint=hint)
            return
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        listed = "\n".join(f"  - {p}" for p in problems)
        MeshsimError.__init__(self, f"{count} in the contract {file}:\n{listed}", hint=hint)


class WorkspaceError(MeshsimError):
    """The workspace is missing, not built, or was built from another mesh."""


class StorageError(MeshsimError):
    """A Delta table cannot be read or written as asked."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        path: str | None = None,
        hint: str | None = None,
    ):
        self.table = table
        self.path = path
        super().__init__(message, hint=hint)


class UnsupportedFeatureError(StorageError):
    """A Delta table uses a reader feature meshsim does not implement.

    Raised instead of returning rows that could be wrong.
    """

    def __init__(self, table: str, feature: str, detail: str = "") -> None:
        self.feature = feature
        message = (
            f"table '{table}' uses the Delta reader feature '{feature}', which meshsim cannot "
            f"read correctly; refusing rather than returning wrong rows"
        )
        if detail:
            message += f" ({detail})"
        super().__init__(
            message,
            table=table,
            hint="rewrite the table without the feature in the engine that wrote it, then run "
            "'meshsim build' again",
        )


class IdentityError(MeshsimError):
    """The OS user running meshsim may not act as the principal it names (``--as``, ``--by``)."""

    def __init__(
        self,
        message: str,
        *,
        principal: str,
        os_user: str,
        allowed: tuple[str, ...],
        hint: str | None = None,
    ) -> None:
        self.principal = principal
        self.os_user = os_user
        self.allowed = allowed
        super().__init__(message, hint=hint)


class WriteError(MeshsimError):
    """A producer's write, delete or maintenance was refused before anything was written
    (bad input file, schema mismatch, bad ``--where``, no primary key, not the owner).

    ``problems`` holds every problem found, so a producer can fix them all at once.
    """

    def __init__(
        self,
        problems: list[str],
        *,
        table: str | None = None,
        hint: str | None = None,
        outcome: str = "nothing was written",
    ) -> None:
        self.problems = problems
        self.table = table
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems, {outcome}:\n" + "\n".join(
                f"  - {p}" for p in problems
            )
        super().__init__(message, hint=hint)

    def rolled_back(self, tables: list[str]) -> WriteError:
        """This refusal, said truly after a batch's earlier writes to ``tables`` committed
        Delta versions that were then rolled back: nothing was published."""
        outcome = "nothing was published"
        note = f"{outcome} (the batch's writes to {', '.join(tables)} were rolled back)"
        hint = (self.hint or "").replace("nothing was written", note)
        return WriteError(
            self.problems,
            table=self.table,
            hint=hint if note in hint else f"{hint}; {note}" if hint else note,
            outcome=outcome,
        )


class QualityError(MeshsimError):
    """A quality check cannot be asked as given (unknown product, table or version)."""


class QualityGateError(QualityError):
    """A quality gate kept a new version from becoming visible: an ``error`` rule failed or
    could not run. ``run`` holds every result (a :class:`meshsim.quality.results.CheckRun`)."""

    def __init__(self, message: str, *, run: Any, hint: str | None = None) -> None:
        self.run = run
        #: audit records of the governed reads the rules made, for the catalog to keep
        self.audit: list[Any] = []
        super().__init__(message, hint=hint)


class CatalogError(MeshsimError):
    """The catalog refused an operation (unknown product, illegal transition, not allowed)."""


class PolicyError(MeshsimError):
    """A policy in the spec cannot be compiled (bad predicate, unknown column, bad mask).

    ``line`` and ``column`` (1-based) locate a syntax error inside the policy's SQL fragment.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        super().__init__(message, hint=hint)


class QueryError(MeshsimError):
    """A consumer's query is malformed or cannot run."""

    def __init__(
        self,
        message: str,
        *,
        consumer: str | None = None,
        position: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.consumer = consumer
        self.position = position
        super().__init__(message, hint=hint)


class AccessDenied(QueryError):
    """Governance refused a query: the consumer may not read what it names."""

    def __init__(
        self,
        message: str,
        *,
        consumer: str | None = None,
        table: str | None = None,
        column: str | None = None,
        policy: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.policy = policy
        super().__init__(message, consumer=consumer, hint=hint)
