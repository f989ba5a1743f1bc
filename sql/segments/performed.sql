-- Subjects (person_id or account_id of the person) who did $event (a raw or defined event
-- name; NULL: any raw event) between $since and $now, $at_least to $at_most times.
SELECT who.{{ident:subject}} AS subject_id
FROM (
    SELECT events.event_id, events.person_id
    FROM events
    WHERE
        ($event IS NULL OR events.event = $event)
        AND events.timestamp >= $since
        AND events.timestamp <= $now
    UNION
    SELECT defined_events.event_id, defined_events.person_id
    FROM defined_events
    WHERE
        defined_events.name = $event
        AND defined_events.timestamp >= $since
        AND defined_events.timestamp <= $now
) AS done
INNER JOIN segment_person_base AS who ON who.person_id = done.person_id
WHERE who.{{ident:subject}} IS NOT NULL
GROUP BY 1
HAVING count(DISTINCT done.event_id) BETWEEN $at_least AND $at_most
