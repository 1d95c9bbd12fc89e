"""Failures the fuzz suite found in code other helpers own, until they are fixed.

Each entry names the exception class and a predicate on the fuzzed input (a command line, SQL
text or a description of a spec mutation) that reproduces it. The fuzz properties let exactly
these through, recorded as a hypothesis ``event``; ``test_known_issues.py`` holds each one's
minimal reproduction as ``xfail(strict=True, raises=...)``, so a fix turns that test into an
unexpected pass: then delete the entry here and the mark there.
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


KNOWN_ISSUES: tuple[KnownIssue, ...] = (
    KnownIssue(
        name="spec file with a character YAML forbids (NUL, other C0 controls)",
        exception="ReaderError",
        # the mutation description shows the file's bytes; \\x00 and friends are escaped there
        applies=lambda text: bool(re.search(r"\\x(0[0-8bcef]|1[0-9a-f]|7f)", text)),
        owner="spec (meshsim/spec/yamlfile.py: the loader is built outside the try)",
    ),
)


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
