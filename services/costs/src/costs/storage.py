"""SQL of the costs schema; every function takes a connection and returns plain values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from common.db import Connection
from common.paging import Where
from costs.domain import GROUPS, TAG_PREFIX, Budget, BudgetFields, BudgetPatch
from costs.focus import COST_BASES, ROW_COLUMNS, STORED, Kind, Rejection

IMPORT_COLUMNS = (
    "id, filename, status, focus_version, sha256, rows_read, rows_accepted, rows_with_findings, "
    "rows_rejected, rows_replaced, findings, reconciliation, error, created_by, started_at, "
    "finished_at"
)


async def create_import(
    conn: Connection, import_id: UUID, filename: str, created_by: str | None
) -> None:
    await conn.execute(
        "INSERT INTO imports (id, filename, status, created_by) VALUES ($1, $2, 'running', $3)",
        import_id,
        filename,
        created_by,
    )


async def record_progress(conn: Connection, progress: Any) -> None:
    await conn.execute(
        """UPDATE imports SET rows_read = $2, rows_accepted = $3, rows_rejected = $4,
               focus_version = $5, rows_with_findings = $6 WHERE id = $1 AND status = 'running'""",
        progress.import_id,
        progress.rows_read,
        progress.rows_accepted,
        progress.rows_rejected,
        progress.focus_version,
        progress.findings.rows_with_findings,
    )


async def finish_import(
    conn: Connection,
    progress: Any,
    *,
    sha256: str,
    rows_replaced: int,
    reconciliation: dict[str, Any],
) -> None:
    await conn.execute(
        """UPDATE imports SET status = 'succeeded', rows_read = $2, rows_accepted = $3,
               rows_rejected = $4, focus_version = $5, sha256 = $6, rows_replaced = $7,
               rows_with_findings = $8, findings = $9, reconciliation = $10,
               finished_at = now() WHERE id = $1""",
        progress.import_id,
        progress.rows_read,
        progress.rows_accepted,
        progress.rows_rejected,
        progress.focus_version,
        sha256,
        rows_replaced,
        progress.findings.rows_with_findings,
        progress.findings.report(),
        reconciliation,
    )


async def fail_import(
    conn: Connection,
    progress: Any,
    error: dict[str, Any],
    reconciliation: dict[str, Any] | None = None,
) -> None:
    # Nothing of a failed file is kept, so it accepted nothing whatever its progress said.
    await conn.execute(
        """UPDATE imports SET status = 'failed', error = $2, rows_accepted = 0,
               rows_with_findings = 0, reconciliation = $3, finished_at = now() WHERE id = $1""",
        progress.import_id,
        error,
        reconciliation,
    )


async def stored_sums(conn: Connection, import_id: UUID) -> dict[tuple[str, str], Decimal]:
    """Each cost basis summed per currency over the import's stored rows (``XXX``: none)."""
    bases = ", ".join(
        f"coalesce(sum({column}), 0) AS {basis}" for basis, column in COST_BASES.items()
    )
    rows = await conn.fetch(
        f"""SELECT coalesce(billing_currency, 'XXX') AS currency, {bases}
            FROM line_items WHERE import_id = $1 GROUP BY 1""",
        import_id,
    )
    return {(r["currency"], basis): r[basis] for r in rows for basis in COST_BASES}


async def store_rejections(
    conn: Connection, import_id: UUID, rejections: Sequence[Rejection]
) -> None:
    if rejections:
        await conn.copy_records_to_table(
            "import_rejections",
            records=[(import_id, r.line, r.field, r.message) for r in rejections],
            columns=("import_id", "line", "field", "message"),
        )


# Imported rows are COPYed as text into a temporary table of the import's transaction, then
# moved into line_items by one INSERT … SELECT that casts them: PostgreSQL parses the numbers and
# instants on its own core while the next batch is read here, instead of this process encoding
# them (the rows were checked before, so no cast can fail).
_SQL_TYPES = {Kind.DECIMAL: "numeric", Kind.TIMESTAMP: "timestamptz"}
_STAGED = "focus_import_rows"
_CREATE_STAGED = (
    f"CREATE TEMPORARY TABLE {_STAGED} (line bigint, "
    + ", ".join(f"{c.db} text" for c in STORED)
    + ") ON COMMIT DROP"
)
_MOVE_STAGED = (
    f"INSERT INTO line_items (import_id, {', '.join(ROW_COLUMNS)}) SELECT $1::uuid, line, "
    + ", ".join(f"{c.db}::{_SQL_TYPES[c.kind]}" if c.kind in _SQL_TYPES else c.db for c in STORED)
    + f" FROM {_STAGED}"
)


