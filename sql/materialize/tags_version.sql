-- The definitions version of the newest tags (NULL before the first run).
SELECT arg_max(version, tagged_at) FROM defined_event_tags
