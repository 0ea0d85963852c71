-- The inventory of cloud resources.
CREATE TABLE resources (
    id                 uuid PRIMARY KEY,
    external_id        text          NOT NULL UNIQUE,
    name               text          NOT NULL,
    provider           text          NOT NULL,
    type               text          NOT NULL,
    region             text          NOT NULL,
    account            text          NOT NULL,
    status             text          NOT NULL,
    hourly_cost        numeric(20, 10) NOT NULL CHECK (hourly_cost >= 0),
    currency           char(3)       NOT NULL,
    tags               jsonb         NOT NULL DEFAULT '{}'::jsonb,
    owner              text,
    team               text,
    cpu_utilization    numeric(5, 2) CHECK (cpu_utilization BETWEEN 0 AND 100),
    memory_utilization numeric(5, 2) CHECK (memory_utilization BETWEEN 0 AND 100),
    created_at         timestamptz   NOT NULL DEFAULT now(),
    updated_at         timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX resources_status_idx ON resources (status);
CREATE INDEX resources_type_idx ON resources (type);
CREATE INDEX resources_provider_region_idx ON resources (provider, region);
CREATE INDEX resources_team_idx ON resources (team);
CREATE INDEX resources_created_idx ON resources (created_at, id);
CREATE INDEX resources_tags_idx ON resources USING gin (tags jsonb_path_ops);