async def create_staging(conn: Connection) -> None:
    """The import's temporary table; it lives until the import's transaction ends."""
    await conn.execute(_CREATE_STAGED)


async def load_rows(conn: Connection, import_id: UUID, rows: Sequence[Sequence[Any]]) -> None:
    """COPY checked rows (``ROW_COLUMNS``, as text) and add them to ``line_items``."""
    await conn.copy_records_to_table(_STAGED, records=rows, columns=ROW_COLUMNS)
    await conn.execute(_MOVE_STAGED, import_id)
    await conn.execute(f"TRUNCATE {_STAGED}")


async def replace_overlapping(
    conn: Connection, import_id: UUID, sha256: str
) -> tuple[int, set[str]]:
    """Delete rows of other imports this file supersedes; returns how many, and the UTC months
    (``YYYY-MM``) of their charges.

    Superseded: the same file imported before, or the same billing account with an overlapping
    billing period. Accounts are locked in sorted order first, so two imports touching the same
    account serialise here (the later one then sees and replaces the earlier one's rows).
    """
    periods = await conn.fetch(
        """SELECT billing_account_id AS account, min(billing_period_start) AS start,
                  max(billing_period_end) AS end
           FROM line_items WHERE import_id = $1 GROUP BY 1 ORDER BY 1""",
        import_id,
    )
    await conn.execute(
        """SELECT pg_advisory_xact_lock(hashtextextended('costs.account:' || a, 0))
           FROM unnest($1::text[]) AS a""",
        [p["account"] for p in periods],
    )
    same_file = await conn.fetchrow(
        f"""WITH gone AS (DELETE FROM line_items WHERE import_id IN (
               SELECT id FROM imports WHERE sha256 = $2 AND id <> $1)
               RETURNING {_CHARGE_MONTH} AS month)
           SELECT count(*) AS n, array_agg(DISTINCT month) AS months FROM gone""",
        import_id,
        sha256,
    )
    overlapping = await conn.fetchrow(
        f"""WITH p AS (SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[])
                      AS t(account, start_at, end_at)),
                gone AS (DELETE FROM line_items li USING p
                         WHERE li.import_id <> $1 AND li.billing_account_id = p.account
                           AND li.billing_period_start < p.end_at
                           AND li.billing_period_end > p.start_at
                         RETURNING {_CHARGE_MONTH} AS month)
           SELECT count(*) AS n, array_agg(DISTINCT month) AS months FROM gone""",
        import_id,
        [p["account"] for p in periods],
        [p["start"] for p in periods],
        [p["end"] for p in periods],
    )
    if same_file is None or overlapping is None:  # an aggregate always returns one row
        raise RuntimeError("replace_overlapping: no aggregate row")
    months = {*(same_file["months"] or ()), *(overlapping["months"] or ())}
    return int(same_file["n"]) + int(overlapping["n"]), months


#: The UTC month of a line item's charge, as the daily breakdown days it (``YYYY-MM``).
_CHARGE_MONTH = "to_char(charge_period_start AT TIME ZONE 'UTC', 'YYYY-MM')"


async def import_months(conn: Connection, import_id: UUID) -> set[str]:
    """The UTC months (``YYYY-MM``) of an import's charges."""
    rows = await conn.fetch(
        f"SELECT DISTINCT {_CHARGE_MONTH} AS month FROM line_items WHERE import_id = $1",
        import_id,
    )
    return {r["month"] for r in rows}


async def get_import(
    conn: Connection, import_id: UUID, rejection_limit: int
) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {IMPORT_COLUMNS} FROM imports WHERE id = $1", import_id)
    if row is None:
        return None
    rejections = await conn.fetch(
        """SELECT line, field, message FROM import_rejections WHERE import_id = $1
           ORDER BY line, message LIMIT $2""",
        import_id,
        rejection_limit,
    )
    return {
        **dict(row),
        "id": str(row["id"]),
        "findings": row["findings"] or {},
        "reconciliation": row["reconciliation"] or {},
        "rejections": [dict(r) for r in rejections],
    }


# ----- cost queries ---------------------------------------------------------------------------

