-- sessions: the stream's latest summary of each session, as verify compares them.
SELECT session_id, anonymous_id AS device, events, start, "end"
FROM lake_sessions
