-- cohort_events: what the cohort rules read of every person's events, one person after the
-- other in event-time order (the order a person's events reach stage 2 when none is late).
SELECT person_id, account_id, event_id, event, defined_events, timestamp
FROM lake_events
WHERE person_id IS NOT NULL
ORDER BY person_id, timestamp, event_id
