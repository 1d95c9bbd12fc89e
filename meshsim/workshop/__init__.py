"""The offline workshop: a numbered curriculum of notebooks (``notebooks/``), a fresh workspace
per module, and the checker of the exercises.

In a notebook::

    from meshsim import workshop
    mesh = workshop.start(3)            # module 3 from its known state, built in seconds
    ...
    workshop.check("3.2", answer)       # right, or what to look at

``meshsim workshop`` (or ``python3 tools/dev.py notebook``) opens JupyterLab on the notebooks.
"""

from __future__ import annotations

from meshsim.workshop.checker import Verdict, check, exercises
from meshsim.workshop.modules import MODULES, Module, current, module, start

__all__ = ["MODULES", "Module", "Verdict", "check", "current", "exercises", "module", "start"]
