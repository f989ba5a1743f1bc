-- lake_events: every row of the events lake as written, duplicates included (a replayed or
-- retried event appears once per copy, all copies carrying the same event_id). Engines that
-- filter before deduplicating (the funnel) start here; analysts want `events`.
CREATE OR REPLACE VIEW lake_events AS
SELECT * FROM read_parquet({{events_glob}}, union_by_name = true)
