"""One rule for text that reaches meshsim from the shell: it must be UTF-8.

Python decodes ``argv`` with ``surrogateescape``, so a byte that is not UTF-8 (``$'\\xff'``)
arrives as a lone surrogate that cannot be written to the catalog, the audit log or a terminal.
Such an argument (or ``$MESHSIM_WORKSPACE``) is refused before any command runs, naming the
option and the first bad byte, rather than failing half-way with a ``UnicodeEncodeError``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from meshsim.errors import MeshsimError

HINT = "pass arguments as UTF-8 text (check the locale of the shell or script)"
ENVIRONMENT = ("MESHSIM_WORKSPACE",)


def utf8_problem(text: str) -> str | None:
    """Where ``text`` stops being UTF-8, or None; positions count UTF-8 bytes from 1.

    >>> utf8_problem("ab\\udcff")
    'byte 0xff at position 3'
    >>> utf8_problem("é\\ud800")
    'lone surrogate U+D800 at position 3'
    >>> utf8_problem("fine") is None
    True
    """
    position = 1
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
            return f"byte 0x{code - 0xDC00:02x} at position {position}"
        if 0xD800 <= code <= 0xDFFF:
            return f"lone surrogate U+{code:04X} at position {position}"
        position += len(char.encode("utf-8"))
    return None


def refuse_non_utf8(args: Sequence[str], app: Any = None) -> None:
    """Raise MeshsimError for the first argument or variable that is not UTF-8."""
    for index, arg in enumerate(args):
        if utf8_problem(arg) is not None:
            name, described = _describe(args, index, app)
            raise MeshsimError(f"argument {name} is not valid UTF-8 ({described})", hint=HINT)
    for variable in ENVIRONMENT:
        problem = utf8_problem(os.environ.get(variable, ""))
        if problem:
            raise MeshsimError(
                f"environment variable {variable} is not valid UTF-8 ({problem})", hint=HINT
            )


def _describe(args: Sequence[str], index: int, app: Any) -> tuple[str, str]:
    """The name of the bad ``args[index]`` for the user (``--reason`` for an option's value,
    else its position and a short escaped copy) and its problem, counted in the value."""
    arg = args[index]
    option, equals, value = arg.partition("=")
    if arg.startswith("--") and equals and utf8_problem(option) is None:
        return option, str(utf8_problem(value))
    previous = args[index - 1] if index else ""
    if previous.startswith("-") and "=" not in previous and previous not in _flags(args, app):
        return previous, str(utf8_problem(arg))
    shown = arg.encode("utf-8", "surrogateescape" if _escaped_only(arg) else "backslashreplace")
    text = shown.decode("utf-8", "backslashreplace")
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{index + 1} ('{text}')", str(utf8_problem(arg))


def _escaped_only(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _flags(args: Sequence[str], app: Any) -> set[str]:
    """Option names that take no value, of the group and of the command named in ``args``."""
    if app is None:
        return set()
    import typer.main

    group = typer.main.get_command(app)
    params = list(group.params)
    commands = getattr(group, "commands", {})
    command = next((commands[a] for a in args if a in commands), None)
    if command is not None:
        params += command.params
    return {
        name
        for param in params
        if getattr(param, "is_flag", False)
        for name in (*param.opts, *param.secondary_opts)
    } | {"--help"}


def values_after_dashes(args: Sequence[str], app: Any = None) -> list[str]:
    """``args`` with every value that starts with ``-`` but cannot be an option (whitespace
    before any ``=``, as in a query opening with a ``-- comment``) moved after ``--``, where
    the parser takes it as an argument instead of refusing an unknown option. The value of
    an option (``--reason "- a b"``) stays where it is.

    >>> values_after_dashes(["sql", "--as", "x", "-- totals\\nSELECT 1"])
    ['sql', '--as', 'x', '--', '-- totals\\nSELECT 1']
    >>> values_after_dashes(["sql", "--reason=a b", "--", "-x y"])
    ['sql', '--reason=a b', '--', '-x y']
    """
    args = list(args)
    end = args.index("--") if "--" in args else len(args)
    flags = _flags(args, app) if app is not None else set()
    moved: list[int] = []
    for index, arg in enumerate(args[:end]):
        if not arg.startswith("-") or not any(c.isspace() for c in arg.partition("=")[0]):
            continue
        previous = args[index - 1] if index else ""
        if previous.startswith("-") and "=" not in previous and previous not in flags:
            continue  # the value of the option before it
        moved.append(index)
    if not moved:
        return args
    kept = [a for i, a in enumerate(args[:end]) if i not in moved]
    return [*kept, "--", *(args[i] for i in moved), *args[end + 1 :]]
