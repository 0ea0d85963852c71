-- Tag filters search by containment; without GIN's pending list they stay on the index while
-- bulk imports add rows (see the alerts service's labels index for the measurement).
ALTER INDEX resources_tags_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('resources_tags_idx'::regclass);
