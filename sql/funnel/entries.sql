-- funnel entries, fast path: one row for every COPY of every event whose name is a step or
-- an exclusion (every event in strict mode).
-- Copies of one event_id carry the same event name (it is the client's message), so the
-- name filter keeps all copies of an event or none; the engine finds the event_ids seen
-- more than once among these rows (by event_hash) and replaces their rows with the
-- deduplicated ones of entries_deduplicated.sql. The time range is applied after that, so
-- a copy outside the range still decides which copy counts.
-- Reads only event, person_id, timestamp and event_id (the breakdown column if any).
-- Parameters: $names (the steps, then the exclusions; VARCHAR[]), $strict (BOOLEAN), $by
-- ('person' | 'account'),
-- $breakdown_source ('' | 'properties' | 'context' | 'traits' | a column name),
-- $breakdown_path (a JSON path such as '$.plan') and $entities (UBIGINT[] of entity
-- hashes to keep, or NULL for all).
WITH copies AS (
    SELECT event_id, person_id, timestamp, event, properties, context, traits, type,
        account_id, session_id, anonymous_id, user_id
    FROM lake_events_raw
    WHERE
        $strict
        -- The range test is redundant, but the Parquet reader applies it while decoding,
        -- so the other columns are decoded only for rows in range (~20% faster here).
        OR (event BETWEEN list_min($names) AND list_max($names) AND list_contains($names, event))
),

accounts AS (
    SELECT * FROM person_accounts WHERE $by = 'account'
),

people AS (
    SELECT
        copies.*,
        coalesce(person_merges.person, copies.person_id) AS person
    FROM copies
    LEFT JOIN person_merges ON person_merges.origin = copies.person_id
),

entities AS (
    SELECT
        hash(people.event_id) AS event_hash,
        CASE WHEN $by = 'account' THEN accounts.account_id ELSE people.person END AS entity,
        epoch_ms(people.timestamp) AS ts,
        -- 1-based position of the event's name in $names (0: another event, strict only);
        -- the engine turns it into funnel codes (a name can be several steps).
        coalesce(list_position($names, people.event), 0)::TINYINT AS name_code,
        CASE $breakdown_source
            WHEN 'properties' THEN json_extract_string(people.properties, $breakdown_path)
            WHEN 'context' THEN json_extract_string(people.context, $breakdown_path)
            WHEN 'traits' THEN json_extract_string(people.traits, $breakdown_path)
            WHEN 'event' THEN people.event
            WHEN 'type' THEN people.type
            WHEN 'account_id' THEN people.account_id
            WHEN 'session_id' THEN people.session_id
            WHEN 'anonymous_id' THEN people.anonymous_id
            WHEN 'user_id' THEN people.user_id
        END AS breakdown_value
    FROM people
    LEFT JOIN accounts ON $by = 'account' AND accounts.person = people.person
),

final AS (
    SELECT
        event_hash,
        hash(entity) AS entity_hash,
        ts,
        name_code,
        CASE WHEN name_code = 1 THEN breakdown_value END AS breakdown_value
    FROM entities
    WHERE
        entity IS NOT NULL
        -- Only these entities (the materializer refreshing the people with new events).
        AND ($entities IS NULL OR hash(entity) IN (SELECT unnest($entities)))
)

SELECT * FROM final
