"""The request state machine, who may decide, auto-approval, narrowing and expiry."""

from __future__ import annotations

import pytest

from meshsim.catalog import Catalog
from meshsim.errors import CatalogError, MeshsimError, PolicyError
from meshsim.policy.access import resolve_access
from meshsim.workspace import Workspace
from tests.catalog.conftest import table_versions

PROFILES = "customer.customer_profiles"


def pending(catalog: Catalog, consumer: str = "external_partner"):
    made = catalog.request(consumer, PROFILES, "segment analysis")
    assert made.state == "pending"
    return made


def sees(catalog: Catalog, consumer: str, table: str) -> dict[str, str]:
    access = resolve_access(catalog.spec, consumer, table, catalog.effective_policies())
    return {c.column: c.state for c in access.columns}


# --- legal transitions ---------------------------------------------------------------------


def test_request_refused_then_approved_then_revoked(catalog: Catalog):
    assert set(sees(catalog, "external_partner", "customer.customer").values()) == {"denied"}
    made = pending(catalog)
    assert set(sees(catalog, "external_partner", "customer.customer").values()) == {"denied"}
    assert catalog.explain_refusal("external_partner", "customer.customer") == (
        f"request {made.id} for {PROFILES} is still pending approval"
    )

    approved = catalog.approve(made.id, "customer-data", comment="ok")
    assert (approved.state, approved.decided_by, approved.comment) == (
        "approved",
        "customer-data",
        "ok",
    )
    cells = sees(catalog, "external_partner", "customer.customer")
    assert cells["c_custkey"] == "full"
    assert cells["c_name"] == "masked"  # the spec's PII mask still applies to subscribers
    assert catalog.explain_refusal("external_partner", "customer.customer") is None

    revoked = catalog.revoke(made.id, "governance_admin")
    assert (revoked.state, revoked.ended_by) == ("revoked", "governance_admin")
    assert set(sees(catalog, "external_partner", "customer.customer").values()) == {"denied"}
    assert catalog.explain_refusal("external_partner", "customer.customer") == (
        f"request {made.id} for {PROFILES} was revoked by governance_admin at 2026-03-01 12:00 UTC"
    )


def test_reject_needs_a_comment_and_records_it(catalog: Catalog):
    made = pending(catalog)
    with pytest.raises(CatalogError, match="a rejection needs a comment"):
        catalog.reject(made.id, "customer-data", "  ")
    rejected = catalog.reject(made.id, "customer-data", "no business need")
    assert (rejected.state, rejected.comment) == ("rejected", "no business need")
    assert catalog.explain_refusal("external_partner", "customer.customer") == (
        f"request {made.id} for {PROFILES} was rejected by customer-data: no business need"
    )


def test_grants_go_to_the_consumer_itself(catalog: Catalog):
    made = pending(catalog)
    catalog.approve(made.id, "customer-data")
    policies = catalog.subscription_policies()
    assert [(g.name, g.consumers, g.tables) for g in policies.grants] == [
        (
            f"subscription_{made.id}",
            ["external_partner"],
            ["customer.customer", "customer.nation", "customer.region"],
        )
    ]
    assert policies.row_filters == []


