-- cohort_profiles: each stream person id's latest profile, as stage 2 last emitted it.
SELECT * FROM lake_profiles
