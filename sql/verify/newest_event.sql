-- newest_event: the latest event time in the lake; sessions that ended more than the
-- inactivity timeout before it are closed, in the stream as in the batch.
SELECT max(timestamp) AS newest FROM lake_events
