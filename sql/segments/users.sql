-- Accounts with at least $at_least members meeting the person condition.
SELECT b.account_id AS subject_id
FROM segment_person_base AS b
WHERE b.account_id IS NOT NULL AND (/*condition*/)
GROUP BY 1
HAVING count(*) >= $at_least
