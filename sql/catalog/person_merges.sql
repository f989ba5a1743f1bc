-- person_merges: where each merged person id now points. A device's anonymous person and an
-- aliased user follow their link/alias edges (the earliest edge per person, transitively)
-- to the person they became; ids absent here are their own person.
CREATE OR REPLACE VIEW person_merges AS
WITH RECURSIVE merges AS (
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

final AS (
    SELECT origin, arg_max(person, depth) AS person
    FROM walk
    GROUP BY origin
)

SELECT * FROM final
