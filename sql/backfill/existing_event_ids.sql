-- existing_event_ids: which of the given event ids the lake already holds (any copy), so a
-- re-run of `autocap import` skips what an earlier run already landed.
SELECT DISTINCT event_id
FROM lake_events_raw
WHERE event_id IN (SELECT unnest($ids))
