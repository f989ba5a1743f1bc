-- lake_sessions: one row per session. Stage 1 emits a summary when a session closes (and
-- when it has been idle for the inactivity timeout); a later summary of the same session
-- supersedes an earlier one, so the one with the most events wins. The compactor runs
-- this same file over the files it merges.
CREATE OR REPLACE VIEW lake_sessions AS
SELECT *
FROM read_parquet({{source}}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY events DESC, "end" DESC) = 1
