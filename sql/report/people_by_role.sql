-- people_by_role: identified people per role (the `role` trait of their latest identify).
WITH latest AS (
    SELECT person_id, arg_max(traits ->> 'role', timestamp) AS role
    FROM events
    WHERE type = 'identify' AND traits ->> 'role' IS NOT NULL
    GROUP BY 1
),

final AS (
    SELECT role, count(*) AS people
    FROM latest
    GROUP BY 1
    ORDER BY people DESC, role
)

SELECT * FROM final
