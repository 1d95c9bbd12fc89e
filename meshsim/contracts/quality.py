"""meshsim's quality rules (:mod:`meshsim.spec.quality`) as ODCS quality checks, and back.

A rule ODCS's library has a metric for is written as that metric, so that other ODCS tools
understand it: ``not_null`` is ``nullValues``, ``unique`` is ``duplicateValues`` (over
``arguments.properties`` on a table), ``accepted_values`` and ``regex`` on a column are
``invalidValues`` (``arguments.validValues`` or ``arguments.pattern``), ``row_count`` with numeric
bounds is ``rowCount``; each must be 0 failing rows. A custom SQL rule lists the failing rows,
so it is written as an ODCS ``sql`` check counting them (``mustBe: 0``). Every other rule
(range, freshness, references, a table rule naming its column) is a ``custom`` check with
``engine: meshsim`` whose ``implementation`` is the rule as the product file writes it. The
severity is kept (``warn`` is ODCS's ``warning``).

Reading a check back accepts exactly these shapes; any other check (another metric, another
operator, a ``text`` check, another engine) is refused by its key, never dropped.
"""

from __future__ import annotations

from typing import Any

from open_data_contract_standard.model import DataQuality
from pydantic import BaseModel, TypeAdapter, ValidationError

from meshsim.spec.quality import (
    AcceptedValues,
    CustomSql,
    NotNull,
    QualityRule,
    Regex,
    RowCount,
    Unique,
)

ENGINE = "meshsim"
_SEVERITY = {"error": "error", "warn": "warning"}
_SEVERITY_BACK = {"error": "error", "warning": "warn", "warn": "warn"}
_COMMON = ("name", "severity", "description")
#: the ODCS ``sql`` check of a custom SQL rule: the failing rows, counted
_COUNT_OPEN = "SELECT COUNT(*) FROM (\n"
_COUNT_CLOSE = "\n) AS failing_rows"
_RULE = TypeAdapter(QualityRule)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _library(rule: BaseModel, on_column: bool) -> dict[str, Any] | None:
    """The ODCS library form of ``rule``, or None when the library has no such check."""
    if isinstance(rule, NotNull | Unique):
        metric = "nullValues" if isinstance(rule, NotNull) else "duplicateValues"
        covered = rule.not_null if isinstance(rule, NotNull) else rule.unique
        if on_column and covered is True:
            return {"metric": metric, "mustBe": 0}
        if not on_column and isinstance(covered, list) and covered:
            return {"metric": metric, "mustBe": 0, "arguments": {"properties": list(covered)}}
        return None
    if on_column and isinstance(rule, AcceptedValues) and rule.column is None:
        arguments = {"validValues": list(rule.accepted_values)}
        return {"metric": "invalidValues", "mustBe": 0, "arguments": arguments}
    if on_column and isinstance(rule, Regex) and rule.column is None:
        return {"metric": "invalidValues", "mustBe": 0, "arguments": {"pattern": rule.regex}}
    if isinstance(rule, RowCount):
        low, high = rule.row_count.min, rule.row_count.max
        if not all(_number(b) for b in (low, high) if b is not None):
            return None
        bound: dict[str, Any]
        if low is not None and high is not None:
            bound = {"mustBe": low} if low == high else {"mustBeBetween": [low, high]}
        elif low is not None:
            bound = {"mustBeGreaterOrEqualTo": low}
        else:
            bound = {"mustBeLessOrEqualTo": high}
        return {"metric": "rowCount", **bound}
    return None


def rule_to_check(rule: BaseModel, *, on_column: bool) -> DataQuality:
    """The ODCS check of one rule (of a column when ``on_column``, else of a table)."""
    common: dict[str, Any] = {"severity": _SEVERITY[getattr(rule, "severity", "error")]}
    if getattr(rule, "name", None):
        common["name"] = rule.name  # type: ignore[attr-defined]
    if getattr(rule, "description", ""):
        common["description"] = rule.description  # type: ignore[attr-defined]
    library = _library(rule, on_column)
    if library is not None:
        return DataQuality(type="library", **library, **common)
    if isinstance(rule, CustomSql):
        query = _COUNT_OPEN + rule.sql + _COUNT_CLOSE
        return DataQuality(type="sql", query=query, mustBe=0, unit="rows", **common)
    body = rule.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude=set(_COMMON))
    return DataQuality(type="custom", engine=ENGINE, implementation=body, **common)


