-- Files of segment_history holding a given day's snapshot (a new run that day replaces them).
SELECT DISTINCT filename
FROM read_parquet($files, filename = true)
WHERE snapshot_date = $day
