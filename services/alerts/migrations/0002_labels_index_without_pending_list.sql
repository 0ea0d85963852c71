-- Inhibition and feed lookups search labels by containment on every event. With GIN's fast-update
-- pending list, fresh entries are scanned linearly and the planner falls back to a sequential scan
-- of every open alert, so each event cost more as alerts accumulated. Without it, inserts cost the
-- same here and lookups stay on the index.
ALTER INDEX alerts_labels_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('alerts_labels_idx'::regclass);
