-- The (merged) persons with an event in the new lake files $files (VARCHAR[]) that can
-- matter to a funnel: named as a step or exclusion in $names (VARCHAR[]), by event name or
-- by stage 1's defined events; every event when $all (strict mode, or the materializer's
-- tags name a step). The materializer recomputes these persons' funnel rows.
WITH new_events AS (
    SELECT person_id
    FROM read_parquet($files, union_by_name = true)
    WHERE $all OR list_contains($names, event) OR list_has_any(defined_events, $names)
),

final AS (
    SELECT DISTINCT hash(coalesce(person_merges.person, new_events.person_id)) AS entity_hash
    FROM new_events
    LEFT JOIN person_merges ON person_merges.origin = new_events.person_id
)

SELECT * FROM final
