-- lake_accounts: one row per account, its highest version (every update that changed the
-- account raised it). The compactor runs this same file over the files it merges.
CREATE OR REPLACE VIEW lake_accounts AS
SELECT *
FROM read_parquet({{source}}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY version DESC) = 1
