-- retention: weekly cohorts by a person's first event; the share of each cohort active in
-- each later week. Parameter: $weeks (how many weeks back from the latest event).
WITH activity AS (
    SELECT DISTINCT
        person_id,
        date_trunc('week', timestamp AT TIME ZONE 'UTC') AS week
    FROM events
    WHERE person_id IS NOT NULL
),

firsts AS (
    SELECT person_id, min(week) AS cohort FROM activity GROUP BY 1
),

recent AS (
    SELECT firsts.*
    FROM firsts
    WHERE cohort > (SELECT max(week) FROM activity) - to_weeks($weeks::INTEGER)
),

sizes AS (
    SELECT cohort, count(*) AS size FROM recent GROUP BY 1
),

active AS (
    SELECT
        recent.cohort,
        (datediff('day', recent.cohort, activity.week) // 7)::INTEGER AS week_offset,
        count(DISTINCT activity.person_id) AS people
    FROM recent
    INNER JOIN activity ON activity.person_id = recent.person_id
    GROUP BY 1, 2
),

final AS (
    SELECT
        strftime(active.cohort, '%Y-%m-%d') AS cohort_week,
        sizes.size AS cohort_size,
        active.week_offset,
        active.people,
        round(active.people / sizes.size, 4) AS retained
    FROM active
    INNER JOIN sizes ON sizes.cohort = active.cohort
    ORDER BY cohort_week, week_offset
)

SELECT * FROM final
