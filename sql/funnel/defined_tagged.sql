-- Has the materializer tagged some event with a funnel name (a definition added later,
-- applied to history)? Then the funnel takes the exact path, which reads those tags.
-- The rows of effective_tags without its GROUP BY (any of them answers; ~10x cheaper).
-- Parameters: $names (VARCHAR[]).
SELECT EXISTS (
    SELECT 1
    FROM defined_event_tags
    WHERE
        version = (SELECT arg_max(version, tagged_at) FROM defined_event_tags)
        AND list_has_any(names, $names)
) AS matched
