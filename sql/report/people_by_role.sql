-- people_by_role: people per `role` trait, as their profiles hold it ($set, $set_once and
-- $unset applied; the `persons` view).
SELECT traits ->> 'role' AS role, count(*) AS people
FROM persons
WHERE traits ->> 'role' IS NOT NULL
GROUP BY 1
ORDER BY people DESC, role
