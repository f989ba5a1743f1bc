-- top_events: the most frequent events (autocaptured and tracked), with the people doing them.
WITH counted AS (
    SELECT
        coalesce(event, type) AS event,
        count(*) AS events,
        count(DISTINCT person_id) AS people
    FROM events
    GROUP BY 1
),

final AS (
    SELECT event, events, people
    FROM counted
    ORDER BY events DESC, event
    LIMIT 15
)

SELECT * FROM final
