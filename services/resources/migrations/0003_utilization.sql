-- Utilisation samples as a metrics exporter sends them, and when a resource's state began as its
-- provider reports it (the savings rules judge "stopped for 7 days", "snapshot 90 days old").
ALTER TABLE resources
    ADD COLUMN status_since   timestamptz,
    ADD COLUMN provisioned_at timestamptz;

-- A bounded history per resource: the write that adds samples also drops those past the
-- retention window and the oldest beyond the per-resource cap (see resources.utilization).
CREATE TABLE utilization_samples (
    resource_id    uuid         NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    sampled_at     timestamptz  NOT NULL,
    cpu_percent    numeric(5, 2) NOT NULL CHECK (cpu_percent BETWEEN 0 AND 100),
    memory_percent numeric(5, 2) NOT NULL CHECK (memory_percent BETWEEN 0 AND 100),
    network_bytes  bigint       CHECK (network_bytes >= 0),
    PRIMARY KEY (resource_id, sampled_at)
);
