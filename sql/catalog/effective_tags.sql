-- effective_tags: the materializer's defined-event tags under the newest definitions
-- version, one row per event it has looked at (an event it has not reached yet keeps
-- the tags stage 1 gave it on arrival, in events.defined_events).
CREATE OR REPLACE VIEW effective_tags AS
SELECT event_id, any_value(names) AS names
FROM defined_event_tags
-- The newest version only: a definitions change is being (or was) rebuilt.
WHERE version = (SELECT arg_max(version, tagged_at) FROM defined_event_tags)
GROUP BY event_id
