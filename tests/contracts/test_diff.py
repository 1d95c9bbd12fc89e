"""Breaking-change classification between two versions of a product."""

from __future__ import annotations

from typing import Any

import pytest

from meshsim.contracts.diff import diff_products
from meshsim.contracts.impact import breaking_changes
from meshsim.spec.loader import load_mesh
from meshsim.spec.models import Product
from tests.conftest import REPO

BASE: dict[str, Any] = {
    "name": "orders",
    "owner": "shop-team",
    "description": "Orders.",
    "freshness_sla": "24h",
    "tables": [
        {
            "name": "orders",
            "primary_key": ["id"],
            "columns": [
                {"name": "id", "type": "integer", "nullable": False, "classification": "internal"},
                {"name": "email", "type": "varchar", "classification": "pii"},
                {
                    "name": "amount",
                    "type": "decimal(10,2)",
                    "classification": "internal",
                    "quality": [{"range": {"min": 0, "max": 100}}],
                },
                {
                    "name": "status",
                    "type": "varchar",
                    "classification": "internal",
                    "quality": [{"accepted_values": ["F", "O"]}, "not_null"],
                },
            ],
            "quality": [{"row_count": {"min": 1}}, {"freshness": "24h"}],
        }
    ],
}


def _product(**edits: Any) -> Product:
    """BASE with ``edits``: ``column_<name>={field: value}`` edits a column (None removes it),
    ``table={field: value}`` the table, anything else the product."""
    import copy

    data = copy.deepcopy(BASE)
    table = data["tables"][0]
    for key, value in edits.items():
        if key.startswith("column_"):
            name = key.removeprefix("column_")
            index = next(i for i, c in enumerate(table["columns"]) if c["name"] == name)
            if value is None:
                del table["columns"][index]
            else:
                table["columns"][index].update(value)
        elif key == "table":
            table.update(value)
        else:
            data[key] = value
    return Product.model_validate(data)


#: the minimal mesh's consumers and policies (shop.orders granted to analyst, pii hashed)
SPEC = load_mesh(REPO / "meshsim" / "examples" / "minimal")


def _changes(new: Product, old: Product | None = None) -> list[tuple[str, str, bool]]:
    changes = diff_products("shop", old or _product(), new, SPEC)
    return [(c.what, c.target, c.breaking) for c in changes]


