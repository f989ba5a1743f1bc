-- A segment's size at each snapshot (its trend), oldest first.
SELECT snapshot_date, count(*) AS members
FROM segment_history
WHERE segment = $segment
GROUP BY 1
ORDER BY 1
