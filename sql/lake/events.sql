-- lake_events: the events table's Parquet files, one row per event_id. The lake may hold
-- the same event more than once (a sink replay after a crash, a client retry, a compaction
-- not yet cleaned up); the earliest-received copy wins. The compactor runs this same file
-- over the files it merges, so compacted and uncompacted data answer alike.
CREATE OR REPLACE VIEW lake_events AS
SELECT *
FROM read_parquet({{source}}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
