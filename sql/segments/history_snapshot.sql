-- The date of a segment's latest snapshot on or before a day (NULL: none that early).
SELECT max(snapshot_date) FROM segment_history WHERE segment = $segment AND snapshot_date <= $day
