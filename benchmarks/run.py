"""Run the benchmarks from a checkout: ``python benchmarks/run.py [meshsim bench options]``.

A thin wrapper: it calls the same command as ``meshsim bench`` (see benchmarks/README.md).
"""

from __future__ import annotations

import sys

from meshsim.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
