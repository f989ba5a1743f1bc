-- sessions: one row per session (lake_sessions keeps the latest summary of each).
CREATE OR REPLACE VIEW sessions AS
SELECT * REPLACE (campaign::JSON AS campaign)
FROM lake_sessions