# --- illegal transitions, with their exact messages ------------------------------------------


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ("rejected", "approve", "request {id} is rejected; only a pending request can be approved"),
        (
            "rejected",
            "reject",
            "request {id} is already rejected; only a pending request can be rejected",
        ),
        ("rejected", "revoke", "request {id} is rejected; only an approved request can be revoked"),
        (
            "approved",
            "approve",
            "request {id} is already approved; only a pending request can be approved",
        ),
        ("approved", "reject", "request {id} is approved; only a pending request can be rejected"),
        (
            "revoked",
            "revoke",
            "request {id} is already revoked; only an approved request can be revoked",
        ),
        ("revoked", "approve", "request {id} is revoked; only a pending request can be approved"),
        ("pending", "revoke", "request {id} is pending; only an approved request can be revoked"),
    ],
)
def test_illegal_transitions_are_refused(catalog: Catalog, setup: str, action: str, message: str):
    made = pending(catalog)
    if setup == "rejected":
        catalog.reject(made.id, "customer-data", "no")
    elif setup in ("approved", "revoked"):
        catalog.approve(made.id, "customer-data")
        if setup == "revoked":
            catalog.revoke(made.id, "customer-data")
    before = catalog.revision()
    calls = {
        "approve": lambda: catalog.approve(made.id, "customer-data"),
        "reject": lambda: catalog.reject(made.id, "customer-data", "why"),
        "revoke": lambda: catalog.revoke(made.id, "customer-data"),
    }
    with pytest.raises(CatalogError) as info:
        calls[action]()
    assert info.value.message == message.format(id=made.id)
    assert info.value.hint
    assert catalog.get_request(made.id).state == setup
    assert catalog.revision() == before


def test_unknown_request_id(catalog: Catalog):
    made = pending(catalog)
    with pytest.raises(CatalogError) as info:
        catalog.approve(99, "customer-data")
    assert info.value.message == f"request 99 does not exist (latest requests: {made.id})"
    assert "meshsim requests" in (info.value.hint or "")


# --- who may decide --------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["customer-data", "governance_admin"])
def test_owner_and_admin_may_decide(catalog: Catalog, principal: str):
    assert catalog.approve(pending(catalog).id, principal).decided_by == principal


@pytest.mark.parametrize("principal", ["sales-ops", "external_partner", "customer-dta"])
def test_anyone_else_is_refused(catalog: Catalog, principal: str):
    made = pending(catalog)
    for call in (
        lambda: catalog.approve(made.id, principal),
        lambda: catalog.reject(made.id, principal, "no"),
    ):
        with pytest.raises(CatalogError) as info:
            call()
        assert info.value.message.startswith(
            f"'{principal}' may not decide request {made.id} for {PROFILES}; only its owner, "
            f"its domain's owner team or a governance admin may (customer-data, governance_admin)"
        )
    assert catalog.get_request(made.id).state == "pending"


def test_typo_in_principal_suggests_the_owner(catalog: Catalog):
    made = pending(catalog)
    with pytest.raises(CatalogError, match="did you mean 'customer-data'"):
        catalog.approve(made.id, "customer-dta")


# --- auto-approval, scope and narrowing ------------------------------------------------------


def test_scope_without_pii_or_sensitive_columns_is_approved_automatically(catalog: Catalog):
    made = catalog.request(
        "external_partner", "supply.supply_catalog", "catalogue", tables=["partsupp"]
    )
    assert (made.state, made.auto_approved, made.decided_by) == (
        "approved",
        True,
        "meshsim:auto-approval",
    )
    assert made.granted_tables == ("supply.partsupp",)
    assert sees(catalog, "external_partner", "supply.partsupp")["ps_supplycost"] == "full"


def test_sales_has_no_protected_column_so_whole_product_is_automatic(catalog: Catalog):
    assert catalog.request("supply_planner", "sales.order_history", "demand").state == "approved"


def test_any_protected_column_in_scope_waits_for_the_owner(catalog: Catalog):
    # supply.supplier holds s_address/s_phone (pii) and s_acctbal (sensitive)
    made = catalog.request("external_partner", "supply.supply_catalog", "sourcing")
    assert made.state == "pending"
    only_safe = catalog.request(
        "external_partner", "supply.supply_catalog", "x", columns=["supplier.s_name"]
    )
    assert (only_safe.state, only_safe.tables, only_safe.columns) == (
        "approved",
        ("supply.supplier",),
        ("supply.supplier.s_name",),
    )


