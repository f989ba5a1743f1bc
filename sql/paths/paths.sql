-- paths: for every occurrence of $event (its name, or one of its defined events: the
-- materializer's tags, else stage 1's), the
-- $steps events that follow it (or precede it, nearest first) in the same session (or the
-- same person's whole history), by time then event_id. A path cut short by the session's
-- (person's) end or start ends with '(end)' or '(start)'. Per distinct path: occurrences,
-- their share of all occurrences, and distinct people. Events are `events`' (one per
-- event_id, people re-attributed); an event's name is `event`, else its type.
-- Parameters: $event (VARCHAR), $direction ('next' | 'previous'), $steps, $top (INTEGER),
-- $per ('session' | 'person'), $since, $until (TIMESTAMPTZ or NULL).
WITH named AS (
    SELECT
        person_id,
        event_id,
        timestamp,
        coalesce(event, type) AS name,
        event IS NOT DISTINCT FROM $event
        OR coalesce(
            list_contains(coalesce(effective_tags.names, events.defined_events), $event), false
        ) AS is_from,
        CASE WHEN $per = 'session' THEN session_id ELSE person_id END AS scope
    FROM events
    LEFT JOIN effective_tags USING (event_id)
    WHERE
        ($since IS NULL OR timestamp >= $since)
        AND ($until IS NULL OR timestamp < $until)
),

positioned AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY scope ORDER BY timestamp, event_id)
        * CASE WHEN $direction = 'next' THEN 1 ELSE -1 END AS pos
    FROM named
    WHERE scope IS NOT NULL
),

framed AS (
    SELECT
        person_id,
        is_from,
        -- An empty frame gives NULL, not [].
        coalesce(list(name) OVER (
            PARTITION BY scope ORDER BY pos ROWS BETWEEN 1 FOLLOWING AND $steps FOLLOWING
        ), []) AS path
    FROM positioned
),

occurrences AS (
    SELECT
        person_id,
        CASE
            WHEN len(path) < $steps
                THEN path || [CASE WHEN $direction = 'next' THEN '(end)' ELSE '(start)' END]
            ELSE path
        END AS path
    FROM framed
    WHERE is_from
),

counted AS (
    SELECT path, count(*) AS count, count(DISTINCT person_id) AS people
    FROM occurrences
    GROUP BY path
),

final AS (
    SELECT
        path,
        count,
        people,
        sum(count) OVER () AS occurrences
    FROM counted
)

SELECT * FROM final ORDER BY count DESC, path LIMIT $top
