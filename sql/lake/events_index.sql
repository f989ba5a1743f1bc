-- lake_events_index: the events index (pipeline/warehouse/event_index.py) of the live events
-- files that have one: event, person_hash, ts (ms), event_hash, every copy as written.
CREATE OR REPLACE VIEW lake_events_index AS
SELECT * FROM read_parquet({{index}});

-- lake_events_unindexed: every row of the live events files not indexed yet (the newest),
-- so an engine reading the index plus these sees exactly what lake_events_raw holds.
CREATE OR REPLACE VIEW lake_events_unindexed AS
SELECT * FROM read_parquet({{unindexed}}, union_by_name = true);
