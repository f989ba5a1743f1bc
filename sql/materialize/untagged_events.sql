-- Events the materializer has not tagged under the current definitions version: all of
-- them after a definitions change, only the new ones otherwise. Only the columns a
-- definition can look at. The raw lake is filtered first and only the new events are
-- deduplicated (the earliest-received copy, as in `lake_events`). The tags are first
-- narrowed to the lake's event_ids (a semi-join built on the lake side: on a refresh that
-- side is only the new files, ~10x cheaper than hashing every tag).
WITH copies AS (
    SELECT event_id, type, event, context, elements, received_at, timestamp
    FROM lake_events_raw
),

tagged AS (
    SELECT event_id
    FROM defined_event_tags
    WHERE version = $version AND event_id IN (SELECT event_id FROM copies)
),

final AS (
    SELECT event_id, type, event, context, elements
    FROM copies
    WHERE event_id NOT IN (SELECT event_id FROM tagged)
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
)

SELECT * FROM final
