"""Running the CLI in tests, and what a clean failure looks like."""

from __future__ import annotations

import sys

from meshsim.cli import main

MESHSIM = [sys.executable, "-c", "from meshsim.cli import run; run()"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    """A non-zero exit with an ``Error:`` line containing each needle, and no traceback."""
    assert code != 0
    assert "Traceback" not in err
    assert "Error: " in err, err
    for needle in needles:
        assert needle in err, err
