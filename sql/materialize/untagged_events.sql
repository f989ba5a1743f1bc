-- Events the materializer has not tagged under the current definitions version: all of
-- them after a definitions change, only the new ones otherwise. Only the columns a
-- definition can look at.
SELECT event_id, type, event, context, elements
FROM lake_events
WHERE event_id NOT IN (
    SELECT event_id FROM defined_event_tags WHERE version = $version
)
