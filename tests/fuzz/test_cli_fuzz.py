"""Random argument vectors for the real ``meshsim`` app: every command and option it declares,
with values that are plausible, out of range, empty, not text, or paths to the wrong thing.

Property: ``main`` returns an exit code; a failure is a clean ``Error:`` line (a usage error or
meshsim's own), never a traceback and never an ``internal error``; each call ends in its bound.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from meshsim.cli import _register, app, main
from tests.conftest import EXAMPLE_MESH
from tests.fuzz.conftest import bounded, fuzz_settings
from tests.fuzz.known import known_issue

#: Too slow or too wide for a fuzz example: building data, benchmarks, the demo, an
#: interactive shell (sql without a query) and a doctor that repairs (moves files aside).
SKIPPED_COMMANDS = {"build", "demo", "bench"}
SKIPPED_OPTIONS = {"--repair"}
REPORTING_COMMANDS = {"validate", "doctor"}

CONSUMERS = [
    "governance_admin",
    "eu_marketing_analyst",
    "finance_controller",
    "supply_planner",
    "external_partner",
]
PRODUCTS = ["customer.customer_profiles", "sales.order_history", "supply.supply_catalog"]
TABLES = ["customer.customer", "sales.orders", "supply.part", "meshsim.audit"]
QUERIES = [
    "SELECT 1",
    "SELECT count(*) FROM customer.customer",
    "SELECT c_name, c_phone FROM customer.customer LIMIT 3",
    "SELECT * FROM meshsim.audit LIMIT 2",
    "SELECT s_acctbal FROM supply.supplier",
]


@dataclass(frozen=True)
class Param:
    name: str  # the Python name
    opts: tuple[str, ...]
    argument: bool
    flag: bool
    required: bool
    choices: tuple[str, ...]


def _commands() -> dict[str, list[Param]]:
    import typer.main

    _register()
    group = typer.main.get_command(app)
    table = {}
    for name, command in sorted(group.commands.items()):  # type: ignore[attr-defined]
        if name in SKIPPED_COMMANDS:
            continue
        params = []
        for p in command.params:
            if any(o in SKIPPED_OPTIONS for o in p.opts):
                continue
            annotation = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            members = getattr(annotation, "__members__", None)
            params.append(
                Param(
                    name=p.name,
                    opts=tuple(p.opts),
                    argument=p.param_type_name == "argument",
                    flag=bool(getattr(p, "is_flag", False)),
                    required=bool(p.required),
                    choices=tuple(members) if members else (),
                )
            )
        table[name] = params
    return table


COMMANDS = _commands()

nasty_text = st.one_of(
    st.sampled_from(["", " ", "-", "--", "\t", "x" * 5000, "é", "名前", "\u202e", "\\", "'", '"']),
    st.sampled_from(["\udcff", "a\udcffb", "\ud800", "\U0001f600"]),  # not UTF-8 / surrogates
    st.text(st.characters(blacklist_characters="\x00"), max_size=30),
)
nasty_int = st.sampled_from(
    [
        "0",
        "-1",
        "1",
        "9223372036854775807",
        "9223372036854775808",
        str(2**64),
        "-" + str(2**70),
        "1" * 5000,
        "1.5",
        "1e3",
        "0x10",
        "١٢",  # Arabic-Indic digits: int() accepts them
        " 3 ",
        "+2",
        "1_000",
    ]
)
nasty_float = st.sampled_from(
    ["nan", "inf", "-inf", "0", "-0", "1e309", "1e-320", "0.01", "abc", "1,2", "1000", "1000.1"]
)
nasty_date = st.sampled_from(
    [
        "9999-12-31",
        "9998-12-31",
        "0001-01-01",
        "1969-12-31",
        "2030-02-30",
        "2030-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+01:00",
        "2030-01-01",
        "tomorrow",
        "20300101",
    ]
)


def nasty_paths(sandbox: Path, workspace: Path) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "",
            ".",
            "folder",
            "file.txt",
            "policies.yaml",
            "readonly.txt",
            "missing/nested/out.mmd",
            "file.txt/below",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/proc/version",
            "new-output.mmd",
            str(workspace),
            str(workspace / "workspace.json"),
            str(workspace / "governance" / "catalog.db"),
        ]
    )


def plausible_for(param: Param, workspace: Path) -> st.SearchStrategy[str]:
    """Values that get a command past its first checks, so the fuzzer reaches deeper ones."""
    name = param.name
    if param.choices:
        return st.sampled_from(param.choices)
    if name in {"consumer", "as_consumer", "by"}:
        return st.sampled_from([*CONSUMERS, "customer-data"])
    if name == "product":
        return st.sampled_from(PRODUCTS)
    if name == "table":
        return st.sampled_from(TABLES)
    if name == "query":
        return st.sampled_from(QUERIES)
    if name in {"limit", "request_id", "max_result_rows", "runs"}:
        return st.integers(1, 5).map(str)
    if name in {"scale", "timeout"}:
        return st.sampled_from(["0.01", "5", "30"])
    if name == "expires":
        return st.sampled_from(["2099-01-01", "2099-06-30T12:00:00"])
    if name == "workspace":
        return st.just(str(workspace))
    if name == "mesh":
        return st.just(str(EXAMPLE_MESH))
    if name == "out":
        return st.sampled_from(["graph.mmd", "graph.svg", "folder/graph.png"])
    if name == "policies":
        return st.just("policies.yaml")
    if name == "file":
        return st.sampled_from(["all", "mesh", "domain", "product", "policies"])
    if name in {"columns", "tables"}:
        return st.sampled_from(["c_name", "c_name,c_phone", "customer.customer"])
    if name == "row_filter":
        return st.sampled_from(["c_nationkey = 3", "c_name LIKE 'A%'"])
    return st.sampled_from(["x", "why not", "customer orders"])


def nasty_for(param: Param, sandbox: Path, workspace: Path) -> st.SearchStrategy[str]:
    """Hostile values: of the parameter's kind first, then of any kind."""
    name = param.name
    paths = nasty_paths(sandbox, workspace)
    if name in {"limit", "request_id", "max_result_rows", "runs"}:
        own: st.SearchStrategy[str] = nasty_int
    elif name in {"scale", "timeout"}:
        own = nasty_float
    elif name == "expires":
        own = nasty_date
    elif name in {"workspace", "mesh", "out", "policies"}:
        own = paths
    elif name in {"consumer", "as_consumer", "by"}:
        own = st.sampled_from(["nobody", "GOVERNANCE_ADMIN", "governance_admin ", "*"])
    elif name in {"product", "table"}:
        own = st.sampled_from(["customer.nope", "nope", "x.y.z", "sales.order", ".", "a."])
    elif name in {"query", "row_filter"}:
        own = st.sampled_from(SQL_NASTIES)
    else:
        own = nasty_text
    return st.one_of(own, own, own, own, st.one_of(nasty_text, nasty_int, paths))


