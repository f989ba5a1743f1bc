-- events: one row per event_id (lake_events keeps the earliest-received copy), so counts
-- never double. person_id is re-attributed through the identity ledger (person_merges), so
-- history before an identify joins the user.
CREATE OR REPLACE VIEW events AS
WITH deduplicated AS (
    SELECT * FROM lake_events
),

final AS (
    SELECT deduplicated.* REPLACE (
        coalesce(person_merges.person, deduplicated.person_id) AS person_id,
        context::JSON AS context,
        properties::JSON AS properties,
        traits::JSON AS traits,
        elements::JSON AS elements
    )
    FROM deduplicated
    LEFT JOIN person_merges ON person_merges.origin = deduplicated.person_id
)

SELECT * FROM final
