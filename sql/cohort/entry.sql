-- entry: how a subject entered a cohort (if it is a member now).
SELECT since, criterion, event_id
FROM cohort_membership
WHERE cohort = $cohort AND subject_id = $subject
