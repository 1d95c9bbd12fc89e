"""Fixtures of the fuzz suite: a workspace of its own, a sandbox folder for every path the
fuzzer names, and a hard time bound per example.

How many examples each test tries is ``BASE * MESHSIM_FUZZ_SCALE`` (1 in CI, where the whole
suite runs in well under two minutes). CI runs the same examples every time (the ``ci``
hypothesis profile, derandomized); to explore, run with new random examples and more of them:

    HYPOTHESIS_PROFILE=explore MESHSIM_FUZZ_SCALE=20 python3 tools/dev.py test tests/fuzz \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import faulthandler
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import EXAMPLE_MESH

SCALE = int(os.environ.get("MESHSIM_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    """``examples`` per CI run (times MESHSIM_FUZZ_SCALE); the time bound is ours (see
    :func:`bounded`), not hypothesis' deadline, which would make slow machines flaky."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Fail if the block takes longer than ``seconds``; past twice that, a hang: dump every
    thread's stack and end the test process, so CI fails instead of waiting forever."""
    faulthandler.dump_traceback_later(seconds * 2, exit=True, file=sys.stderr)
    started = time.monotonic()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"{what} took {elapsed:.1f} s (bound {seconds:g} s)"


@pytest.fixture(scope="package")
def fuzz_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example mesh built for the fuzz suite alone: fuzzed commands change its catalog
    (requests, approvals, audit records), so it is not the suite's shared workspace."""
    from meshsim.mesh import Mesh

    workspace = tmp_path_factory.mktemp("fuzz") / "ws"
    Mesh.build(EXAMPLE_MESH, workspace, scale=0.01).close()
    return workspace


@pytest.fixture(scope="package")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The current folder while fuzzing, holding every path the fuzzer may name: a relative
    path or '' lands here, never in the repository."""
    root = tmp_path_factory.mktemp("sandbox")
    (root / "folder").mkdir()
    (root / "file.txt").write_text("not yaml: [\n")
    (root / "policies.yaml").write_text("grants: []\n")
    (root / "readonly.txt").write_text("")
    (root / "readonly.txt").chmod(0o444)
    before = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)
