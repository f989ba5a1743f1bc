-- Has the materializer tagged some event with a funnel name (a definition added later,
-- applied to history)? Then the funnel takes the exact path, which reads those tags.
-- Parameters: $names (VARCHAR[]).
SELECT EXISTS (
    SELECT 1 FROM effective_tags WHERE list_has_any(names, $names)
) AS matched
