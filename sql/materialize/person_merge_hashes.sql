-- person_merges as hashes, for the materializer to see which merges changed between two
-- refreshes (their persons' funnel rows are recomputed).
SELECT
    hash(origin) AS origin_hash,
    hash(person) AS person_hash
FROM person_merges
