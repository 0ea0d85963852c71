-- Alerts (one row per fingerprint), their state history, silences and notification bookkeeping.
CREATE TABLE alerts (
    id              uuid PRIMARY KEY,
    fingerprint     text        NOT NULL UNIQUE,
    source          text        NOT NULL,
    severity        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    labels          jsonb       NOT NULL,
    annotations     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    generator_url   text,
    -- When the newest report applied was made: an older report arriving later is stale.
    observed_at     timestamptz NOT NULL,
    suppressed      boolean     NOT NULL DEFAULT false,
    silenced_by     uuid[]      NOT NULL DEFAULT '{}',
    inhibited_by    text[]      NOT NULL DEFAULT '{}',
    acknowledged_by text,
    acknowledged_at timestamptz,
    resolved_by     text,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_feed_idx ON alerts (starts_at DESC, id DESC);
CREATE INDEX alerts_open_idx ON alerts (status) WHERE status <> 'resolved';
CREATE INDEX alerts_ends_idx ON alerts (ends_at) WHERE status <> 'resolved';
CREATE INDEX alerts_labels_idx ON alerts USING gin (labels jsonb_path_ops);

CREATE TABLE alert_history (
    id          bigserial PRIMARY KEY,
    alert_id    uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    from_status text,
    to_status   text,
    comment     text
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, id);

CREATE TABLE silences (
    id         uuid PRIMARY KEY,
    matchers   jsonb       NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    comment    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX silences_ends_idx ON silences (ends_at);

-- One row per (receiver, group): when it was first seen, last changed and last notified.
CREATE TABLE notification_groups (
    receiver     text        NOT NULL,
    group_key    text        NOT NULL,
    group_labels jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    changed_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    sent_firing  boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (receiver, group_key)
);

CREATE TABLE notification_attempts (
    id          bigserial PRIMARY KEY,
    receiver    text        NOT NULL,
    group_key   text        NOT NULL,
    delivery_id uuid        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    status_code integer,
    outcome     text        NOT NULL,
    error       text,
    duration_ms double precision NOT NULL
);
CREATE INDEX notification_attempts_delivery_idx ON notification_attempts (delivery_id, attempt);
