-- sessions: one row per session. Stage 1 emits a summary when a session closes (and when
-- it has been idle for the inactivity timeout); a later summary of the same session
-- supersedes an earlier one, so the one with the most events wins.
CREATE OR REPLACE VIEW sessions AS
WITH lake AS (
    SELECT * FROM read_parquet({{sessions_glob}}, union_by_name = true)
),

final AS (
    SELECT * REPLACE (campaign::JSON AS campaign)
    FROM lake
    QUALIFY row_number() OVER (
        PARTITION BY session_id ORDER BY events DESC, "end" DESC
    ) = 1
)

SELECT * FROM final
