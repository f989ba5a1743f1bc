-- events: what stage 1 was given and what it answered, one row per event (lake_events keeps
-- the earliest-received copy: the copy whose answer the warehouse shows), in the batch's
-- order: per device, by (timestamp, event_id). last_received_at is when the latest copy
-- arrived: a copy redelivered after later events reached the stream out of order.
WITH copies AS (
    SELECT event_id, max(received_at) AS last_received_at
    FROM lake_events_raw
    GROUP BY event_id
),

final AS (
    SELECT
        coalesce(lake_events.anonymous_id, 'user:' || lake_events.user_id) AS device,
        lake_events.event_id,
        lake_events.type,
        lake_events.event,
        lake_events.anonymous_id,
        lake_events.user_id,
        lake_events.previous_id,
        lake_events.account_id,
        lake_events.timestamp,
        lake_events.received_at,
        copies.last_received_at,
        lake_events.context,
        lake_events.person_id,
        lake_events.session_id,
        lake_events.flags
    FROM lake_events
    JOIN copies ON copies.event_id = lake_events.event_id
)

SELECT * FROM final
ORDER BY device, timestamp, event_id