def test_no_change_no_changes():
    assert _changes(_product()) == []


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({"column_email": None}, ("column removed", "shop.orders.email", True)),
        (
            {"column_amount": {"type": "decimal(8,2)"}},
            ("type narrowed", "shop.orders.amount", True),
        ),
        ({"column_id": {"type": "bigint"}}, ("type widened", "shop.orders.id", False)),
        ({"column_id": {"type": "varchar"}}, ("type narrowed", "shop.orders.id", True)),
        (
            {"column_amount": {"type": "decimal(12,2)"}},
            ("type widened", "shop.orders.amount", False),
        ),
        ({"table": {"primary_key": ["id", "email"]}}, ("primary key changed", "shop.orders", True)),
        ({"column_id": {"nullable": True}}, ("nullability loosened", "shop.orders.id", True)),
        (
            {"column_email": {"nullable": False}},
            ("nullability tightened", "shop.orders.email", True),
        ),
        (
            {"column_email": {"description": "Who ordered."}},
            ("column description changed", "shop.orders.email", False),
        ),
        ({"description": "All orders."}, ("description changed", "shop.orders", False)),
        (
            {"table": {"description": "One per order."}},
            ("table description changed", "shop.orders", False),
        ),
        # the order rows are stored in changes no answer, only which row groups a reader skips
        ({"table": {"sort_by": ["amount"]}}, ("table sort_by changed", "shop.orders", False)),
        ({"freshness_sla": "2d"}, ("freshness SLA loosened", "shop.orders", True)),
        ({"freshness_sla": "30m"}, ("freshness SLA tightened", "shop.orders", False)),
        ({"freshness_sla": None}, ("freshness SLA removed", "shop.orders", True)),
        ({"version": "1.1.0"}, ("version", "shop.orders", False)),
        # quality: removed or loosened breaks, added or tightened does not
        (
            {"column_status": {"quality": [{"accepted_values": ["F", "O"]}]}},
            ("quality rule removed", "shop.orders.status", True),
        ),
        (
            {"column_status": {"quality": [{"accepted_values": ["F", "O", "P"]}, "not_null"]}},
            ("quality rule loosened", "shop.orders.status", True),
        ),
        (
            {"column_status": {"quality": [{"accepted_values": ["F"]}, "not_null"]}},
            ("quality rule tightened", "shop.orders.status", False),
        ),
        (
            {"column_status": {"quality": [{"accepted_values": ["F", "X"]}, "not_null"]}},
            ("quality rule changed", "shop.orders.status", True),
        ),
        (
            {
                "column_status": {
                    "quality": [
                        {"accepted_values": ["F", "O"]},
                        {"not_null": True, "severity": "warn"},
                    ]
                }
            },
            ("quality rule loosened", "shop.orders.status", True),
        ),
        (
            {
                "column_status": {
                    "quality": [{"accepted_values": ["F", "O"], "description": "codes"}, "not_null"]
                }
            },
            ("quality rule reworded", "shop.orders.status", False),
        ),
        (
            {"column_status": {"quality": [{"accepted_values": ["O", "F"]}, "not_null"]}},
            ("quality rule reworded", "shop.orders.status", False),
        ),
        (
            {
                "column_status": {
                    "quality": [{"accepted_values": ["F"], "severity": "warn"}, "not_null"]
                }
            },
            ("quality rule changed", "shop.orders.status", True),
        ),
        (
            {
                "column_status": {
                    "quality": [
                        {"accepted_values": ["F", "O", "P"], "severity": "warn"},
                        "not_null",
                    ]
                }
            },
            ("quality rule loosened", "shop.orders.status", True),
        ),
        (
            {"table": {"quality": [{"row_count": {"min": 1}}, {"freshness": "1d"}]}},
            ("quality rule reworded", "shop.orders", False),
        ),
        (
            {
                "table": {
                    "quality": [
                        {"row_count": {"min": 1}},
                        {"row_count": {"max": 9}},
                        {"freshness": "24h"},
                    ]
                }
            },
            ("quality rule added", "shop.orders", False),
        ),
        (
            {"table": {"quality": [{"freshness": "24h"}]}},
            ("quality rule removed", "shop.orders", True),
        ),
        (
            {"column_amount": {"quality": [{"range": {"min": 0, "max": 1000}}]}},
            ("quality rule loosened", "shop.orders.amount", True),
        ),
        (
            {"column_amount": {"quality": [{"range": {"min": 10, "max": 100}}]}},
            ("quality rule tightened", "shop.orders.amount", False),
        ),
        (
            {"column_amount": {"quality": [{"range": {"min": 10, "max": 1000}}]}},
            ("quality rule changed", "shop.orders.amount", True),
        ),
        (
            {"column_amount": {"quality": [{"range": {"max": 100}}]}},
            ("quality rule loosened", "shop.orders.amount", True),
        ),
        (
            {"column_email": {"quality": ["unique"]}},
            ("quality rule added", "shop.orders.email", False),
        ),
        (
            {"table": {"quality": [{"row_count": {"min": 1}}, {"freshness": "48h"}]}},
            ("quality rule loosened", "shop.orders", True),
        ),
        (
            {"table": {"quality": [{"row_count": {"min": 10}}, {"freshness": "24h"}]}},
            ("quality rule tightened", "shop.orders", False),
        ),
    ],
)
def test_each_change_is_classified(edits: dict[str, Any], expected: tuple[str, str, bool]):
    assert _changes(_product(**edits)) == [expected]


def test_a_column_replaced_by_one_of_its_type_is_a_rename():
    columns = [dict(c) for c in BASE["tables"][0]["columns"]]
    columns[1] = {"name": "e_mail", "type": "varchar", "classification": "pii"}
    renamed = _product(table={"columns": columns})
    assert _changes(renamed) == [("column renamed", "shop.orders.email", True)]


def test_a_column_added_is_not_breaking_and_a_table_removed_is():
    columns = [*BASE["tables"][0]["columns"], {"name": "note", "type": "varchar"}]
    assert _changes(_product(table={"columns": columns})) == [
        ("column added", "shop.orders.note", False)
    ]
    two_tables = _product(tables=[*BASE["tables"], {"name": "lines"}])
    assert _changes(_product(), old=two_tables) == [("table removed", "shop.lines", True)]
    assert _changes(two_tables) == [("table added", "shop.lines", False)]


def test_a_new_major_version_allows_the_break():
    removed = _product(column_email=None)
    assert [c.what for c in breaking_changes(SPEC, "shop", _product(), removed)] == [
        "column removed"
    ]
    minor = _product(column_email=None, version="1.9.0")
    assert [c.what for c in breaking_changes(SPEC, "shop", _product(), minor)] == ["column removed"]
    major = _product(column_email=None, version="2.0.0")
    assert breaking_changes(SPEC, "shop", _product(), major) == []


