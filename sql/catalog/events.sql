-- events: one row per event_id (lake_events keeps the earliest-received copy of each), so
-- counts never double. person_id is re-attributed through the identity ledger: a device's
-- anonymous person and an aliased user follow their link/alias edges (the earliest edge per person,
-- transitively) to the person they became, so history before an identify joins the user.
CREATE OR REPLACE VIEW events AS
WITH RECURSIVE deduplicated AS (
    SELECT * FROM lake_events
),

merges AS (
    SELECT from_person, to_person
    FROM identities
    WHERE kind IN ('link', 'alias')
    QUALIFY row_number() OVER (PARTITION BY from_person ORDER BY timestamp, event_id) = 1
),

walk (origin, person, depth) AS (
    SELECT from_person, to_person, 1 FROM merges
    UNION ALL
    SELECT walk.origin, merges.to_person, walk.depth + 1
    FROM walk
    JOIN merges ON merges.from_person = walk.person
    WHERE walk.depth < 32  -- a cycle of aliases stops here instead of looping
),

resolved AS (
    SELECT origin, arg_max(person, depth) AS person
    FROM walk
    GROUP BY origin
),

final AS (
    SELECT deduplicated.* REPLACE (
        coalesce(resolved.person, deduplicated.person_id) AS person_id,
        context::JSON AS context,
        properties::JSON AS properties,
        traits::JSON AS traits,
        elements::JSON AS elements
    )
    FROM deduplicated
    LEFT JOIN resolved ON resolved.origin = deduplicated.person_id
)

SELECT * FROM final
