-- Could any funnel name be some event's defined event? The footers' statistics answer
-- "no" without a scan when no file's defined events range over one of the names (the
-- usual case: few events carry defined events). "Yes" means: ask defined_matches.sql.
-- Parameters: $names (VARCHAR[]).
SELECT count(*) > 0 AS possible
FROM lake_events_metadata
WHERE
    path_in_schema LIKE 'defined_events,%'
    AND coalesce(stats_null_count, 0) < num_values
    AND (
        stats_min_value IS NULL
        OR stats_max_value IS NULL
        OR len(list_filter($names, lambda n: n BETWEEN stats_min_value AND stats_max_value)) > 0
    )
