-- person_events: every event in the lake (lake_events keeps one copy per event_id) as stage 2
-- folded it, per profile key (the person_id stage 1 answered), in arrival order.
-- last_received_at is when the latest copy arrived: a copy redelivered out of order.
WITH copies AS (
    SELECT event_id, max(received_at) AS last_received_at
    FROM lake_events_raw
    GROUP BY event_id
),

final AS (
    SELECT
        lake_events.person_id,
        lake_events.event_id,
        lake_events.type,
        lake_events.event,
        lake_events.anonymous_id,
        lake_events.user_id,
        lake_events.account_id,
        lake_events.session_id,
        lake_events.timestamp,
        lake_events.received_at,
        copies.last_received_at,
        lake_events.context,
        lake_events.properties,
        lake_events.traits,
        lake_events.elements,
        lake_events.flags
    FROM lake_events
    JOIN copies ON copies.event_id = lake_events.event_id
)

SELECT * FROM final
ORDER BY person_id, received_at, timestamp, event_id
