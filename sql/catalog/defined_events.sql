-- defined_events: one row per (event, defined event it is an occurrence of), with the
-- event's person, session and time, for counting defined events like any other.
CREATE OR REPLACE VIEW defined_events AS
WITH tagged AS (
    SELECT event_id, person_id, account_id, session_id, timestamp, defined_events
    FROM events
    WHERE len(defined_events) > 0
),

final AS (
    SELECT
        unnest(defined_events) AS name,
        event_id,
        person_id,
        account_id,
        session_id,
        timestamp
    FROM tagged
)

SELECT * FROM final
