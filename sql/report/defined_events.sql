-- defined_events: occurrences and people per defined event (definitions.yaml `events:`).
WITH final AS (
    SELECT
        name AS defined_event,
        count(*) AS events,
        count(DISTINCT person_id) AS people
    FROM defined_events
    GROUP BY 1
    ORDER BY events DESC, defined_event
)

SELECT * FROM final
