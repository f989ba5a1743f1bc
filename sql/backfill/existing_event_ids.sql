-- existing_event_ids: which of the given event ids the lake already holds (any copy), so a
-- re-run of `autocap import` skips what an earlier run already landed. The range test is
-- redundant but lets the Parquet reader skip row groups by their event_id statistics (ids
-- are mostly time-ordered UUIDv7s), instead of scanning every id in the lake per chunk.
SELECT DISTINCT event_id
FROM lake_events_raw
WHERE
    event_id BETWEEN list_min($ids) AND list_max($ids)
    AND event_id IN (SELECT unnest($ids))
