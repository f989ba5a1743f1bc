-- funnel entries: one row per (event, funnel code) the funnel scan needs, in no particular
-- order (the scan sorts). code 1..n: the event matches step n (its name is the step, or the
-- step is one of its defined events; an event matching two steps gives two rows); -1: an
-- exclusion event; 0: any other event (strict mode only, where it breaks a chain).
-- The lake is filtered before deduplicating so the scan reads only matching events (the
-- name test runs on the Parquet scan); the copies of one event_id are one event,
-- so this keeps exactly the events `events` keeps.
-- Parameters: $steps, $exclusions (VARCHAR[]), $simple_steps (BOOLEAN: step names are
-- distinct), $strict (BOOLEAN), $since, $until (TIMESTAMPTZ or NULL), $by ('person' |
-- 'account'), $breakdown_source ('' | 'properties' | 'context' | 'traits' | a column name)
-- and $breakdown_path (a JSON path such as '$.plan').
WITH by_name AS (
    SELECT event_id, received_at, timestamp, person_id, event, defined_events, properties,
        context, traits, type, account_id, session_id, anonymous_id, user_id
    FROM lake_events_raw
    WHERE
        ($strict OR event IN (SELECT unnest($steps || $exclusions)))
        AND ($since IS NULL OR timestamp >= $since)
        AND ($until IS NULL OR timestamp < $until)
),

by_definition AS (
    -- Events whose name is no step but whose defined events name one.
    SELECT event_id, received_at, timestamp, person_id, event, defined_events, properties,
        context, traits, type, account_id, session_id, anonymous_id, user_id
    FROM lake_events_raw
    WHERE
        NOT $strict
        AND coalesce(event, '') NOT IN (SELECT unnest($steps || $exclusions))
        AND list_has_any(defined_events, $steps || $exclusions)
        AND ($since IS NULL OR timestamp >= $since)
        AND ($until IS NULL OR timestamp < $until)
),

matching AS (
    SELECT
        event_id,
        received_at,
        timestamp,
        person_id,
        CASE
            WHEN $simple_steps AND len(coalesce(defined_events, [])) = 0
                THEN CASE
                    WHEN coalesce(list_position($steps, event), 0) > 0
                        THEN [list_position($steps, event)]
                    ELSE []
                END
            ELSE list_filter(
                range(1, len($steps) + 1),
                lambda i: $steps[i] = event OR list_contains(defined_events, $steps[i])
            )
        END AS step_codes,
        -- -k: the k-th exclusion (by name or defined event); 0 when none.
        -coalesce(list_position(
            list_transform(
                $exclusions,
                lambda x: x = event OR coalesce(list_contains(defined_events, x), false)
            ),
            true
        ), 0) AS exclusion_code,
        CASE $breakdown_source
            WHEN 'properties' THEN json_extract_string(properties, $breakdown_path)
            WHEN 'context' THEN json_extract_string(context, $breakdown_path)
            WHEN 'traits' THEN json_extract_string(traits, $breakdown_path)
            WHEN 'event' THEN event
            WHEN 'type' THEN type
            WHEN 'account_id' THEN account_id
            WHEN 'session_id' THEN session_id
            WHEN 'anonymous_id' THEN anonymous_id
            WHEN 'user_id' THEN user_id
        END AS breakdown_value
    FROM (SELECT * FROM by_name UNION ALL SELECT * FROM by_definition)
),

deduplicated AS (
    SELECT *
    FROM matching
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
),

accounts AS (
    -- A person's account is the one on their latest event that carries one (group calls).
    SELECT
        coalesce(person_merges.person, lake_events_raw.person_id) AS person,
        arg_max(lake_events_raw.account_id, lake_events_raw.timestamp) AS account_id
    FROM lake_events_raw
    LEFT JOIN person_merges ON person_merges.origin = lake_events_raw.person_id
    WHERE $by = 'account' AND lake_events_raw.account_id IS NOT NULL
    GROUP BY 1
),

people AS (
    SELECT
        deduplicated.*,
        coalesce(person_merges.person, deduplicated.person_id) AS person
    FROM deduplicated
    LEFT JOIN person_merges ON person_merges.origin = deduplicated.person_id
),

entities AS (
    SELECT
        CASE WHEN $by = 'account' THEN accounts.account_id ELSE people.person END AS entity,
        epoch_ms(people.timestamp) AS ts,
        unnest(
            CASE
                WHEN len(people.step_codes) > 0 THEN people.step_codes
                WHEN people.exclusion_code < 0 THEN [people.exclusion_code]
                ELSE [0]
            END
        ) AS code,
        people.breakdown_value
    FROM people
    LEFT JOIN accounts ON $by = 'account' AND accounts.person = people.person
),

final AS (
    SELECT
        entity,
        ts,
        code::TINYINT AS code,
        CASE WHEN code = 1 THEN breakdown_value END AS breakdown_value
    FROM entities
    WHERE entity IS NOT NULL
)

SELECT * FROM final
