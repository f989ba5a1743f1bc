-- funnel entries from the events index: every copy of every event whose name is a step or
-- an exclusion (every event in strict mode), as entries.sql reads them from the lake, but
-- from lake_events_index (integers, name-sorted row groups the name filter skips) and, for
-- the files not indexed yet, lake_events_unindexed. Persons are the hashes as written (0
-- without a person: no one's entry, once deduplicated); the engine keeps one copy per
-- event_hash by received_ms (the earliest-received copy counts, as in `events`), then
-- re-attributes persons through person_merges (and to accounts). sorted_event_hash: the same
-- hashes as event_hash, in sorted runs (one per index file and name; the unindexed rows'
-- own), for the engine's check for repeated event_ids.
-- Parameters: $names (the steps, then the exclusions; VARCHAR[]) and $strict (BOOLEAN).
WITH copies AS (
    SELECT event_hash, sorted_event_hash, person_hash, ts, received_ms, event
    FROM lake_events_index
    WHERE
        $strict
        -- The range test lets the Parquet reader skip other names' row groups.
        OR (event BETWEEN list_min($names) AND list_max($names) AND list_contains($names, event))
    UNION ALL
    SELECT
        hash(event_id) AS event_hash,
        hash(event_id) AS sorted_event_hash,
        CASE WHEN person_id IS NOT NULL THEN hash(person_id) END AS person_hash,
        epoch_ms(timestamp) AS ts,
        epoch_ms(received_at) AS received_ms,
        event
    FROM lake_events_unindexed
    WHERE
        $strict
        OR (event BETWEEN list_min($names) AND list_max($names) AND list_contains($names, event))
)

SELECT
    event_hash,
    sorted_event_hash,
    -- Not NULL: a column without nulls reaches NumPy without a copy.
    coalesce(person_hash, 0) AS person_hash,
    ts,
    received_ms,
    -- 1-based position of the event's name in $names (0: another event, strict only).
    coalesce(list_position($names, event), 0)::TINYINT AS name_code
FROM copies
