"""Cheap reads of a Delta table's ``_delta_log`` directory, without ``deltalake``.

Listing the log and reading single commit files answers "what is the latest version?",
"which versions can still be loaded?" and "when was version N committed?" without replaying
the log, so caches can ask on every query.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from meshsim.errors import StorageError

BUILD_HINT = "run 'meshsim build'"
_LOG_ENTRY = re.compile(r"^(\d{20})\.(?:json|checkpoint(?:\.[^/]+)?\.parquet)$")


#: Characters a table's path cannot hold, and why (checked with deltalake 1.6.6, DuckDB 2.0).
UNSUPPORTED_PATH_CHARACTERS: dict[str, str] = {
    "*": "DuckDB reads it as a glob and would read other files",
    "?": "DuckDB reads it as a glob and would read other files",
    "[": "deltalake cannot write under it, and DuckDB reads it as a glob",
    "]": "deltalake cannot write under it",
    "^": "deltalake cannot write under it",
    "|": "deltalake cannot write under it",
    "\\": "deltalake reads it as a path separator",
    "%": "deltalake decodes %xx escapes and would write elsewhere",
}


#: any character :func:`check_location` refuses: those above, control characters, surrogates
_UNSUPPORTED = re.compile(
    "[" + "".join(map(re.escape, UNSUPPORTED_PATH_CHARACTERS)) + r"\x00-\x1f\x7f\ud800-\udfff]"
)


def check_location(location: str, *, what: str) -> None:
    """Refuse a path storage cannot hold tables under, naming the character.

    >>> check_location("/data/sales", what="workspace path '/data/sales'")
    >>> check_location("/data/q?", what="workspace path '/data/q?'")
    Traceback (most recent call last):
    ...
    meshsim.errors.StorageError: workspace path '/data/q?' contains '?', which meshsim cannot \
store tables under: DuckDB reads it as a glob and would read other files
      next: choose a path without any of * ? [ ] ^ | \\ % or control characters
    """
    if _UNSUPPORTED.search(location) is None:
        return  # the common case, once per table per query: no per-character loop
    for char in location:
        why = UNSUPPORTED_PATH_CHARACTERS.get(char)
        if why is None and (ord(char) < 32 or ord(char) == 127):
            why = "deltalake cannot write under a control character"
        elif why is None and 0xD800 <= ord(char) <= 0xDFFF:
            why = "it is not valid UTF-8"
        if why is not None:
            char = char if char.isprintable() else ascii(char)[1:-1]
            raise StorageError(
                f"{what} contains '{char}', which meshsim cannot store tables under: {why}",
                hint="choose a path without any of "
                + " ".join(UNSUPPORTED_PATH_CHARACTERS)
                + " or control characters",
            )


def location_of(path: str | Path, *, table: str = "?") -> str:
    """The absolute, normalised local path of a table (no check that it exists), refused if
    it holds a character storage cannot handle.

    >>> location_of("/data/../data/orders/")
    '/data/orders'
    """
    location = os.path.normpath(os.path.abspath(os.fspath(path)))
    shown = ascii(location)[1:-1] if not location.isprintable() else location
    what = f"location '{shown}'" if table == "?" else f"table '{table}': location '{shown}'"
    check_location(location, what=what)
    return location


def not_found(location: str, table: str, why: str = "is not a Delta table") -> StorageError:
    return StorageError(
        f"table '{table}': '{location}' {why} (no _delta_log with commits)",
        table=table,
        hint=f"{BUILD_HINT} to create it, or check the table's location",
    )


def invalid_protocol(table: str, location: str, detail: str) -> StorageError:
    """The error for a log whose actions break the Delta protocol (``detail`` says how)."""
    return StorageError(
        f"table '{table}' at '{location}' has an invalid Delta protocol ({detail}); refusing "
        f"to read it",
        table=table,
        hint="the writer left actions the Delta protocol forbids; repair the table with the "
        "tool that wrote it",
    )


def unreadable(path: str, table: str, exc: OSError) -> StorageError:
    """The error for a file or folder of a table's Delta log that cannot be read."""
    return StorageError(
        f"table '{table}': '{path}' cannot be read ({(exc.strerror or str(exc)).lower()})",
        table=table,
        hint="fix the permissions of the table's files (the user running meshsim must read "
        "them), then run 'meshsim doctor'",
    )


def _log_versions(location: str, table: str) -> tuple[list[int], list[int]]:
    """Versions of the commit files and of the checkpoints in ``_delta_log``."""
    log = os.path.join(location, "_delta_log")
    commits: list[int] = []
    checkpoints: list[int] = []
    try:
        entries = list(os.scandir(log))
    except (FileNotFoundError, NotADirectoryError):
        why = "does not exist" if not os.path.exists(location) else "is not a Delta table"
        raise not_found(location, table, why) from None
    except OSError as exc:
        raise unreadable(log, table, exc) from None
    for entry in entries:
        m = _LOG_ENTRY.match(entry.name)
        if m:
            (commits if entry.name.endswith(".json") else checkpoints).append(int(m.group(1)))
    return commits, checkpoints


