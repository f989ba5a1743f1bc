-- cohort_accounts: each account's latest record, as stage 2 last emitted it.
SELECT * FROM lake_accounts
