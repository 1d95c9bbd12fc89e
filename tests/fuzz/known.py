"""Failures the fuzz suite found and that are not fixed yet (none today).

Each entry names the exception class and a predicate on the fuzzed input (a command line, SQL
text or a description of a spec mutation) that reproduces it. The fuzz properties let exactly
these through, recorded as a hypothesis ``event``; ``test_known_issues.py`` holds each one's
minimal reproduction as ``xfail(strict=True, raises=...)`` until it is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownIssue:
    name: str
    exception: str  # the class name, as the CLI's 'internal error (...)' line shows it
    applies: Callable[[str], bool]
    owner: str


#: empty: every failure fuzzing found is fixed and kept in test_known_issues.py
KNOWN_ISSUES: tuple[KnownIssue, ...] = ()


def known_issue(exc: BaseException | str, text: str) -> KnownIssue | None:
    """The known issue explaining ``exc`` (an exception, or the CLI's error output naming its
    class) for the input ``text``, if any."""
    if isinstance(exc, BaseException):
        names = {cls.__name__ for cls in type(exc).__mro__}
    else:
        names = set(re.findall(r"internal error \((\w+)\)", exc))
    for issue in KNOWN_ISSUES:
        if issue.exception in names and issue.applies(text):
            return issue
    return None
