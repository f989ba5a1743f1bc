-- Members of one cohort for one subject kind (the cohort_membership view's contract).
SELECT subject_id FROM cohort_membership WHERE cohort = $cohort AND subject_kind = $kind
