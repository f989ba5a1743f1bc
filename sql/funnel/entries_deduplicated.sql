-- funnel entries, exact path: the same rows as entries.sql, but from one copy per event_id
-- (the earliest received, as in `events`), matched by name or by defined event (the
-- materializer's tags where it has tagged the event, else stage 1's) after deduplicating. For the event_ids in $event_hashes (those entries.sql saw more than
-- once), or for every event when $event_hashes is NULL (a step or exclusion is some
-- event's defined event: copies may disagree on defined events, so dedup comes first).
-- Parameters: those of entries.sql, and $event_hashes (UBIGINT[] or NULL).
WITH copies AS (
    SELECT event_id, received_at, person_id, timestamp, event, defined_events, properties,
        context, traits, type, account_id, session_id, anonymous_id, user_id
    FROM lake_events_raw
    WHERE $event_hashes IS NULL OR hash(event_id) IN (SELECT unnest($event_hashes))
),

earliest AS (
    SELECT *
    FROM copies
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
),

deduplicated AS (
    -- The materializer's tags (definitions applied to history) win over stage 1's.
    SELECT earliest.* REPLACE (
        coalesce(effective_tags.names, earliest.defined_events) AS defined_events
    )
    FROM earliest
    LEFT JOIN effective_tags ON effective_tags.event_id = earliest.event_id
),

matching AS (
    SELECT
        *,
        list_filter(
            range(1, len($steps) + 1),
            lambda i: $steps[i] = event OR list_contains(defined_events, $steps[i])
        ) AS step_codes,
        -- -k: the k-th exclusion (by name or defined event); 0 when none.
        -coalesce(list_position(
            list_transform(
                $names[len($steps) + 1:],
                lambda x: x = event OR coalesce(list_contains(defined_events, x), false)
            ),
            true
        ), 0) AS exclusion_code
    FROM deduplicated
),

accounts AS (
    SELECT * FROM person_accounts WHERE $by = 'account'
),

people AS (
    SELECT
        matching.*,
        coalesce(person_merges.person, matching.person_id) AS person
    FROM matching
    LEFT JOIN person_merges ON person_merges.origin = matching.person_id
    WHERE $strict OR len(matching.step_codes) > 0 OR matching.exclusion_code < 0
),

entities AS (
    SELECT
        hash(people.event_id) AS event_hash,
        CASE WHEN $by = 'account' THEN accounts.account_id ELSE people.person END AS entity,
        epoch_ms(people.timestamp) AS ts,
        unnest(
            CASE
                WHEN len(people.step_codes) > 0 THEN people.step_codes
                WHEN people.exclusion_code < 0 THEN [people.exclusion_code]
                ELSE [0]
            END
        ) AS code,
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
        code::TINYINT AS code,
        CASE WHEN code = 1 THEN breakdown_value END AS breakdown_value
    FROM entities
    WHERE
        entity IS NOT NULL
        -- Only these entities (the materializer refreshing the people with new events).
        AND ($entities IS NULL OR hash(entity) IN (SELECT unnest($entities)))
)

SELECT * FROM final
