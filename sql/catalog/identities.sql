-- identities: the identity ledger, one row per link, alias or device switch, with the
-- event that caused it (who, when, which event), so a wrong merge can be found and undone.
CREATE OR REPLACE VIEW identities AS
WITH lake AS (
    SELECT * FROM read_parquet({{identities_glob}}, union_by_name = true)
),

final AS (
    SELECT *
    FROM lake
    QUALIFY row_number() OVER (
        PARTITION BY event_id, kind, from_person, to_person ORDER BY received_at
    ) = 1
)

SELECT * FROM final
