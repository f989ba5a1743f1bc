-- Per subject (person, or the person's account), how often it did each of the $top most
-- common events (raw and defined): the behavioural features personas cluster on.
WITH named AS (
    SELECT
        who.{{ident:subject}} AS subject_id,
        events.event AS name
    FROM events
    INNER JOIN segment_person_base AS who ON who.person_id = events.person_id
    WHERE who.{{ident:subject}} IS NOT NULL AND events.event IS NOT NULL
    UNION ALL
    SELECT
        who.{{ident:subject}} AS subject_id,
        defined_events.name
    FROM defined_events
    INNER JOIN segment_person_base AS who ON who.person_id = defined_events.person_id
    WHERE who.{{ident:subject}} IS NOT NULL
),

top_events AS (
    SELECT name FROM named GROUP BY 1 ORDER BY count(*) DESC, name LIMIT $top
),

final AS (
    SELECT subject_id, name, count(*) AS times
    FROM named
    WHERE name IN (SELECT name FROM top_events)
    GROUP BY 1, 2
)

SELECT * FROM final
