-- Every subject of a segment base: who a segment of that kind could contain.
SELECT subject_id FROM {{ident:base}} ORDER BY 1
