-- API keys and dashboard users. Keys are stored only as SHA-256 hashes; passwords as argon2.
CREATE TABLE api_keys (
    id                  text PRIMARY KEY,
    name                text        NOT NULL,
    owner               text        NOT NULL,
    key_hash            bytea       NOT NULL UNIQUE,
    permissions         text[]      NOT NULL,
    rate_limit          integer     CHECK (rate_limit > 0),
    rate_window_seconds integer     CHECK (rate_window_seconds > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz,
    revoked_at          timestamptz
);

CREATE TABLE users (
    username      text PRIMARY KEY,
    password_hash text        NOT NULL,
    permissions   text[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
