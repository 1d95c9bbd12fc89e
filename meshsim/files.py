"""Files a user names: checked before use, so a bad path is one clear error, not an OSError.

Output files (``graph --out``) are written by :func:`write_output` only: never into a folder,
a device or an empty path, and atomically (a temporary file in the same folder, then a rename),
so a failed write never leaves half a file. Input files (``access --policies``) are checked by
:func:`check_input_file`: a regular file of at most ``limit`` bytes. Folders meshsim creates or
reads (``--workspace``, ``--mesh``) are checked by :func:`check_folder`.

Each check raises :class:`FileProblem`, a :class:`MeshsimError` whose ``problem`` is the
message without the path, so the CLI can name the option instead.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from meshsim.errors import MeshsimError

#: Input files meshsim reads are small hand-written YAML.
MAX_INPUT_BYTES = 16 * 1024 * 1024

_KINDS = {
    stat.S_IFREG: "a file",
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


class FileProblem(MeshsimError):
    """A path that cannot be used as asked; ``problem`` says why, without the path."""

    def __init__(self, path: str | Path, problem: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"'{path}' {problem}", hint=hint)


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_output_file(path: str | Path) -> Path:
    """``path`` as a file meshsim may create or replace: not empty, not a folder or device,
    in an existing folder it may write to."""
    if str(path) == "":
        raise FileProblem(path, "is empty; name a file to write", hint="pass a file name")
    target = Path(path)
    try:
        mode: int | None = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # its folder is checked below
    except OSError as exc:
        raise FileProblem(target, f"cannot be checked: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise FileProblem(target, "is a folder; name a file in it", hint=f"pass {target}/FILE")
    if mode is not None and not stat.S_ISREG(mode):
        raise FileProblem(target, f"is not a regular file ({_kind(mode)}); name a file to write")
    if mode is not None and not os.access(target, os.W_OK):
        raise FileProblem(target, "is not writable")
    _check_parent(target)
    return target


def _check_parent(target: Path) -> None:
    parent = target.parent
    if not parent.exists():
        raise FileProblem(target, f"cannot be written: its folder '{parent}' does not exist")
    if not parent.is_dir():
        raise FileProblem(target, f"cannot be written: '{parent}' is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileProblem(target, f"cannot be written: its folder '{parent}' is not writable")


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically, after :func:`check_output_file`."""
    target = check_output_file(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    real = Path(os.path.realpath(target))  # through a symlink, not over it
    try:
        replace_file(real, payload)
    except OSError as exc:
        raise FileProblem(target, f"could not be written: {exc.strerror}") from None
    return target


def create_temporary(target: Path, *, mode: int = 0o666) -> tuple[int, Path]:
    """A new file beside ``target`` to write and then rename over it: a descriptor open for
    writing and its path. Its name holds the pid (so a stale one can be told from a live
    writer's) and a random part, and it is created exclusively without following a link: a
    name planted by another user of the folder is never written through."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    return os.open(tmp, flags, mode), tmp


def replace_file(target: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Write ``data`` to ``target`` atomically, through a :func:`create_temporary` file;
    OSError if it cannot be written (the temporary file removed)."""
    fd, tmp = create_temporary(target, mode=mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_new_output(path: str | Path, *, overwrite: bool) -> Path:
    """:func:`check_output_file`, and an existing file refused unless ``overwrite``."""
    target = check_output_file(path)
    if not overwrite and os.path.lexists(target):
        raise FileProblem(
            target, "already exists", hint="pass --overwrite to replace it, or name a new file"
        )
    return target


@contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """A binary file to stream into, that becomes ``path`` only when the block ends without
    an error (a temporary file in the same folder, then linked or renamed into place). An
    existing ``path`` is refused unless ``overwrite``; without it, a file created meanwhile
    is not replaced either (the final link fails rather than overwrite it)."""
    target = check_new_output(path, overwrite=overwrite)
    real = Path(os.path.realpath(target))  # through a symlink, not over it
    tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    try:
        handle = os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
    except OSError as exc:
        raise FileProblem(target, f"could not be written: {exc.strerror}") from None
    try:
        with handle:
            yield handle
        if overwrite:
            os.replace(tmp, real)
        else:
            os.link(tmp, real)
    except FileExistsError:
        raise FileProblem(target, "was created by someone else while meshsim wrote it") from None
    except OSError as exc:
        raise FileProblem(target, f"could not be written: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def check_input_file(path: str | Path, *, limit: int = MAX_INPUT_BYTES) -> Path:
    """``path`` as a file meshsim may read whole: a readable regular file of at most
    ``limit`` bytes (so a link to ``/dev/zero`` or a FIFO is refused before it is opened)."""
    if str(path) == "":
        raise FileProblem(path, "is empty; name a file to read", hint="pass a file name")
    source = Path(path)
    try:
        info = source.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise FileProblem(source, "does not exist") from None
    except OSError as exc:
        raise FileProblem(source, f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem(source, f"is not a regular file ({_kind(info.st_mode)})")
    if info.st_size > limit:
        raise FileProblem(source, f"is larger than {limit} bytes ({info.st_size} bytes)")
    if not os.access(source, os.R_OK):
        raise FileProblem(source, "is not readable")
    return source


def check_folder(path: str | Path) -> Path:
    """``path`` as a folder meshsim may read or create: not empty, not an existing file."""
    if str(path) == "":
        raise FileProblem(path, "is empty; name a folder", hint="pass a folder, e.g. '.'")
    folder = Path(path)
    try:
        mode = folder.stat().st_mode
    except FileNotFoundError:
        return folder
    except NotADirectoryError:
        raise FileProblem(folder, "cannot be a folder: a file is in its path") from None
    except OSError as exc:
        raise FileProblem(folder, f"cannot be checked: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise FileProblem(folder, f"is not a folder ({_kind(mode)})")
    return folder
