-- person_merges as hashes: the funnel re-attributes index rows (person hashes) through it,
-- and the materializer compares two snapshots to see which merges changed between two
-- refreshes (their persons' funnel rows are recomputed).
SELECT
    hash(origin) AS origin_hash,
    hash(person) AS person_hash
FROM person_merges
ORDER BY origin_hash
