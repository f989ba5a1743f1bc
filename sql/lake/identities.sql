-- lake_identities: the identity ledger, each link, alias or device switch once (a replay
-- writes the same record again). The compactor runs this same file over the files it
-- merges.
CREATE OR REPLACE VIEW lake_identities AS
SELECT *
FROM read_parquet({{source}}, union_by_name = true)
QUALIFY row_number() OVER (
    PARTITION BY event_id, kind, from_person, to_person ORDER BY received_at
) = 1
