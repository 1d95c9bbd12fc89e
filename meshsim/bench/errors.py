"""The benchmark's errors."""

from __future__ import annotations

from meshsim.errors import MeshsimError


class BenchError(MeshsimError):
    """The benchmark cannot run as asked (unknown engine or query, missing dependency)."""


class WrongAnswer(BenchError):
    """An engine's answer to a query differs from the reference engine's."""
