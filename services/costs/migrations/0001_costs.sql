-- FOCUS imports and their line items, the inventory mirror, budgets, anomalies and platform usage.
CREATE TABLE imports (
    id             uuid PRIMARY KEY,
    filename       text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    focus_version  text,
    sha256         text,
    rows_read      bigint      NOT NULL DEFAULT 0,
    rows_accepted  bigint      NOT NULL DEFAULT 0,
    rows_rejected  bigint      NOT NULL DEFAULT 0,
    rows_replaced  bigint      NOT NULL DEFAULT 0,
    error          jsonb,
    created_by     text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE import_rejections (
    import_id uuid    NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      bigint  NOT NULL,
    field     text,
    message   text    NOT NULL,
    PRIMARY KEY (import_id, line, message)
);

CREATE TABLE line_items (
    import_id              uuid        NOT NULL,
    line                   bigint      NOT NULL,
    billed_cost            numeric     NOT NULL,
    effective_cost         numeric     NOT NULL,
    list_cost              numeric     NOT NULL,
    contracted_cost        numeric     NOT NULL,
    billing_account_id     text        NOT NULL,
    billing_account_name   text,
    billing_currency       text        NOT NULL,
    billing_period_start   timestamptz NOT NULL,
    billing_period_end     timestamptz NOT NULL,
    charge_category        text        NOT NULL,
    charge_class           text,
    charge_description     text,
    charge_frequency       text,
    charge_period_start    timestamptz NOT NULL,
    charge_period_end      timestamptz NOT NULL,
    pricing_quantity       numeric,
    pricing_unit           text,
    list_unit_price        numeric,
    contracted_unit_price  numeric,
    consumed_quantity      numeric,
    consumed_unit          text,
    provider_name          text        NOT NULL,
    publisher_name         text,
    invoice_issuer_name    text,
    region_id              text,
    region_name            text,
    availability_zone      text,
    resource_id            text,
    resource_name          text,
    resource_type          text,
    service_category       text,
    service_name           text,
    sub_account_id         text,
    sub_account_name       text,
    sku_id                 text,
    sku_price_id           text,
    commitment_discount_id text,
    tags                   text  -- JSON object text, as in the file
);
CREATE INDEX line_items_import_idx ON line_items (import_id);
CREATE INDEX line_items_account_period_idx
    ON line_items (billing_account_id, billing_period_start, billing_period_end);
CREATE INDEX line_items_charge_start_idx ON line_items (charge_period_start);

-- The inventory as the resources service announced it (resource.* events).
CREATE TABLE inventory (
    id                 uuid PRIMARY KEY,
    external_id        text        NOT NULL,
    name               text        NOT NULL,
    provider           text        NOT NULL,
    type               text        NOT NULL,
    region             text,
    account            text,
    status             text        NOT NULL,
    status_since       timestamptz NOT NULL,
    hourly_cost        numeric     NOT NULL,
    currency           text        NOT NULL,
    tags               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    team               text,
    cpu_utilization    numeric,
    memory_utilization numeric,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    deleted            boolean     NOT NULL DEFAULT false
);
CREATE INDEX inventory_external_idx ON inventory (external_id);

CREATE TABLE utilization_samples (
    resource_id uuid        NOT NULL,
    sampled_at  timestamptz NOT NULL,
    cpu         numeric,
    memory      numeric,
    PRIMARY KEY (resource_id, sampled_at)
);

CREATE TABLE budgets (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL,
    scope       text        NOT NULL CHECK (scope IN ('all', 'provider', 'team', 'tag')),
    scope_key   text,
    scope_value text,
    amount      numeric     NOT NULL CHECK (amount > 0),
    currency    text        NOT NULL,
    basis       text        NOT NULL,
    thresholds  jsonb       NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per budget, threshold and period: the unique key makes the crossing event happen once.
CREATE TABLE budget_crossings (
    budget_id  uuid        NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    percent    numeric     NOT NULL,
    period     date        NOT NULL,
    value      numeric     NOT NULL,
    crossed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, kind, percent, period)
);

CREATE TABLE anomalies (
    day         date        NOT NULL,
    dimension   text        NOT NULL,
    basis       text        NOT NULL,
    actual      numeric     NOT NULL,
    expected    numeric     NOT NULL,
    score       numeric     NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, dimension, basis)
);

CREATE TABLE platform_usage (
    day             date    NOT NULL,
    principal       text    NOT NULL,
    requests        bigint  NOT NULL,
    cpu_seconds     numeric NOT NULL,
    bytes_out       bigint  NOT NULL,
    PRIMARY KEY (day, principal)
);
