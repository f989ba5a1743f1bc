-- lake_events_raw: every row of the events table's files as written, duplicates included
-- (a sink replay after a crash, a client retry, a compaction not yet cleaned up). Engines
-- that filter before deduplicating (the funnel) start here; analysts want `events`.
CREATE OR REPLACE VIEW lake_events_raw AS
SELECT * FROM read_parquet({{source}}, union_by_name = true);

-- lake_events: one row per event_id, the earliest-received copy. The compactor runs this
-- same file over the files it merges, so compacted and uncompacted data answer alike.
CREATE OR REPLACE VIEW lake_events AS
SELECT *
FROM lake_events_raw
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1;

-- lake_events_metadata: the Parquet footers of the same files (row groups, column
-- statistics), so an engine can skip work no file can need (the funnel skips the defined
-- events check when no file holds a defined event of the funnel's names).
CREATE OR REPLACE VIEW lake_events_metadata AS
SELECT * FROM parquet_metadata({{source}});
