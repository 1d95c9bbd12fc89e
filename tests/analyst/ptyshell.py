"""Drive ``meshsim sql`` (the shell) through a pseudo-terminal, as a user at a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class PtyShell:
    def __init__(self, workspace: Path, consumer: str, *args: str, home: Path) -> None:
        argv = [sys.executable, "-c", "from meshsim.cli import run; run()", "sql"]
        argv += ["--as", consumer, "--workspace", str(workspace), *args]
        env = {**os.environ, "TERM": "dumb", "HOME": str(home), "COLUMNS": "120"}
        env.pop("MESHSIM_DEBUG", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader with the pty as its terminal
            os.execve(sys.executable, argv, env)
        self.seen = ""

    def send(self, text: str) -> None:
        # as pexpect's delaybeforesend: readline resets the terminal when a prompt appears,
        # flushing input typed in that instant (a person never types that fast)
        time.sleep(0.2)
        os.write(self.fd, text.encode())

    def expect(self, needle: str, timeout: float = 30.0) -> str:
        """Read until ``needle`` appears in the output (ANSI codes removed); the text read."""
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen in {timeout}s; output:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{needle!r} not seen before exit; output:\n{self.seen}")
                self.seen += _ANSI.sub("", chunk.decode("utf-8", "replace"))
        upto = self.seen.index(needle) + len(needle)
        text, self.seen = self.seen[:upto], self.seen[upto:]
        return text

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code, after reading whatever is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_status = os.waitpid(self.pid, os.WNOHANG)
            if with_status[0]:
                return os.waitstatus_to_exitcode(with_status[1])
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.seen += _ANSI.sub("", os.read(self.fd, 65536).decode("utf-8", "replace"))
                except OSError:
                    pass
        self.kill()
        raise AssertionError(f"the shell did not exit; output:\n{self.seen}")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def close(self) -> None:
        self.kill()
        os.close(self.fd)


def wait_until_running(pid: int, timeout: float = 60.0) -> None:
    """Return once process ``pid`` has used more CPU than starting meshsim and planning a
    statement take (under a second): its query is running. A fixed sleep is not enough on a
    busy machine, and a Ctrl-C sent before the query starts cancels no query."""
    deadline = time.monotonic() + timeout
    while _cpu_seconds(pid) < 2.5:
        if time.monotonic() > deadline:
            raise AssertionError(f"the query of process {pid} did not start in {timeout}s")
        time.sleep(0.1)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
