-- defined_events: one row per (event, defined event it is an occurrence of), with the
-- event's person, session and time, for counting defined events like any other.
-- The materializer tags every event under the current definitions (so a definition added
-- later applies to history); an event it has not looked at yet keeps the tags stage 1 gave
-- it on arrival.
CREATE OR REPLACE VIEW defined_events AS
WITH tagged AS (
    SELECT
        events.event_id,
        events.person_id,
        events.account_id,
        events.session_id,
        events.timestamp,
        coalesce(effective_tags.names, events.defined_events) AS names
    FROM events
    LEFT JOIN effective_tags ON effective_tags.event_id = events.event_id
),

final AS (
    SELECT
        unnest(names) AS name,
        event_id,
        person_id,
        account_id,
        session_id,
        timestamp
    FROM tagged
    WHERE len(names) > 0
)

SELECT * FROM final
