-- Is any funnel name some event's defined event? Then the funnel takes the exact path
-- (entries_deduplicated.sql for every event): copies of an event may disagree on defined
-- events. Parameters: $names (VARCHAR[]).
SELECT EXISTS (
    SELECT 1 FROM lake_events_raw WHERE list_has_any(defined_events, $names)
) AS matched
