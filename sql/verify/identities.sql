-- identities: the stream's ledger entries made by stage 1 from single events (link, alias,
-- switch). many_devices flags are counted per person by another agent, not recomputed here.
SELECT
    event_id,
    kind,
    from_person,
    to_person,
    coalesce(anonymous_id, 'user:' || user_id) AS device
FROM lake_identities
WHERE kind <> 'many_devices'
