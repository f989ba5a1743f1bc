-- person_accounts as hashes: a per-account funnel maps each (merged) person hash of the
-- events index to its account's hash.
SELECT
    hash(person) AS person_hash,
    hash(account_id) AS account_hash
FROM person_accounts
ORDER BY person_hash
