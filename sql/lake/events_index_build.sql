-- events_index_build: the index rows of one events file (pipeline/warehouse/event_index.py):
-- every copy as written, sorted by event name (a name filter then skips the row groups of
-- other names from their footer statistics), then person and time (the event hash only
-- makes the order total). build_index adds sorted_event_hash.
SELECT
    event,
    CASE WHEN person_id IS NOT NULL THEN hash(person_id) END AS person_hash,
    epoch_ms(timestamp) AS ts,
    epoch_ms(received_at) AS received_ms,
    hash(event_id) AS event_hash
FROM read_parquet({{source}})
ORDER BY event, person_hash, ts, event_hash
