"""Issue 12, the shell at a terminal (a pseudo-terminal): Ctrl-C cancels the line being typed
or the running query and the shell stays; exit words leave; dot-commands; completion of the
names the consumer can see, and only those."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analyst.ptyshell import PtyShell, wait_until_running

pytest.importorskip("readline")

ANALYST = "eu_marketing_analyst"
PROMPT = f"{ANALYST}> "


@pytest.fixture
def shell(workspace: Path, tmp_path: Path) -> Iterator[PtyShell]:
    # a private copy: the shell writes history and audit records into its workspace
    running = PtyShell(workspace, ANALYST, "--timeout", "120", home=tmp_path)
    running.expect(PROMPT)
    yield running
    running.close()


def test_ctrl_c_while_typing_drops_the_line_and_stays(shell: PtyShell):
    shell.send("SELECT c_acctbal FROM customer.customer")
    shell.send("\x03")
    shell.expect("^C")
    shell.expect(PROMPT)
    shell.send("SELECT 41 + 1 AS answer;\n")
    out = shell.expect(PROMPT)
    assert "42" in out and "c_acctbal" not in out.replace("SELECT c_acctbal", "")
    shell.send(".quit\n")
    assert shell.wait() == 0


def test_ctrl_c_in_a_continuation_line_drops_the_whole_statement(shell: PtyShell):
    shell.send("SELECT 1 AS first,\n")
    shell.expect("...> ")
    shell.send("\x03")
    shell.expect(PROMPT)
    shell.send("SELECT 2 AS second;\n")
    out = shell.expect(PROMPT)
    assert "second" in out and "first" not in out.split("second", 1)[1]


def test_ctrl_c_cancels_a_running_query_and_stays(shell: PtyShell):
    import time

    shell.send(
        "SELECT sum(a.range * b.range) AS s FROM range(1000000) AS a, range(1000000) AS b;\n"
    )
    wait_until_running(shell.pid)
    started = time.monotonic()
    shell.send("\x03")
    out = shell.expect("cancelled (Ctrl-C)", timeout=30)
    assert time.monotonic() - started < 20
    assert "Traceback" not in out
    shell.expect(PROMPT)
    shell.send("SELECT 7 AS seven;\n")
    assert "7" in shell.expect(PROMPT)
    shell.send("exit\n")
    assert shell.wait() == 0


@pytest.mark.parametrize("word", ["exit", "quit", "\\q", ".quit", "exit;"])
def test_exit_words_leave(shell: PtyShell, word: str):
    shell.send(word + "\n")
    assert shell.wait() == 0


def test_ctrl_d_leaves(shell: PtyShell):
    shell.send("\x04")
    assert shell.wait() == 0


def test_dot_commands_at_the_terminal(shell: PtyShell):
    shell.send(".tables\n")
    out = shell.expect(PROMPT)
    assert "customer.customer" in out and "supply.part" not in out
    shell.send(".schema customer.customer\n")
    out = shell.expect(PROMPT)
    assert "c_phone varchar,  -- masked: show_last" in out
    assert "c_acctbal" not in out and "rows filtered by regional_customers" in out
    for command in (".mode csv", ".timer on"):
        shell.send(command + "\n")
        shell.expect(PROMPT)
    shell.send("SELECT 1 AS a;\n")
    out = shell.expect("Run Time (s): real")
    assert "a\n1\n" in out
    shell.expect(PROMPT)
    for command in (".mode table", ".maxrows 4"):
        shell.send(command + "\n")
        shell.expect(PROMPT)
    shell.send("SELECT range AS n FROM range(100);\n")
    assert "100 rows (4 shown)" in shell.expect(PROMPT)


def test_tab_completes_visible_tables_and_columns_only(shell: PtyShell):
    shell.send("SELECT c_ph\t")
    shell.expect("c_phone")
    shell.send(" FROM customer.cus\t")
    shell.expect("customer.customer")
    shell.send(";\n")
    out = shell.expect(PROMPT)
    assert "****" in out  # c_phone is masked to its last digits
    shell.send("SELECT c_acct\t\t")  # c_acctbal is not granted: nothing to complete
    shell.send("\x03")
    out = shell.expect(PROMPT)
    assert "c_acctbal" not in out
    shell.send("SELECT * FROM supply.pa\t\t")  # no grant on supply.*
    shell.send("\x03")
    assert "supply.part" not in shell.expect(PROMPT)


LONG_QUERY = "SELECT sum(a.range * b.range) AS s FROM range(1000000) AS a, range(1000000) AS b"


def test_ctrl_c_cancels_a_one_off_query_and_audits_it(workspace: Path):
    import signal
    import subprocess
    import sys
    import time

    from meshsim.mesh import Mesh

    argv = [sys.executable, "-c", "from meshsim.cli import run; run()", "sql", "--as", ANALYST]
    argv += ["--workspace", str(workspace), "--timeout", "120", LONG_QUERY]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_running(process.pid)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err
    assert time.monotonic() - started < 20
    with Mesh.open(workspace) as mesh:
        [record] = mesh.audit(as_consumer=ANALYST, limit=1)
    assert record["sql"] == LONG_QUERY
    assert (record["decision"], record["reason"]) == ("error", "the query was cancelled")
