-- Things a removal event said are gone (a deleted resource), by the label that names them. Batches
-- are handled concurrently, so a report about a thing can commit after its removal did; checked
-- under the same per-subject lock, this keeps such a late report from raising an alert that no
-- later event would resolve. Rows are forgotten a day after they were written (upkeep).
CREATE TABLE removed_subjects (
    label       text        NOT NULL,
    value       text        NOT NULL,
    removed_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (label, value)
);
CREATE INDEX removed_subjects_recorded_at_idx ON removed_subjects (recorded_at);
