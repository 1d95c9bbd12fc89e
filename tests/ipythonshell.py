"""IPython's InteractiveShell for tests, without leaving it in charge of the process:
creating it puts its own ``__main__`` module in ``sys.modules`` (which has no ``__spec__``,
so multiprocessing's spawn then fails in every later test) and its display and exception
hooks in ``sys``; they are put back when the block ends."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interactive_shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    saved = sys.modules["__main__"], sys.displayhook, sys.excepthook
    shell = InteractiveShell.instance()
    try:
        yield shell
    finally:
        if "meshsim" in shell.extension_manager.loaded:
            shell.run_line_magic("unload_ext", "meshsim")
        shell.reset(new_session=False)
        sys.modules["__main__"], sys.displayhook, sys.excepthook = saved