def test_owner_narrows_columns_and_rows(catalog: Catalog):
    made = pending(catalog)
    approved = catalog.approve(
        made.id,
        "customer-data",
        columns=["c_custkey", "c_mktsegment"],
        row_filter="c_nationkey = 7",
    )
    assert approved.granted_tables == ("customer.customer",)
    assert approved.granted_columns == (
        "customer.customer.c_custkey",
        "customer.customer.c_mktsegment",
    )
    cells = sees(catalog, "external_partner", "customer.customer")
    assert [c for c, s in cells.items() if s != "denied"] == ["c_custkey", "c_mktsegment"]
    assert sees(catalog, "external_partner", "customer.nation")["n_name"] == "denied"
    access = resolve_access(
        catalog.spec, "external_partner", "customer.customer", catalog.effective_policies()
    )
    assert [f.predicate for f in access.row_filters] == ["c_nationkey = 7"]


def test_narrowing_cannot_widen(catalog: Catalog):
    made = catalog.request(
        "external_partner", PROFILES, "x", columns=["customer.customer.c_custkey", "c_phone"]
    )
    with pytest.raises(
        CatalogError, match="may narrow request .*, not widen it: customer.customer.c_name"
    ):
        catalog.approve(made.id, "customer-data", columns=["c_custkey", "c_name"])


def test_row_filter_must_fit_a_granted_table(catalog: Catalog):
    made = pending(catalog)
    with pytest.raises(CatalogError, match="row filter 'o_orderkey = 1' names column"):
        catalog.approve(made.id, "customer-data", row_filter="o_orderkey = 1")
    with pytest.raises(PolicyError, match="row filter is not valid SQL at line 1, column 15"):
        catalog.approve(made.id, "customer-data", row_filter="c_nationkey = = 7")
    assert catalog.get_request(made.id).state == "pending"


def test_request_validation_names_valid_values(catalog: Catalog):
    with pytest.raises(
        MeshsimError, match="consumer 'external_partnr' is not defined; did you mean"
    ):
        catalog.request("external_partnr", PROFILES, "x")
    with pytest.raises(CatalogError, match="product 'customer.profiles' is not defined"):
        catalog.request("external_partner", "customer.profiles", "x")
    with pytest.raises(CatalogError, match="did you mean 'customer'"):
        catalog.request("external_partner", PROFILES, "x", tables=["custmer"])
    with pytest.raises(CatalogError, match="did you mean 'c_name'"):
        catalog.request("external_partner", PROFILES, "x", columns=["c_nam"])
    with pytest.raises(CatalogError, match="needs a reason"):
        catalog.request("external_partner", PROFILES, " ")


# --- expiry ----------------------------------------------------------------------------------


def test_expiry_ends_access_and_is_audited(catalog: Catalog, clock):
    made = catalog.request("external_partner", PROFILES, "x", expires="2026-03-02")
    assert (
        made.expires_at is not None and made.expires_at.isoformat() == "2026-03-03T00:00:00+00:00"
    )
    catalog.approve(made.id, "customer-data")
    revision = catalog.revision()
    clock.advance(hours=35)  # 2026-03-02 23:00: still valid through that day
    assert sees(catalog, "external_partner", "customer.customer")["c_custkey"] == "full"
    clock.advance(hours=1)
    assert catalog.subscription_policies().grants == []
    assert catalog.revision() == revision + 1  # the expiry is a decision: caches must drop
    assert catalog.get_request(made.id).state == "expired"
    with pytest.raises(CatalogError, match="is expired; only an approved request can be revoked"):
        catalog.revoke(made.id, "customer-data")
    event = catalog.audit(limit=1)[0]
    assert (event["transition"], event["principal"], event["request_id"]) == (
        "approved->expired",
        "meshsim:expiry",
        made.id,
    )


def test_expiry_must_be_in_the_future(catalog: Catalog):
    with pytest.raises(CatalogError, match="expiry 2026-03-01 00:00 UTC is not in the future"):
        catalog.request("external_partner", PROFILES, "x", expires="2026-02-28")
    with pytest.raises(CatalogError, match="expiry 'soon' is not a date"):
        catalog.request("external_partner", PROFILES, "x", expires="soon")


