-- members: one cohort's current members, longest-standing first.
SELECT subject_kind, subject_id, since, criterion, event_id
FROM cohort_membership
WHERE cohort = $cohort
ORDER BY since, subject_id
