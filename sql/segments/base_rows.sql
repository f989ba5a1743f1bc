-- Rows of a segment base (segment_person_base or segment_account_base) for some subjects.
SELECT * FROM {{ident:base}} WHERE list_contains($ids, subject_id) ORDER BY subject_id
