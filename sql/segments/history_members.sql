-- A segment's members in the snapshot of one date.
SELECT subject_id
FROM segment_history
WHERE segment = $segment AND snapshot_date = $day
ORDER BY 1
