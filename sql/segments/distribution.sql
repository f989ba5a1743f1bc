-- How a segment's members spread over the values of one base column (top values first).
SELECT CAST({{ident:column}} AS VARCHAR) AS value, count(*) AS members
FROM {{ident:base}}
WHERE list_contains($ids, subject_id)
GROUP BY 1
ORDER BY 2 DESC, 1
LIMIT $top
