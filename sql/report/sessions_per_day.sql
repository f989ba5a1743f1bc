-- sessions_per_day: sessions started and people active per UTC day.
WITH daily AS (
    SELECT
        strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%d') AS day,
        count(DISTINCT session_id) AS sessions,
        count(DISTINCT person_id) AS people
    FROM events
    GROUP BY 1
),

final AS (
    SELECT day, sessions, people FROM daily ORDER BY day
)

SELECT * FROM final