def test_a_request_that_expired_while_pending_cannot_be_approved(catalog: Catalog, clock):
    made = catalog.request("external_partner", PROFILES, "x", expires="2026-03-01")
    clock.advance(days=1)
    with pytest.raises(CatalogError, match="which has passed"):
        catalog.approve(made.id, "customer-data")


# --- audit and revision ----------------------------------------------------------------------


def test_every_decision_is_audited_with_who_when_why(catalog: Catalog, clock):
    made = pending(catalog)
    clock.advance(minutes=5)
    catalog.approve(made.id, "customer-data", comment="campaign approved")
    clock.advance(minutes=5)
    catalog.revoke(made.id, "governance_admin", comment="campaign over")
    events = list(reversed(catalog.audit(request_id=made.id)))
    assert [(e["transition"], e["principal"], e["reason"], e["time"][:16]) for e in events] == [
        ("new->pending", "external_partner", "segment analysis", "2026-03-01T12:00"),
        ("pending->approved", "customer-data", "campaign approved", "2026-03-01T12:05"),
        ("approved->revoked", "governance_admin", "campaign over", "2026-03-01T12:10"),
    ]


def test_revision_moves_on_every_decision(catalog: Catalog):
    start = catalog.revision()
    made = pending(catalog)
    catalog.approve(made.id, "customer-data")
    catalog.revoke(made.id, "customer-data")
    assert catalog.revision() == start + 3


def test_query_audit_records_round_trip(catalog: Catalog):
    from dataclasses import dataclass
    from datetime import UTC, datetime

    @dataclass
    class Record:
        time: datetime
        consumer: str
        sql: str
        decision: str
        reason: str | None
        tables: dict
        columns: list
        policies: list
        rows: int | None
        duration_ms: float

    catalog.append_audit(
        Record(
            datetime(2026, 3, 1, tzinfo=UTC),
            "external_partner",
            "SELECT 1",
            "refused",
            "request 1 was revoked",
            {"customer.customer": 3},
            ["c_name"],
            ["pii_keyed_hash"],
            None,
            1.5,
        )
    )
    [row] = catalog.audit(consumer="external_partner", limit=1)
    assert (row["kind"], row["decision"], row["tables"], row["columns"], row["duration_ms"]) == (
        "query",
        "refused",
        {"customer.customer": 3},
        ["c_name"],
        1.5,
    )
    with pytest.raises(CatalogError, match="audit decision 'maybe'"):
        catalog.append_audit({"decision": "maybe"})


def test_a_column_the_spec_excludes_is_not_auto_approved(tmp_path, spec, clock):
    """Found in review: an excluded, non-sensitive column (c_mktsegment excluded from the
    marketing grant) was approved automatically, undoing governance's exclusion."""
    policies = spec.policies
    grants = [
        g.model_copy(
            update={"exclude_columns": [*g.exclude_columns, "customer.customer.c_mktsegment"]}
        )
        if g.name == "marketing_customer_profiles"
        else g
        for g in policies.grants
    ]
    narrowed = spec.with_policies(policies.model_copy(update={"grants": grants}))
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: narrowed, clock=clock)
    catalog.publish_all(*table_versions(narrowed))
    assert sees(catalog, "eu_marketing_analyst", "customer.customer")["c_mktsegment"] == "denied"
    request = catalog.request(
        "eu_marketing_analyst",
        "customer.customer_profiles",
        "segments",
        tables=["customer.customer"],
        columns=["customer.customer.c_mktsegment"],
    )
    assert request.state == "pending"
    assert sees(catalog, "eu_marketing_analyst", "customer.customer")["c_mktsegment"] == "denied"
    other = catalog.request(  # not excluded for this consumer: still approved automatically
        "external_partner",
        "customer.customer_profiles",
        "segments",
        tables=["customer.customer"],
        columns=["customer.customer.c_mktsegment"],
    )
    assert other.state == "approved"