_FILTER_COLUMNS = {
    "provider": "provider_name",
    "service_category": "service_category",
    "service": "service_name",
    "region": "region_id",
    "account": "billing_account_id",
    "resource": "resource_id",
    "currency": "billing_currency",
}


def cost_filter(where: Where, query: Any, start: datetime, end: datetime) -> None:
    where.add(f"charge_period_start >= {where.arg(start)}")
    where.add(f"charge_period_start < {where.arg(end)}")
    for name, column in _FILTER_COLUMNS.items():
        value = getattr(query, name)
        if value is not None:
            where.add(f"{column} = {where.arg(value)}")
    tag = query.tag_filter()
    if tag is not None:
        where.add(f"(tags::jsonb ->> {where.arg(tag[0])}) = {where.arg(tag[1])}")


def group_expression(where: Where, group_by: str) -> str:
    if group_by.startswith(TAG_PREFIX):
        return f"(tags::jsonb ->> {where.arg(group_by.removeprefix(TAG_PREFIX))})"
    column = GROUPS[group_by]
    return column if column is not None else "NULL::text"


async def daily_breakdown(
    conn: Connection, query: Any, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """Exact NUMERIC sums per UTC day (of ChargePeriodStart), group and currency.

    Rows without a currency carry no cost (the import rejects any that do), so they are left out.
    """
    where = Where()
    cost_filter(where, query, start, end)
    where.add("billing_currency IS NOT NULL")
    group = group_expression(where, query.group_by)
    basis = COST_BASES[query.basis]
    return await conn.fetch(
        f"""SELECT (charge_period_start AT TIME ZONE 'UTC')::date AS day, {group} AS grp,
                   billing_currency AS currency, coalesce(sum({basis}), 0) AS cost,
                   count(*) AS items
            FROM line_items{where.sql()} GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3""",
        *where.args,
    )


async def daily_totals(
    conn: Connection, query: Any, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    where = Where()
    cost_filter(where, query, start, end)
    where.add("billing_currency IS NOT NULL")
    basis = COST_BASES[query.basis]
    return await conn.fetch(
        f"""SELECT (charge_period_start AT TIME ZONE 'UTC')::date AS day,
                   billing_currency AS currency, coalesce(sum({basis}), 0) AS cost
            FROM line_items{where.sql()} GROUP BY 1, 2 ORDER BY 1, 2""",
        *where.args,
    )


async def invoices(
    conn: Connection, query: Any, start: datetime | None, end: datetime | None
) -> tuple[list[dict[str, Any]], int]:
    """Per InvoiceId, account and currency: billing period and exact billed total; a page."""
    where = Where()
    where.add("invoice_id IS NOT NULL")
    if start is not None:
        where.add(f"billing_period_start >= {where.arg(start)}")
    if end is not None:
        where.add(f"billing_period_start < {where.arg(end)}")
    if query.billing_account_id is not None:
        where.add(f"billing_account_id = {where.arg(query.billing_account_id)}")
    grouped = f"""SELECT invoice_id, billing_account_id,
                         max(billing_account_name) AS billing_account_name,
                         min(billing_period_start) AS billing_period_start,
                         max(billing_period_end) AS billing_period_end,
                         billing_currency AS currency, sum(billed_cost) AS billed_total
                  FROM line_items{where.sql()} GROUP BY invoice_id, billing_account_id, 6"""
    total = await conn.fetchval(f"SELECT count(*) FROM ({grouped}) AS i", *where.args)
    rows = await conn.fetch(
        f"""{grouped} ORDER BY billing_period_start DESC NULLS LAST, invoice_id, 2, 6
            LIMIT {where.arg(query.limit)} OFFSET {where.arg(query.offset)}""",
        *where.args,
    )
    return [dict(r) for r in rows], int(total)


async def present_columns(
    conn: Connection, query: Any, start: datetime, end: datetime, columns: Sequence[str]
) -> list[str]:
    """Of ``columns``, those with a value on some line item of the window."""
    where = Where()
    cost_filter(where, query, start, end)
    counts = ", ".join(f"count({c}) > 0" for c in columns)
    row = await conn.fetchrow(f"SELECT {counts} FROM line_items{where.sql()}", *where.args)
    assert row is not None
    return [c for c, present in zip(columns, row.values(), strict=True) if present]


async def last_charge_day(conn: Connection) -> date | None:
    value = await conn.fetchval(
        "SELECT max((charge_period_start AT TIME ZONE 'UTC')::date) FROM line_items"
    )
    return value if isinstance(value, date) else None


async def resources_by_external_id(
    conn: Connection, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, external_id, name, team, type, status FROM inventory
           WHERE external_id = ANY($1::text[]) AND NOT deleted""",
        list(external_ids),
    )
    return {r["external_id"]: {**dict(r), "id": str(r["id"])} for r in rows}


async def scoped_spend(
    conn: Connection,
    *,
    basis: str,
    currency: str,
    start: datetime,
    end: datetime,
    scope_column: str | None = None,
    tag_key: str | None = None,
    value: str | None = None,
) -> Decimal:
    where = Where()
    where.add(f"charge_period_start >= {where.arg(start)}")
    where.add(f"charge_period_start < {where.arg(end)}")
    where.add(f"billing_currency = {where.arg(currency)}")
    if scope_column is not None:
        where.add(f"{scope_column} = {where.arg(value)}")
    if tag_key is not None:
        where.add(f"(tags::jsonb ->> {where.arg(tag_key)}) = {where.arg(value)}")
    total = await conn.fetchval(
        f"SELECT coalesce(sum({COST_BASES[basis]}), 0) FROM line_items{where.sql()}", *where.args
    )
    return Decimal(total)


async def stream_line_items(
    conn: Connection, query: Any, start: datetime, end: datetime, columns: Sequence[str]
) -> Any:
    """A server-side cursor over ``columns`` of the window's line items (inside a transaction)."""
    where = Where()
    cost_filter(where, query, start, end)
    names = ", ".join(columns)
    return conn.cursor(
        f"SELECT {names} FROM line_items{where.sql()} ORDER BY charge_period_start, line",
        *where.args,
        prefetch=2000,
    )


# ----- inventory mirror -----------------------------------------------------------------------

INVENTORY_COLUMNS = (
    "id, external_id, name, provider, type, region, account, status, status_since, hourly_cost, "
    "currency, tags, team, cpu_utilization, memory_utilization, provisioned_at, created_at, "
    "updated_at"
)


async def upsert_inventory(conn: Connection, r: dict[str, Any]) -> None:
    """Store the resource unless a newer version is already stored (events can arrive late).

    ``status_since`` is the provider's when the resource carries one; otherwise the status is
    dated by the version that changed it.
    """
    await conn.execute(
        """INSERT INTO inventory (id, external_id, name, provider, type, region, account, status,
               status_since, hourly_cost, currency, tags, team, cpu_utilization,
               memory_utilization, created_at, updated_at, provisioned_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($17::timestamptz, $16), $9, $10,
                   $11, $12, $13, $14, $15, $16, $18)
           ON CONFLICT (id) DO UPDATE SET external_id = EXCLUDED.external_id,
               name = EXCLUDED.name, provider = EXCLUDED.provider, type = EXCLUDED.type,
               region = EXCLUDED.region, account = EXCLUDED.account, status = EXCLUDED.status,
               status_since = CASE WHEN $17::timestamptz IS NOT NULL THEN $17
                                   WHEN inventory.status = EXCLUDED.status
                                   THEN inventory.status_since ELSE EXCLUDED.updated_at END,
               hourly_cost = EXCLUDED.hourly_cost, currency = EXCLUDED.currency,
               tags = EXCLUDED.tags, team = EXCLUDED.team,
               cpu_utilization = EXCLUDED.cpu_utilization,
               memory_utilization = EXCLUDED.memory_utilization,
               provisioned_at = EXCLUDED.provisioned_at,
               updated_at = EXCLUDED.updated_at, deleted = false
           WHERE inventory.updated_at <= EXCLUDED.updated_at""",
        r["id"],
        r["external_id"],
        r["name"],
        r["provider"],
        r["type"],
        r.get("region"),
        r.get("account"),
        r["status"],
        r["hourly_cost"],
        r["currency"],
        r.get("tags") or {},
        r.get("team"),
        r.get("cpu_utilization"),
        r.get("memory_utilization"),
        r["created_at"],
        r["updated_at"],
        r.get("status_since"),
        r.get("provisioned_at"),
    )


async def record_samples(
    conn: Connection, samples: Sequence[tuple[UUID, datetime, Decimal, Decimal, int | None]]
) -> None:
    """Add ``(resource id, time, cpu, memory, network bytes)`` rows; a resent one replaces."""
    await conn.execute(
        """INSERT INTO utilization_samples (resource_id, sampled_at, cpu, memory, network_bytes)
           SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::numeric[], $4::numeric[],
                                $5::bigint[])
           ON CONFLICT (resource_id, sampled_at) DO UPDATE SET cpu = EXCLUDED.cpu,
               memory = EXCLUDED.memory, network_bytes = EXCLUDED.network_bytes""",
        [s[0] for s in samples],
        [s[1] for s in samples],
        [s[2] for s in samples],
        [s[3] for s in samples],
        [s[4] for s in samples],
    )


async def trim_samples(conn: Connection, resource_ids: Sequence[UUID], keep_days: int) -> None:
    """Keep each resource's last ``keep_days`` of samples, counted from its newest one.

    Counting from the newest sample, not the clock, keeps a history replayed late intact.
    """
    await conn.execute(
        """DELETE FROM utilization_samples s USING (
               SELECT resource_id, max(sampled_at) AS newest FROM utilization_samples
               WHERE resource_id = ANY($1::uuid[]) GROUP BY 1) AS n
           WHERE s.resource_id = n.resource_id
             AND s.sampled_at < n.newest - make_interval(days => $2)""",
        list(resource_ids),
        keep_days,
    )


async def follow_latest_sample(conn: Connection, resource_ids: Sequence[UUID]) -> None:
    """The mirror's current CPU and memory figures follow each resource's newest sample."""
    await conn.execute(
        """UPDATE inventory i SET cpu_utilization = l.cpu, memory_utilization = l.memory
           FROM (SELECT DISTINCT ON (resource_id) resource_id, cpu, memory
                 FROM utilization_samples WHERE resource_id = ANY($1::uuid[])
                 ORDER BY resource_id, sampled_at DESC) AS l
           WHERE i.id = l.resource_id""",
        list(resource_ids),
    )


async def delete_inventory(conn: Connection, resource_id: UUID) -> None:
    await conn.execute("DELETE FROM utilization_samples WHERE resource_id = $1", resource_id)
    await conn.execute("DELETE FROM inventory WHERE id = $1", resource_id)


async def running_rates(conn: Connection, group_column: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {group_column} AS grp, currency, sum(hourly_cost) AS hourly, count(*) AS n
            FROM inventory WHERE status = 'running' AND NOT deleted
            GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2"""
    )


async def month_to_date(
    conn: Connection, basis: str, start: datetime, end: datetime
) -> dict[str, Decimal]:
    rows = await conn.fetch(
        f"""SELECT billing_currency AS currency, coalesce(sum({COST_BASES[basis]}), 0) AS cost
            FROM line_items WHERE charge_period_start >= $1 AND charge_period_start < $2
              AND billing_currency IS NOT NULL GROUP BY 1""",
        start,
        end,
    )
    return {r["currency"]: r["cost"] for r in rows}


async def inventory_with_samples(
    conn: Connection, since: datetime, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The mirror with each resource's samples in ``[since, until)`` (oldest first)."""
    rows = await conn.fetch(
        f"""SELECT {INVENTORY_COLUMNS},
               coalesce(s.cpu, '{{}}') AS cpu_samples,
               coalesce(s.memory, '{{}}') AS memory_samples,
               coalesce(s.network, '{{}}') AS network_samples
            FROM inventory i LEFT JOIN LATERAL (
                SELECT array_agg(cpu ORDER BY sampled_at) FILTER (WHERE cpu IS NOT NULL) AS cpu,
                       array_agg(memory ORDER BY sampled_at)
                           FILTER (WHERE memory IS NOT NULL) AS memory,
                       array_agg(network_bytes ORDER BY sampled_at)
                           FILTER (WHERE network_bytes IS NOT NULL) AS network
                FROM utilization_samples
                WHERE resource_id = i.id AND sampled_at >= $1
                  AND ($2::timestamptz IS NULL OR sampled_at < $2)) AS s ON true
            WHERE NOT deleted ORDER BY external_id""",
        since,
        until,
    )
    return [{**dict(r), "id": str(r["id"])} for r in rows]


# ----- billing seen per resource (the billing-only savings rules) -----------------------------

# EffectiveCost may be missing from a row the import kept with a finding; BilledCost stands in.
_RESOURCE_COST = "coalesce(effective_cost, billed_cost)"


async def billed_by_resource(
    conn: Connection, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per ResourceId and currency: the effective cost in ``[start, end)`` and days billed."""
    rows = await conn.fetch(
        f"""SELECT resource_id, billing_currency AS currency, sum({_RESOURCE_COST}) AS cost,
                   count(DISTINCT (charge_period_start AT TIME ZONE 'UTC')::date) AS days,
                   max(resource_name) AS resource_name, max(service_name) AS service_name
            FROM line_items
            WHERE charge_period_start >= $1 AND charge_period_start < $2
              AND resource_id IS NOT NULL AND resource_id <> '' AND billing_currency IS NOT NULL
            GROUP BY 1, 2 ORDER BY 1, 2""",
        start,
        end,
    )
    return [dict(r) for r in rows]


async def daily_consumption(
    conn: Connection, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per ResourceId, currency and UTC day: cost and ConsumedQuantity (NULL: not reported)."""
    rows = await conn.fetch(
        f"""SELECT resource_id, billing_currency AS currency,
                   (charge_period_start AT TIME ZONE 'UTC')::date AS day,
                   sum({_RESOURCE_COST}) AS cost, sum(consumed_quantity) AS consumed,
                   max(consumed_unit) AS consumed_unit
            FROM line_items
            WHERE charge_period_start >= $1 AND charge_period_start < $2
              AND resource_id IS NOT NULL AND resource_id <> '' AND billing_currency IS NOT NULL
              AND charge_category = 'Usage'
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        start,
        end,
    )
    return [dict(r) for r in rows]


async def on_demand_compute(
    conn: Connection, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Compute usage without a commitment discount, per resource and SKU, where the same SKU is
    covered by a commitment discount elsewhere in the billing at a contracted unit price below
    its list price: that price is what a commitment would charge for these hours.

    The files' PricingCategory is not stored, so "on demand" is a usage row without a
    CommitmentDiscountId.
    """
    rows = await conn.fetch(
        f"""WITH committed AS (
                SELECT sku_id, billing_currency, min(contracted_unit_price) AS rate,
                       min(commitment_discount_id) AS commitment_discount_id
                FROM line_items
                WHERE charge_period_start >= $1 AND charge_period_start < $2
                  AND commitment_discount_id IS NOT NULL AND sku_id IS NOT NULL
                  AND contracted_unit_price < list_unit_price
                GROUP BY 1, 2)
            SELECT li.resource_id, li.billing_currency AS currency, li.sku_id,
                   c.rate AS commitment_unit_price, c.commitment_discount_id,
                   max(li.list_unit_price) AS list_unit_price,
                   sum(li.pricing_quantity) AS quantity, max(li.pricing_unit) AS pricing_unit,
                   sum({_RESOURCE_COST}) AS cost,
                   sum(li.pricing_quantity * (li.list_unit_price - c.rate)) AS price_gap
            FROM line_items li JOIN committed c
                 ON c.sku_id = li.sku_id AND c.billing_currency = li.billing_currency
            WHERE li.charge_period_start >= $1 AND li.charge_period_start < $2
              AND li.commitment_discount_id IS NULL AND li.charge_category = 'Usage'
              AND li.service_category = 'Compute' AND li.resource_id IS NOT NULL
              AND li.resource_id <> '' AND li.pricing_quantity > 0
              AND li.list_unit_price > c.rate
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3""",
        start,
        end,
    )
    return [dict(r) for r in rows]


# ----- budgets ------------------------------------------------------------------------------

BUDGET_COLUMNS = (
    "id, name, scope, scope_key, scope_value, amount, currency, basis, thresholds, created_by, "
    "created_at, updated_at"
)


def _budget(row: asyncpg.Record) -> Budget:
    return Budget.model_validate({**dict(row), "id": str(row["id"])})


async def insert_budget(
    conn: Connection, budget_id: UUID, fields: BudgetFields, created_by: str | None
) -> Budget:
    values = fields.model_dump(mode="json")
    row = await conn.fetchrow(
        f"""INSERT INTO budgets (id, name, scope, scope_key, scope_value, amount, currency, basis,
                thresholds, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            RETURNING {BUDGET_COLUMNS}""",
        budget_id,
        fields.name,
        fields.scope,
        fields.scope_key,
        fields.scope_value,
        fields.amount,
        fields.currency,
        fields.basis,
        values["thresholds"],
        created_by,
    )
    assert row is not None
    return _budget(row)


async def get_budget(conn: Connection, budget_id: UUID) -> Budget | None:
    row = await conn.fetchrow(f"SELECT {BUDGET_COLUMNS} FROM budgets WHERE id = $1", budget_id)
    return _budget(row) if row else None


async def list_budgets(conn: Connection, limit: int, offset: int) -> tuple[list[Budget], int]:
    total = await conn.fetchval("SELECT count(*) FROM budgets")
    rows = await conn.fetch(
        f"SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY created_at, id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [_budget(r) for r in rows], int(total)


async def all_budgets(conn: Connection) -> list[Budget]:
    rows = await conn.fetch(f"SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY id")
    return [_budget(r) for r in rows]


async def update_budget(conn: Connection, budget_id: UUID, patch: BudgetPatch) -> Budget | None:
    changes = patch.model_dump(mode="json", exclude_unset=True)
    values = {k: getattr(patch, k) if k != "thresholds" else changes[k] for k in changes}
    assignments = "".join(f"{name} = ${i}, " for i, name in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE budgets SET {assignments}updated_at = now() WHERE id = $1 "
        f"RETURNING {BUDGET_COLUMNS}",
        budget_id,
        *values.values(),
    )
    return _budget(row) if row else None


async def delete_budget(conn: Connection, budget_id: UUID) -> bool:
    return bool(await conn.fetchval("DELETE FROM budgets WHERE id = $1 RETURNING true", budget_id))


async def record_crossing(
    conn: Connection, budget_id: UUID, kind: str, percent: Decimal, period: date, value: Decimal
) -> bool:
    """True only the first time this budget crosses this threshold in this period."""
    return bool(
        await conn.fetchval(
            """INSERT INTO budget_crossings (budget_id, kind, percent, period, value)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
            budget_id,
            kind,
            percent,
            period,
            value,
        )
    )


async def crossings(conn: Connection, budget_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT kind, percent, period, value, crossed_at FROM budget_crossings
           WHERE budget_id = $1 ORDER BY period, kind, percent""",
        budget_id,
    )
    return [dict(r) for r in rows]


# ----- anomalies and platform usage ---------------------------------------------------------


async def record_anomaly(
    conn: Connection,
    day: date,
    dimension: str,
    basis: str,
    actual: Decimal,
    expected: Decimal,
    score: Decimal,
) -> bool:
    return bool(
        await conn.fetchval(
            """INSERT INTO anomalies (day, dimension, basis, actual, expected, score)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
            day,
            dimension,
            basis,
            actual,
            expected,
            score,
        )
    )


async def list_anomalies(
    conn: Connection, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of recorded anomalies, shaped as detection answers them (``date``, ``currency``)."""
    total = await conn.fetchval("SELECT count(*) FROM anomalies")
    # The dimension ends with ``:<currency>`` (see ``Reports.detect_anomalies``).
    rows = await conn.fetch(
        """SELECT day AS date, dimension, basis, substring(dimension FROM '[^:]*$') AS currency,
                  actual, expected, score, detected_at FROM anomalies
           ORDER BY day DESC, dimension LIMIT $1 OFFSET $2""",
        limit,
        offset,
    )
    return [dict(r) for r in rows], int(total)


async def add_platform_usage(
    conn: Connection, rows: Sequence[tuple[date, str, str, str, int, Decimal, Decimal, int]]
) -> None:
    """Add (day, principal, service, route, requests, cpu, wall, bytes) rows to the totals."""
    await conn.executemany(
        """INSERT INTO platform_usage
               (day, principal, service, route, requests, cpu_seconds, wall_seconds, bytes_out)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (day, principal, service, route) DO UPDATE SET
               requests = platform_usage.requests + EXCLUDED.requests,
               cpu_seconds = platform_usage.cpu_seconds + EXCLUDED.cpu_seconds,
               wall_seconds = platform_usage.wall_seconds + EXCLUDED.wall_seconds,
               bytes_out = platform_usage.bytes_out + EXCLUDED.bytes_out""",
        rows,
    )


async def platform_usage(conn: Connection, day: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT principal, service, route, requests, cpu_seconds, wall_seconds, bytes_out
           FROM platform_usage WHERE day = $1 ORDER BY principal, service, route""",
        day,
    )


async def schema_bytes(conn: Connection) -> int:
    value = await conn.fetchval(
        """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind = 'r'"""
    )
    return int(value)
