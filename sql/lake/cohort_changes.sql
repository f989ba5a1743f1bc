-- lake_cohort_changes: one row per distinct change stage 2 sent (a change sent again after a
-- crash is an exact copy of the first). The compactor runs this same file over the files it
-- merges.
CREATE OR REPLACE VIEW lake_cohort_changes AS
SELECT DISTINCT ON (cohort, subject_kind, subject_id, change, "at", event_id) *
FROM read_parquet({{source}}, union_by_name = true)