def test_a_rule_added_before_an_equal_keyed_one_is_an_addition():
    # found merging the quality gates: a second row_count rule written in front of the first
    # was compared with the old rule, which then looked loosened (a breaking change)
    rules = [{"row_count": {"max": 9}}, *BASE["tables"][0]["quality"]]
    assert _changes(_product(table={"quality": rules})) == [
        ("quality rule added", "shop.orders", False)
    ]


# --- access changes, judged by effect under the mesh's policies --------------------------


def _access(new: Product, old: Product | None = None) -> list[tuple[str, str, bool, tuple]]:
    changes = diff_products("shop", old or _product(), new, SPEC)
    return [(c.what, c.target, c.breaking, c.consumers) for c in changes if c.what != "version"]


CLASSIFIED = "column classification changed"


@pytest.mark.parametrize(
    ("classification", "expected"),
    [
        # the only mask (hash_pii) selects pii: any other classification unmasks it
        ("sensitive", [("protection loosened", "shop.orders.email", True, ("analyst",))]),
        ("internal", [("protection loosened", "shop.orders.email", True, ("analyst",))]),
        ("secret", [("protection loosened", "shop.orders.email", True, ("analyst",))]),
    ],
)
def test_a_classification_change_that_unmasks_a_column_is_breaking(classification, expected):
    changes = _access(_product(column_email={"classification": classification}))
    assert changes == [(CLASSIFIED, "shop.orders.email", False, ()), *expected]


def test_a_classification_change_nobody_sees_is_not_breaking():
    # internal -> public: no mask selects either, the analyst sees id in full before and after
    assert _access(_product(column_id={"classification": "public"})) == [
        (CLASSIFIED, "shop.orders.id", False, ())
    ]


def test_a_classification_that_masks_more_is_reported_not_breaking():
    changes = _access(_product(column_id={"classification": "pii"}))
    assert changes == [
        (CLASSIFIED, "shop.orders.id", False, ()),
        ("protection tightened", "shop.orders.id", False, ()),
    ]


def test_tags_that_bring_a_column_under_a_tag_grant_grant_access_without_breaking():
    # the analyst's tag grant reads confidentiality=public: a product it was not granted. New
    # access to columns whose classification did not change breaks no consumer (a governance
    # decision, like retagging in Lake Formation); the pii column arrives masked
    other = _product(name="other")
    public = _product(name="other", tags={"confidentiality": "public"})
    changes = diff_products("shop", other, public, SPEC)
    granted = [c for c in changes if c.what == "access granted"]
    assert [c.target for c in granted] == [
        f"shop.orders.{n}" for n in ("id", "email", "amount", "status")
    ]
    assert not any(c.breaking for c in changes if c.what in ("access granted", "tags changed"))
    assert "analyst denied -> masked" in str(next(c for c in granted if c.target.endswith("email")))


def test_a_reclassified_column_newly_read_raw_is_a_loosening():
    # the same new access, but the column's classification was lowered on the way
    other = _product(name="other")
    public = _product(
        name="other",
        tags={"confidentiality": "public"},
        column_email={"classification": "internal"},
    )
    loosened = [c for c in diff_products("shop", other, public, SPEC) if c.breaking]
    assert ("protection loosened", "shop.orders.email") in {(c.what, c.target) for c in loosened}


def test_tags_that_take_a_tag_grant_away_break_its_consumers():
    public = _product(name="other", tags={"confidentiality": "public"})
    internal = _product(name="other", tags={"confidentiality": "internal"})
    removed = [c for c in diff_products("shop", public, internal, SPEC) if c.breaking]
    assert {(c.what, c.consumers) for c in removed} == {("access removed", ("analyst",))}
    assert len(removed) == 4
    assert "analyst masked -> denied" in str(next(c for c in removed if c.target.endswith("email")))


def test_a_waiver_for_a_consumer_who_reads_the_column_is_breaking():
    waiver = {"consumers": ["analyst"], "reason": "KYC"}
    changes = _access(_product(column_email={"allow_unmasked": waiver}))
    assert ("protection waived", "shop.orders.email", True, ("analyst",)) in changes
    admin = {"consumers": ["governance_admin"], "reason": "audits"}  # reads it raw anyway
    assert not any(c[2] for c in _access(_product(column_email={"allow_unmasked": admin})))


@pytest.mark.parametrize("spelled", ["24 h", "1440m", "1d"])
def test_one_freshness_spelled_another_way_is_no_change(spelled: str):
    assert _changes(_product(freshness_sla=spelled)) == []
