-- member_counts: current members per cohort.
SELECT cohort, count(*) AS members
FROM cohort_membership
GROUP BY cohort
