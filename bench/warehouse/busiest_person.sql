-- busiest_person: the most events any one person has in the lake. The cohort benchmark's
-- SQL counts every occurrence, the stream's rules keep at most 1000 per event and person:
-- below that the two must agree.
SELECT max(events) AS events
FROM (
    SELECT count(*) AS events
    FROM lake_events
    WHERE person_id IS NOT NULL
    GROUP BY person_id
)