SQL_NASTIES = [
    "",
    "'",
    "c_name = 'unterminated",
    "SELECT",
    "SELECT 1; SELECT 2",
    "DROP TABLE customer.customer",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT " + "(" * 60 + "1" + ")" * 60,
    "SELECT 1 WHERE " + " AND ".join(["1=1"] * 400),
    "SELECT $$x$$",
    "SELECT \\x",
    "1 +",
    "c_name + 1 > 0",
    "nope_column = 1",
]


@st.composite
def argv(draw, sandbox: Path, workspace: Path) -> list[str]:
    """A plausible command line (required parameters present), then 0 to 2 of its values
    replaced by hostile ones, sometimes an unknown option or ``--debug``."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    chosen = [
        p for p in COMMANDS[command] if p.required or p.name == "workspace" or draw(st.booleans())
    ]
    values = {p.name: draw(plausible_for(p, workspace)) for p in chosen if not p.flag}
    # the workspace is mutated rarely: a missing workspace stops every command at once
    others = [p for p in chosen if not p.flag and p.name != "workspace"]
    mutable = [p for p in chosen if not p.flag]
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 2]))):
        pool = others if others and draw(st.integers(0, 7)) else mutable
        if not pool:
            break
        target = draw(st.sampled_from(pool))
        values[target.name] = draw(nasty_for(target, sandbox, workspace))
    args = [command]
    for param in chosen:
        if param.flag:
            args.append(param.opts[0])
        elif param.argument:
            args.append(values[param.name])
        elif draw(st.integers(0, 4)) == 0:
            args.append(f"{param.opts[0]}={values[param.name]}")
        else:
            args += [param.opts[0], values[param.name]]
    if draw(st.integers(0, 19)) == 0:  # an unknown option or a stray argument
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(["--nope", "extra"])))
    if draw(st.integers(0, 9)) == 0:
        args.insert(0, "--debug")
    return args


def run_cli(args: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _stdin(text: str):
    import sys

    before = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = before


def check_outcome(args: list[str], code: int, out: str, err: str) -> None:
    debug = "--debug" in args
    assert isinstance(code, int)
    if not debug:
        assert "Traceback" not in err and "Traceback" not in out, (args, err)
    issue = known_issue(err, " ".join(args)) if "internal error" in err else None
    if issue is not None:
        event(f"known issue: {issue.name}")
        return
    assert "internal error" not in err, (args, err)
    if code != 0 and not (code == 1 and _reports_problems(args) and (out or err)):
        assert "Error:" in err, (args, code, err)
        event(f"exit {code}")
    else:
        event("exit 0")


def _reports_problems(args: list[str]) -> bool:
    """validate and doctor exit 1 after a report of the problems they found."""
    return any(a in REPORTING_COMMANDS for a in args[:2])


@pytest.fixture(scope="module")
def cli_env(sandbox: Path, fuzz_workspace: Path):
    return sandbox, fuzz_workspace


@fuzz_settings(250)
@given(data=st.data())
def test_random_argument_vectors(cli_env, data) -> None:
    sandbox, workspace = cli_env
    args = data.draw(argv(sandbox, workspace), label="argv")
    with bounded(20, f"meshsim {' '.join(args)[:200]}"):
        code, out, err = run_cli(args, stdin="SELECT 1;\n.quit\n")
    check_outcome(args, code, out, err)


@fuzz_settings(25)
@given(data=st.data())
def test_random_shell_input(cli_env, data) -> None:
    """The interactive shell fed random lines: statements, dot-commands, garbage."""
    sandbox, workspace = cli_env
    lines = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from([q + ";" for q in QUERIES]),
                st.sampled_from([".tables", ".help", ".format json", ".format xml", ".explain"]),
                st.sampled_from([".explain SELECT 1", ".nope", "SELECT", "'", ";", ""]),
                nasty_text.filter(lambda t: "\udcff" not in t and "\ud800" not in t),
            ),
            max_size=6,
        ),
        label="lines",
    )
    consumer = data.draw(st.sampled_from(CONSUMERS), label="consumer")
    args = ["sql", "--as", consumer, "--workspace", str(workspace)]
    with bounded(20, f"shell {lines!r}"):
        code, out, err = run_cli(args, stdin="\n".join(lines) + "\n")
    check_outcome(args, code, out, err)
