-- events: one row per event_id. The lake may hold the same event more than once (a sink
-- replay after a crash, a client retry); the earliest-received copy wins, so counts never
-- double. JSON payload columns are stored as text in Parquet and typed as JSON here.
CREATE OR REPLACE VIEW events AS
WITH lake AS (
    SELECT * FROM read_parquet({{events_glob}}, union_by_name = true)
),

deduplicated AS (
    SELECT *
    FROM lake
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
),

final AS (
    SELECT * REPLACE (
        context::JSON AS context,
        properties::JSON AS properties,
        traits::JSON AS traits,
        elements::JSON AS elements
    )
    FROM deduplicated
)

SELECT * FROM final
