-- person_accounts: each person's account, the one on their latest event that carries one
-- (group calls), among deduplicated events (a replayed copy's time must not make it the
-- latest); people re-attributed through person_merges. Funnels per account count by it.
CREATE OR REPLACE VIEW person_accounts AS
SELECT
    coalesce(person_merges.person, lake_events.person_id) AS person,
    -- Ties in time broken by event_id: the answer never depends on the scan order.
    arg_max(lake_events.account_id, (lake_events.timestamp, lake_events.event_id)) AS account_id
FROM lake_events
LEFT JOIN person_merges ON person_merges.origin = lake_events.person_id
WHERE lake_events.account_id IS NOT NULL
GROUP BY 1
