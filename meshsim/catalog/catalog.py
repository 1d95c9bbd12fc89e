"""``Catalog``: the central governance account of the mesh, as one object.

It publishes products, answers discovery, runs the subscription workflow and keeps the audit
log, all in the workspace's ``governance/catalog.db``. It is safe to use from several
processes at once. The :class:`~meshsim.mesh.Mesh` facade exposes it as ``mesh.catalog``;
tests build it directly over a workspace and a spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from meshsim.catalog import audit as audit_log
from meshsim.catalog import views, workflow
from meshsim.catalog.backup import journal_audit, reserve_audit_ids
from meshsim.catalog.models import (
    ProductDetails,
    PublishedVersion,
    Request,
    stamp,
    utcnow,
)
from meshsim.catalog.publish import PublishGateError, publish_version, record_spec_grants
from meshsim.catalog.quality import latest_results, record_run
from meshsim.catalog.search import count as search_count
from meshsim.catalog.search import search as search_index
from meshsim.catalog.store import Store, revision
from meshsim.errors import CatalogError, unknown_name_message
from meshsim.identity import authenticate, current_os_user
from meshsim.quality.results import CheckRun
from meshsim.spec.loader import MeshSpec, ProductSpec
from meshsim.spec.models import Policies
from meshsim.values import bounded_int, optional_limit, plain_text
from meshsim.workspace import TableRecord, Workspace


class Catalog:
    """Products, requests, grants, decisions and audit of one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        spec: Callable[[], MeshSpec],
        *,
        clock: Callable[[], datetime] = utcnow,
        create: bool | None = None,
        built: Callable[[], Mapping[str, TableRecord]] | None = None,
        identity_spec: Callable[[], MeshSpec] | None = None,
    ) -> None:
        """``create``: whether a missing catalog may be created (by default only until a
        build has created it, see :meth:`Workspace.catalog_expected`); ``built``: the
        workspace's table records (the facade's, re-read only when workspace.json changes;
        by default read on each call); ``identity_spec``: the spec as the identity check of a
        request or decision reads it (the facade's sees a binding added to any file since;
        by default ``spec``)."""
        self.workspace = workspace
        self._spec = spec
        self._identity_spec = identity_spec or spec
        self._built_tables = built
        self._clock = clock
        if create is None:
            create = not workspace.catalog_expected()
        self.store = Store(workspace.governance, create=create)

    @property
    def spec(self) -> MeshSpec:
        return self._spec()

    def _now(self, now: datetime | None = None) -> datetime:
        moment = now or self._clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _product(self, ref: str, spec: MeshSpec | None = None) -> ProductSpec:
        """The product ``ref`` of ``spec`` (pass the command's spec: each read of
        :attr:`spec` checks the spec files for changes)."""
        spec = spec or self.spec
        product = spec.product(ref.lower())
        if product is None:
            raise CatalogError(
                unknown_name_message("product", ref, [p.ref for p in spec.products()]),
                hint="run 'meshsim products' to list the published ones",
            )
        return product

    def _published(self, con: Any, ref: str) -> None:
        if con.execute("SELECT 1 FROM products WHERE ref = ?", (ref,)).fetchone() is None:
            raise CatalogError(
                f"product '{ref}' is not published yet", hint=f"run 'meshsim publish {ref}'"
            )

    # --- publishing --------------------------------------------------------------------------

    def _built(self) -> Mapping[str, TableRecord]:
        if self._built_tables is not None:
            return self._built_tables()
        return self.workspace.read_state().tables

    def publish(
        self,
        product_ref: str,
        table_versions: dict[str, int] | None = None,
        rows: dict[str, int | None] | None = None,
        *,
        principal: str | None = None,
        reason: str = "",
    ) -> PublishedVersion:
        """Publish a version of a product from the spec and its tables' current versions
        (read from the workspace when not given). Unchanged products keep their version.
        ``principal`` and ``reason`` are audited (a producer's write names its writer)."""
        spec = self.spec
        product = self._product(product_ref, spec)
        if table_versions is None:
            built = self._built()
            table_versions = {r: v.version for r, v in built.items()}
            rows = {r: v.rows for r, v in built.items()} if rows is None else rows
        os_user = current_os_user()
        with self.store.write() as con:
            return publish_version(
                con,
                spec,
                product,
                table_versions,
                rows or {},
                self._now(),
                os_user,
                principal=principal,
                reason=reason,
            )

    def refuse_breaking(self, product_refs: list[str] | None = None) -> None:
        """Refuse (:class:`~meshsim.contracts.impact.BreakingChangeError`) a spec whose product
        breaks its latest published version without a new major version: what publishing
        would refuse, checked before a build or a write changes a table consumers read."""
        from meshsim.contracts.impact import refuse_breaking

        spec = self.spec
        wanted = [p for p in spec.products() if product_refs is None or p.ref in product_refs]
        from meshsim.catalog.models import stamp
        from meshsim.contracts.live import refuse_moves

        with self.store.read() as con:
            for product in wanted:
                published = views.latest_schema(con, product.ref)
                if published is not None:
                    refuse_breaking(con, spec, product, published, self._now())
            # a renamed product, a table moved between products, a product deleted
            refuse_moves(con, spec, wanted if product_refs else spec.products(), stamp(self._now()))

    def published_products(self, product_ref: str) -> list[tuple[int, Any]]:
        """Every published version of a product, oldest first: (catalog version, its spec as
        published, a :class:`~meshsim.spec.models.Product`)."""
        ref = self._product(product_ref).ref
        with self.store.read() as con:
            return views.published_products(con, ref)

    def published_table_versions(self, table_ref: str) -> set[int]:
        """Every Delta version of ``table_ref`` some published product version pinned."""
        import json

        table = self.spec.table(table_ref)
        if table is None:
            return set()
        with self.store.read() as con:
            rows = con.execute(
                "SELECT tables FROM product_versions WHERE product = ?",
                (f"{table.domain}.{table.product}",),
            ).fetchall()
        found = (json.loads(row["tables"]).get(table.ref) for row in rows)
        return {int(v) for v in found if v is not None}

    def publish_all(
        self,
        table_versions: dict[str, int] | None = None,
        rows: dict[str, int | None] | None = None,
    ) -> list[PublishedVersion]:
        """Publish every product and the grants mesh.yaml declares, in one transaction.
        A gate failure lists the problems of every product and publishes nothing."""
        spec = self.spec
        if table_versions is None:
            built = self._built()
            table_versions = {r: v.version for r, v in built.items()}
            rows = {r: v.rows for r, v in built.items()} if rows is None else rows
        now = self._now()
        os_user = current_os_user()
        published: list[PublishedVersion] = []
        problems: list[str] = []
        with self.store.write() as con:
            for product in spec.products():
                try:
                    published.append(
                        publish_version(
                            con, spec, product, table_versions, rows or {}, now, os_user
                        )
                    )
                except PublishGateError as exc:
                    problems.extend(f"{product.ref}: {p}" for p in exc.problems)
            if problems:
                raise CatalogError(
                    f"{len(problems)} problem(s) stop publishing the mesh:\n"
                    + "\n".join(f"  - {p}" for p in problems),
                    hint="fix the product files, then run 'meshsim build' again",
                )
            record_spec_grants(con, spec.policies, now)
        self.store.forget_backed_up()  # now, not in the first request after the build
        return published

    # --- discovery ---------------------------------------------------------------------------

    def products(
        self,
        as_consumer: str | None = None,
        *,
        count: views.RowCounter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Published products in ref order (a page of ``limit`` from ``offset``: only those
        are read). Row counts: the published totals without ``as_consumer`` (the operator's
        view), for a consumer only what ``count`` gives (see :mod:`.views`)."""
        limit, offset = optional_limit(limit), bounded_int(offset, what="offset")
        if as_consumer is not None:
            from meshsim.policy.access import require_consumer

            require_consumer(self.spec, as_consumer)
        now = self._now()
        with self.store.read() as con:
            latest = views.latest_versions(con, limit, offset)
            paged = limit is not None or offset > 0
            refs = [row["ref"] for row in latest] if paged else None
            subscribers = views.subscriber_counts(con, now, refs)
        return views.products(latest, subscribers, views.counter_for(as_consumer, count))

    def product_count(self) -> int:
        """How many products are published (the total under a page of :meth:`products`)."""
        with self.store.read() as con:
            return views.product_total(con)

    def search(self, text: str, limit: int | None = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Hits ranked ``offset + 1`` to ``offset + limit``, best first."""
        limit = optional_limit(limit)
        offset = bounded_int(offset, what="offset")
        with self.store.read() as con:
            return search_index(con, plain_text(text, what="the search text"), limit, offset)

    def search_count(self, text: str) -> int:
        """How many hits :meth:`search` has for ``text`` (the total under a page of it)."""
        with self.store.read() as con:
            return search_count(con, plain_text(text, what="the search text"))

    def show(
        self,
        product_ref: str,
        as_consumer: str | None = None,
        *,
        count: views.RowCounter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ProductDetails:
        """One product in detail; for ``as_consumer``, what it would see of each column, and
        row counts only as ``count`` gives them (see :mod:`.views`). With ``limit`` or
        ``offset``, a page of each list, their counts in ``totals`` (only that page of
        versions is read and counted)."""
        limit = optional_limit(limit)
        offset = bounded_int(offset, what="offset")
        paged = limit is not None or offset > 0
        spec = self.spec
        ref = self._product(product_ref, spec).ref
        if as_consumer is not None:
            from meshsim.policy.access import require_consumer

            require_consumer(spec, as_consumer)
        now = self._now()
        with self.store.read() as con:
            self._published(con, ref)
            schema = views.latest_schema(con, ref)
            assert schema is not None
            history = views.versions(con, ref, limit, offset)
            version_total = views.version_count(con, ref) if paged else len(history)
            # the newest version says when the data last changed, on every page
            latest = history[:1] if offset == 0 and history else views.versions(con, ref, 1)
            # the product's approved requests and the count of its pending ones, through the
            # (product, state) index: not its decided history nor anyone else's
            approved = self._requests(con, state="approved", product=ref)
            pending = views.pending_count(con, ref)
            quality = latest_results(con, ref)
        history = views.recount(history, views.counter_for(as_consumer, count))
        active = [r for r in approved if r.active(now)]
        policies = self._merge(views.product_policies(spec, ref), active, spec)
        updated = self._updated_at(ref, latest, spec)
        details = views.show(
            spec,
            ref.split(".")[0],
            schema,
            history,
            active,
            pending,
            policies,
            as_consumer,
            updated,
            now,
        )
        if not paged:
            return replace(details, quality=quality)
        end = None if limit is None else offset + limit
        return replace(
            details,
            quality=quality[offset:end],
            columns=details.columns[offset:end],
            subscribers=details.subscribers[offset:end],
            totals={
                "versions": version_total,
                "columns": len(details.columns),
                "quality": len(quality),
                "subscribers": len(details.subscribers),
            },
        )

    def record_checks(self, run: CheckRun) -> None:
        """Store a check run's results, each with the table version it checked."""
        if run.results:
            with self.store.write() as con:
                record_run(con, run)

    def _updated_at(self, ref: str, history: list[dict[str, Any]], spec: MeshSpec) -> datetime:
        """When the product's data last changed: its tables' build times, else publication."""
        published = datetime.fromisoformat(history[0]["published_at"])
        if not self.workspace.exists:
            return published
        built = self._built()
        records = [built.get(t) for t in history[0]["tables"]]
        known = [r.built_at for r in records if r is not None and r.built_at is not None]
        return max(known) if known else published

    # --- the subscription workflow ---------------------------------------------------------

    def request(
        self,
        consumer: str,
        product_ref: str,
        reason: str,
        tables: list[str] | None = None,
        columns: list[str] | None = None,
        expires: date | datetime | str | None = None,
    ) -> Request:
        """File a request; it is approved at once when its scope has no PII/sensitive column."""
        from meshsim.policy.access import require_consumer

        spec = self._identity_spec()
        require_consumer(spec, consumer)
        actor = authenticate(spec, consumer)
        product = self._product(product_ref, spec)
        plain_text(reason, what="the reason")
        if not reason or not reason.strip():
            raise CatalogError(
                "a request needs a reason the owner can judge", hint="pass --reason TEXT"
            )
        now = self._now()
        expires_at = parse_expiry(expires, now) if expires is not None else None
        scope_tables, scope_columns = workflow.resolve_scope(spec, product, tables, columns)
        with self.store.write() as con:
            self._published(con, product.ref)
            return workflow.create(
                con,
                spec,
                actor,
                product,
                reason.strip(),
                scope_tables,
                scope_columns,
                expires_at,
                now,
            )

    def get_request(self, request_id: int) -> Request:
        with self.store.read() as con:
            return workflow.load_request(con, request_id)

    def requests(
        self,
        pending: bool = False,
        consumer: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Request]:
        """Requests in id order (a page of ``limit`` from ``offset``: only that page is read)."""
        limit = optional_limit(limit)
        offset = bounded_int(offset, what="offset")
        self.expire()
        with self.store.read() as con:
            state = "pending" if pending else None
            return self._requests(con, state=state, consumer=consumer, page=(limit, offset))

    def request_count(self, pending: bool = False, consumer: str | None = None) -> int:
        """How many requests :meth:`requests` lists (the total under a page of it)."""
        with self.store.read() as con:
            where, params = _request_filter("pending" if pending else None, consumer, None)
            return int(con.execute("SELECT count(*) FROM requests" + where, params).fetchone()[0])

    @staticmethod
    def _requests(
        con: Any,
        state: str | None = None,
        consumer: str | None = None,
        product: str | None = None,
        page: tuple[int | None, int] = (None, 0),
    ) -> list[Request]:
        where, params = _request_filter(state, consumer, product)
        limit, offset = page
        sql = f"SELECT * FROM requests{where} ORDER BY id LIMIT ? OFFSET ?"
        rows = con.execute(sql, [*params, -1 if limit is None else limit, offset])
        return [Request.from_row(r) for r in rows]

    def _decide(
        self, request_id: int, action: Callable[..., Request], by: str, *args: Any
    ) -> Request:
        bounded_int(request_id, what="request id", minimum=1)
        for text in args:
            if isinstance(text, str):
                plain_text(text, what="the comment or row filter")
        spec = self._identity_spec()
        actor = authenticate(spec, by)
        now = self._now()
        with self.store.write() as con:
            workflow.expire_due(con, now, actor.os_user)
            request = workflow.load_request(con, request_id)
            product = self._product(request.product, spec)
            return action(con, spec, product, request, actor, *args, now)

    def approve(
        self,
        request_id: int,
        by: str,
        columns: list[str] | None = None,
        row_filter: str | None = None,
        comment: str | None = None,
    ) -> Request:
        """Approve a pending request, optionally narrowed to fewer columns or to a row filter."""
        return self._decide(request_id, workflow.approve, by, columns, row_filter, comment)

    def reject(self, request_id: int, by: str, comment: str) -> Request:
        return self._decide(request_id, workflow.reject, by, comment)

    def revoke(self, request_id: int, by: str, comment: str | None = None) -> Request:
        return self._decide(request_id, workflow.revoke, by, comment)

    def expire(self, now: datetime | None = None) -> list[int]:
        """End every approved request past its expiry; returns their ids."""
        os_user = current_os_user()
        with self.store.write() as con:
            return workflow.expire_due(con, self._now(now), os_user)

    # --- grants ------------------------------------------------------------------------------

    def _active(self, now: datetime, consumer: str | None = None) -> list[Request]:
        with self.store.read() as con:
            approved = self._requests(con, state="approved", consumer=consumer)
            return [r for r in approved if r.active(now)]

    def _merge(self, base: Policies, active: list[Request], spec: MeshSpec) -> Policies:
        grants, filters = list(base.grants), list(base.row_filters)
        for request in active:
            extra = workflow.request_policies(spec, request)
            grants.extend(extra.grants)
            filters.extend(extra.row_filters)
        return base.model_copy(update={"grants": grants, "row_filters": filters})

    def subscription_policies(self, now: datetime | None = None) -> Policies:
        """The active approved subscriptions as grants to each consumer itself, plus the row
        filters owners attached; to be merged with the spec's policies by the query layer."""
        return self._merge(Policies(), self._active(self._now(now)), self.spec)

    def effective_policies(
        self,
        policies: Policies | None = None,
        now: datetime | None = None,
        consumer: str | None = None,
        *,
        active: Sequence[Request] | None = None,
    ) -> Policies:
        """``policies`` (the spec's by default) plus the active subscriptions (of ``consumer``
        only, when given: a subscription grants its own consumer, so another's never changes
        what ``consumer`` may read, and a query reads its consumer's rows, not every one);
        ``active``: those subscriptions, read already with :meth:`active_requests`."""
        spec = self.spec
        base = policies if policies is not None else spec.policies
        if active is None:
            active = self._active(self._now(now), consumer)
        return self._merge(base, list(active), spec)

    def active_requests(self, consumer: str | None = None) -> tuple[Request, ...]:
        """The approved requests in force now (``consumer``'s only, when given): what
        :meth:`effective_policies` merges."""
        return tuple(self._active(self._now(), consumer))

    def subscriptions(
        self, consumer: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Active subscriptions from approved requests, then the grants mesh.yaml declares
        (a page of ``limit`` from ``offset``: only that page of requests is read)."""
        limit = optional_limit(limit)
        offset = bounded_int(offset, what="offset")
        spec = self._subscriber_spec(consumer)
        self.expire()
        where, params = self._active_filter(consumer)
        with self.store.read() as con:
            sql = f"SELECT * FROM requests{where} ORDER BY id LIMIT ? OFFSET ?"
            rows = con.execute(sql, [*params, -1 if limit is None else limit, offset])
            page = [views.request_subscription_row(Request.from_row(r)) for r in rows]
            if limit is not None and len(page) == limit:
                return page  # the declared grants come after the requests
            requested = len(page) + offset if page else self._count(con, where, params)
            declared = views.spec_grant_rows(con, spec, consumer)
        start = max(offset - requested, 0)
        wanted = None if limit is None else limit - len(page)
        return page + declared[start : None if wanted is None else start + wanted]

    def subscription_count(self, consumer: str | None = None) -> int:
        """How many rows :meth:`subscriptions` lists (the total under a page of it)."""
        spec = self._subscriber_spec(consumer)
        where, params = self._active_filter(consumer)
        with self.store.read() as con:
            requested = self._count(con, where, params)
            return requested + len(views.spec_grant_rows(con, spec, consumer))

    def _subscriber_spec(self, consumer: str | None) -> MeshSpec:
        spec = self.spec
        if consumer is not None:
            from meshsim.policy.access import require_consumer

            require_consumer(spec, consumer)
        return spec

    def _active_filter(self, consumer: str | None) -> tuple[str, list[str]]:
        """The requests :meth:`Request.active` now: approved, not past their expiry."""
        where, params = _request_filter("approved", consumer, None)
        where += " AND (expires_at IS NULL OR expires_at > ?)"
        return where, [*params, stamp(self._now())]

    @staticmethod
    def _count(con: Any, where: str, params: list[str]) -> int:
        return int(con.execute("SELECT count(*) FROM requests" + where, params).fetchone()[0])

    def explain_refusal(self, consumer: str, table_ref: str) -> str | None:
        """Why a consumer has no subscription to a table, when the catalog knows: the latest
        request that covered it was revoked, expired, rejected or is still pending."""
        with self.store.read() as con:
            requests = self._requests(con, consumer=consumer)
        for request in reversed(requests):
            if table_ref not in request.tables:
                continue
            if request.state == "approved" and request.active(self._now()):
                return None
            if request.state in ("revoked", "expired"):
                when = request.ended_at or request.expires_at
                return (
                    f"request {request.id} for {request.product} was {request.state} by "
                    f"{request.ended_by} at {when:%Y-%m-%d %H:%M} UTC"
                )
            if request.state == "rejected":
                return (
                    f"request {request.id} for {request.product} was rejected by "
                    f"{request.decided_by}: {request.comment}"
                )
            if request.state == "pending":
                return f"request {request.id} for {request.product} is still pending approval"
        return None

    def revision(self) -> int:
        """Bumped by every publish and decision (expiries included): cache key for policies."""
        now = self._now()
        with self.store.read() as con:
            due = con.execute(
                "SELECT 1 FROM requests WHERE state = 'approved' AND expires_at IS NOT NULL"
                " AND expires_at <= ? LIMIT 1",
                (stamp(now),),
            ).fetchone()
        if due:
            self.expire(now)
        with self.store.read() as con:
            return revision(con)

    # --- views for architects --------------------------------------------------------------

    def topology(self, *, lineage: bool = False) -> Any:
        """The mesh as a networkx graph: domains, products, tables, consumers and grants
        (with ``lineage``: sources and column lineage too)."""
        from meshsim.graph import mesh_graph

        with self.store.read() as con:
            pending = self._requests(con, state="pending")
        return mesh_graph(self.spec, self.effective_policies(), pending, lineage=lineage)

    def graph(
        self,
        fmt: str = "mermaid",
        out: str | Path | None = None,
        *,
        domain: str | None = None,
        consumer: str | None = None,
        group: bool | None = None,
        lineage: bool = False,
    ) -> str:
        """Mermaid text, or a PNG/SVG written to ``out`` (returns its path): the part about
        ``domain`` and/or ``consumer`` if given, grouped by domain when ``group`` (by default
        when it has more than :data:`meshsim.graph.GROUP_OVER` tables)."""
        from meshsim.graph import focus, readable, render

        picture = focus(self.topology(lineage=lineage), domain=domain, consumer=consumer)
        return render(readable(picture, group=group), fmt, out)

    # --- audit -------------------------------------------------------------------------------

    def append_audit(self, record: Any) -> int:
        """Store one query audit record (see :mod:`meshsim.catalog.audit`); returns its id."""
        os_user = current_os_user()
        with self.store.write(backup=False) as con:
            reserve_audit_ids(con, self.workspace.governance)
            record_id = audit_log.append(con, record, os_user=os_user)
            journal_audit(con, self.workspace.governance, record_id)
            return record_id

    def record_write(
        self,
        *,
        principal: str | None,
        table: str,
        decision: str,
        reason: str,
        rows: int | None = None,
    ) -> int:
        """Audit one producer's write attempt (see :func:`meshsim.catalog.audit.append_write`)."""
        spec_table = self.spec.table(table)
        product = f"{spec_table.domain}.{spec_table.product}" if spec_table else None
        os_user = current_os_user()
        with self.store.write(backup=False) as con:
            reserve_audit_ids(con, self.workspace.governance)
            record_id = audit_log.append_write(
                con,
                principal=principal,
                os_user=os_user,
                table=table,
                product=product,
                decision=decision,
                reason=reason,
                rows=rows,
            )
            journal_audit(con, self.workspace.governance, record_id)
            return record_id

    def audit(
        self,
        limit: int | None = None,
        consumer: str | None = None,
        request_id: int | None = None,
        *,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Queries, decisions and publications, newest first: every record, whoever asks (the
        governance account's own read, e.g. to export ``meshsim.audit``). Consumers read the
        log through :meth:`meshsim.mesh.Mesh.audit`, which shows each only what it may see."""
        limit = optional_limit(limit)
        offset = bounded_int(offset, what="offset")
        with self.store.read() as con:
            return audit_log.read(con, limit, consumer, request_id, offset)


def parse_expiry(value: date | datetime | str, now: datetime) -> datetime:
    """A date means "through that day" (UTC); it must lie in the future."""
    if isinstance(value, str):
        try:
            value = (
                datetime.fromisoformat(value)
                if "T" in value or " " in value
                else date.fromisoformat(value)
            )
        except ValueError:
            raise CatalogError(
                f"expiry '{value}' is not a date", hint="pass --expires YYYY-MM-DD"
            ) from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif value >= date.max:
        raise CatalogError(
            f"expiry {value.isoformat()} is the last day meshsim can represent; pick an "
            f"earlier date or request without --expires (no expiry)",
            hint="pass --expires YYYY-MM-DD before 9999-12-31",
        )
    else:
        moment = datetime.combine(value + timedelta(days=1), time(), tzinfo=UTC)
    if moment <= now:
        raise CatalogError(
            f"expiry {moment:%Y-%m-%d %H:%M} UTC is not in the future "
            f"(now {now:%Y-%m-%d %H:%M} UTC)",
            hint="pass a later --expires YYYY-MM-DD",
        )
    return moment


__all__ = ["Catalog", "parse_expiry"]


def _request_filter(
    state: str | None, consumer: str | None, product: str | None
) -> tuple[str, list[str]]:
    where, params = [], []
    for column, value in (("state", state), ("consumer", consumer), ("product", product)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
