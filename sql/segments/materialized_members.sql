-- A segment's members as the materializer last wrote them (segment_<name>).
SELECT subject_id FROM {{ident:table}} ORDER BY 1
