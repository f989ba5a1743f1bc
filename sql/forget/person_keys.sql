-- person_keys: everything that identifies the person behind one id (a person_id, a user_id
-- or an anonymous_id, bound as $id): their person ids (merged ones included), anonymous ids,
-- user ids and event ids, which `autocap forget` removes every row holding; and the
-- accounts their events named, which drop them from their members.
WITH persons AS (
    SELECT DISTINCT person_id AS person
    FROM events
    WHERE $id IN (person_id, user_id, anonymous_id) AND person_id IS NOT NULL
),

merged AS (
    SELECT person FROM persons
    UNION
    SELECT origin FROM person_merges WHERE person IN (SELECT person FROM persons)
),

theirs AS (
    SELECT event_id, anonymous_id, user_id, account_id
    FROM events
    WHERE person_id IN (SELECT person FROM persons) OR $id IN (user_id, anonymous_id)
),

final AS (
    SELECT 'person_id' AS kind, person AS value FROM merged
    UNION
    SELECT 'anonymous_id', anonymous_id FROM theirs
    UNION
    SELECT 'user_id', user_id FROM theirs
    UNION
    SELECT 'event_id', event_id FROM theirs
    UNION
    SELECT 'account_id', account_id FROM theirs
)

SELECT kind, value FROM final WHERE value IS NOT NULL ORDER BY kind, value
