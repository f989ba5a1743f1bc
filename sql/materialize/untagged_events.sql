-- Events the materializer has not tagged under the current definitions version: all of
-- them after a definitions change, only the new ones otherwise. Only the columns a
-- definition can look at. The raw lake is filtered first and only the new events are
-- deduplicated (the earliest-received copy, as in `lake_events`), so a refresh reads the
-- event_id column of history, not all of it.
SELECT event_id, type, event, context, elements
FROM lake_events_raw
WHERE event_id NOT IN (
    SELECT event_id FROM defined_event_tags WHERE version = $version
)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