def latest_version(path: str | Path, *, table: str = "?") -> int:
    """The newest committed version, from ``_last_checkpoint`` and a listing of the log.

    Reads no commit and replays nothing, so caches can call it on every query.
    """
    location = location_of(path, table=table)
    commits, checkpoints = _log_versions(location, table)
    floor = -1
    try:
        with open(os.path.join(location, "_delta_log", "_last_checkpoint")) as f:
            floor = int(json.load(f)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    newest = max([floor, *commits, *checkpoints])
    if newest < 0:
        raise not_found(location, table)
    return newest


def exists(path: str | Path) -> bool:
    """Whether a Delta table with at least one commit lives at ``path`` (a path storage
    cannot handle at all is an error naming the character, not ``False``)."""
    location = location_of(path)
    try:
        latest_version(location)
    except StorageError:
        return False
    return True


def available_versions(path: str | Path, *, table: str = "?") -> tuple[int, int]:
    """``(first, last)`` versions that can still be loaded (older logs may be cleaned up)."""
    location = location_of(path, table=table)
    commits, checkpoints = _log_versions(location, table)
    last = latest_version(location, table=table)
    first = 0 if 0 in commits else min([*checkpoints, *commits, last])
    return first, last


def commit_timestamp(path: str | Path, version: int, *, table: str = "?") -> datetime:
    """When ``version`` was committed (UTC): ``inCommitTimestamp`` or ``commitInfo.timestamp``,
    else the commit file's modification time, as Delta readers do."""
    location = location_of(path, table=table)
    log = os.path.join(location, "_delta_log")
    commit = os.path.join(log, f"{version:020d}.json")
    try:
        with open(commit, encoding="utf-8") as f:
            for line in f:
                info = json.loads(line).get("commitInfo") if line.strip() else None
                if info:
                    millis = info.get("inCommitTimestamp", info.get("timestamp"))
                    if millis is not None:
                        return datetime.fromtimestamp(millis / 1000, tz=UTC)
        mtime = os.path.getmtime(commit)
    except FileNotFoundError:
        names = [n for n in os.listdir(log) if n.startswith(f"{version:020d}.checkpoint")]
        if not names:
            raise StorageError(
                f"table '{table}' has no commit or checkpoint for version {version} in '{log}'",
                table=table,
                hint=BUILD_HINT,
            ) from None
        mtime = os.path.getmtime(os.path.join(log, names[0]))
    return datetime.fromtimestamp(mtime, tz=UTC)


def resolve_version(
    path: str | Path,
    *,
    table: str,
    version: int | None = None,
    timestamp: datetime | None = None,
) -> int:
    """The version to read: ``version``, the newest at or before ``timestamp``, or the latest.

    A naive ``timestamp`` is taken as UTC. Versions or timestamps outside the table's history
    are errors naming the available range.
    """
    location = location_of(path, table=table)
    first, last = available_versions(location, table=table)
    if version is not None and timestamp is not None:
        raise StorageError(
            f"table '{table}': give a version or a timestamp to time travel, not both "
            f"(got version {version} and timestamp {timestamp.isoformat()})",
            table=table,
        )
    if version is not None:
        if not first <= version <= last:
            raise StorageError(
                f"table '{table}' has no version {version}; available versions are {first}..{last}",
                table=table,
                hint=f"pick a version in {first}..{last}",
            )
        return version
    if timestamp is None:
        return last
    target = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    best = None
    for v in range(first, last + 1):
        if commit_timestamp(location, v, table=table) <= target:
            best = v
    if best is None:
        start = commit_timestamp(location, first, table=table).isoformat()
        end = commit_timestamp(location, last, table=table).isoformat()
        raise StorageError(
            f"table '{table}' did not exist yet at {target.isoformat()}; its history runs "
            f"from {start} (version {first}) to {end} (version {last})",
            table=table,
            hint=f"pick a timestamp at or after {start}",
        )
    return best


def commit_fingerprint(path: str | Path, version: int) -> tuple[int, ...]:
    """Identity of the file that records ``version`` (inode, size, mtime), so a cache can tell
    a table deleted and rebuilt to the same version number from the one it saw before."""
    log = os.path.join(location_of(path), "_delta_log")
    candidates = [f"{version:020d}.json"]
    candidates += sorted(n for n in os.listdir(log) if n.startswith(f"{version:020d}.checkpoint"))
    for name in candidates:
        try:
            st = os.stat(os.path.join(log, name))
        except FileNotFoundError:
            continue
        return (st.st_ino, st.st_size, st.st_mtime_ns)
    return ()
