-- lake_profiles: one row per profile key (the person_id stage 2 saw on the event), its
-- highest version (= events folded, so a newer profile always has a higher one; a replayed
-- copy of a version is identical). The compactor runs this same file over the files it
-- merges.
CREATE OR REPLACE VIEW lake_profiles AS
SELECT *
FROM read_parquet({{source}}, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY version DESC) = 1