class CheckProblems(Exception):
    """The keys of a check meshsim cannot represent (collected by the caller)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


_OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)


def _operators(check: DataQuality) -> dict[str, Any]:
    return {op: getattr(check, op) for op in _OPERATORS if getattr(check, op) is not None}


def _from_library(check: DataQuality, on_column: bool, where: str) -> dict[str, Any]:
    metric = check.metric or check.rule
    operators = _operators(check)
    arguments = dict(check.arguments or {})
    if metric == "rowCount":
        if arguments:
            raise CheckProblems([f"{where}.arguments: rowCount takes no arguments in meshsim"])
        bounds = _row_count_bounds(operators, where)
        return {"row_count": bounds}
    if metric not in ("nullValues", "duplicateValues", "invalidValues"):
        raise CheckProblems(
            [
                f"{where}.metric: '{metric}' has no meshsim rule (meshsim reads nullValues, "
                f"duplicateValues, invalidValues and rowCount)"
            ]
        )
    if operators != {"mustBe": 0}:
        listed = ", ".join(f"{k}: {v}" for k, v in operators.items()) or "none"
        raise CheckProblems(
            [f"{where}: a {metric} check needs 'mustBe: 0' in meshsim (found {listed})"]
        )
    if metric == "invalidValues":
        if not on_column:
            raise CheckProblems([f"{where}: an invalidValues check belongs on a property"])
        keys = sorted(arguments)
        if keys == ["validValues"]:
            return {"accepted_values": arguments["validValues"]}
        if keys == ["pattern"]:
            return {"regex": arguments["pattern"]}
        raise CheckProblems(
            [f"{where}.arguments: an invalidValues check needs exactly one of validValues, pattern"]
        )
    key = "not_null" if metric == "nullValues" else "unique"
    if on_column:
        if arguments:
            raise CheckProblems([f"{where}.arguments: a {metric} check on a property takes none"])
        return {key: True}
    if sorted(arguments) != ["properties"]:
        raise CheckProblems(
            [f"{where}.arguments: a {metric} check on a schema object needs 'properties'"]
        )
    return {key: arguments["properties"]}


def _row_count_bounds(operators: dict[str, Any], where: str) -> dict[str, Any]:
    if list(operators) == ["mustBe"]:
        return {"min": operators["mustBe"], "max": operators["mustBe"]}
    if list(operators) == ["mustBeBetween"]:
        low, high = operators["mustBeBetween"]
        return {"min": low, "max": high}
    if list(operators) == ["mustBeGreaterOrEqualTo"]:
        return {"min": operators["mustBeGreaterOrEqualTo"]}
    if list(operators) == ["mustBeLessOrEqualTo"]:
        return {"max": operators["mustBeLessOrEqualTo"]}
    listed = ", ".join(operators) or "none"
    raise CheckProblems(
        [
            f"{where}: a rowCount check needs one of mustBe, mustBeBetween, "
            f"mustBeGreaterOrEqualTo, mustBeLessOrEqualTo (found {listed})"
        ]
    )


def _from_sql(check: DataQuality, where: str) -> dict[str, Any]:
    query = check.query or ""
    if (
        _operators(check) != {"mustBe": 0}
        or not query.startswith(_COUNT_OPEN)
        or not query.endswith(_COUNT_CLOSE)
    ):
        raise CheckProblems(
            [
                f"{where}.query: meshsim reads a sql check as the count of failing rows, "
                f"written 'SELECT COUNT(*) FROM (<failing rows>) AS failing_rows' with "
                f"'mustBe: 0'"
            ]
        )
    if check.unit not in (None, "rows"):
        raise CheckProblems([f"{where}.unit: '{check.unit}' (a count of failing rows is 'rows')"])
    return {"sql": query[len(_COUNT_OPEN) : -len(_COUNT_CLOSE)]}


def check_to_rule(check: DataQuality, *, on_column: bool, where: str) -> BaseModel:
    """The meshsim rule of an ODCS check, or :class:`CheckProblems` naming the keys meshsim
    cannot represent (``where`` is the check's key path in the contract)."""
    handled = {"type", "name", "severity", "description", "metric", "rule", "arguments"}
    handled |= {"query", "unit", "engine", "implementation", *_OPERATORS}
    extra = sorted(
        k for k in check.model_fields_set if k not in handled and getattr(check, k) is not None
    )
    if extra:
        raise CheckProblems([f"{where}.{k}: meshsim quality rules have no such key" for k in extra])
    if check.metric is not None and check.rule is not None:
        raise CheckProblems(
            [f"{where}.rule: set next to metric (rule is the older name of metric); keep one"]
        )
    kind = check.type or "library"
    if kind == "library":
        body = _from_library(check, on_column, where)
    elif kind == "sql":
        body = _from_sql(check, where)
    elif kind == "custom" and check.engine == ENGINE and isinstance(check.implementation, dict):
        body = dict(check.implementation)
        inner = sorted(k for k in _COMMON if k in body)
        if inner:
            raise CheckProblems(
                [
                    f"{where}.implementation.{k}: the check's own '{k}' says this (ODCS "
                    f"{k}, next to implementation); remove it here"
                    for k in inner
                ]
            )
    elif kind == "custom":
        raise CheckProblems(
            [f"{where}.engine: '{check.engine}' checks cannot run in meshsim (engine: {ENGINE})"]
        )
    else:
        raise CheckProblems([f"{where}.type: '{kind}' checks cannot run in meshsim"])
    unused = [
        k
        for k in ("query", "engine", "implementation", "unit")
        if getattr(check, k) is not None and not _uses(kind, k)
    ]
    if unused:
        raise CheckProblems([f"{where}.{k}: not read by a {kind} check" for k in unused])
    severity = check.severity or "error"
    if severity not in _SEVERITY_BACK:
        raise CheckProblems(
            [f"{where}.severity: '{severity}' (meshsim rules are 'error' or 'warning')"]
        )
    body.update(severity=_SEVERITY_BACK[severity])
    if check.name is not None:
        body["name"] = check.name
    if check.description:
        body["description"] = check.description
    try:
        return _RULE.validate_python(body)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise CheckProblems(
            [f"{where}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        ) from None


_KEYS_OF = {"sql": ("query", "unit"), "custom": ("engine", "implementation")}


def _uses(kind: str, key: str) -> bool:
    return key in _KEYS_OF.get(kind, ())
