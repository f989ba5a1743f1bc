-- cohort_membership: current members, whose latest change is an enter. Persons are
-- re-attributed through the identity ledger (person_merges) like the persons view: a
-- person is a member when any of their stream ids is, since the earliest entry.
CREATE OR REPLACE VIEW cohort_membership AS
WITH latest AS (
    SELECT *
    FROM cohort_history
    QUALIFY row_number() OVER (
        PARTITION BY cohort, subject_kind, subject_id ORDER BY "at" DESC, event_id DESC NULLS LAST
    ) = 1
),

members AS (
    SELECT
        latest.*,
        CASE
            WHEN latest.subject_kind = 'person'
                THEN coalesce(person_merges.person, latest.subject_id)
            ELSE latest.subject_id
        END AS subject
    FROM latest
    LEFT JOIN person_merges
        ON latest.subject_kind = 'person' AND person_merges.origin = latest.subject_id
    WHERE latest.change = 'enter'
),

final AS (
    SELECT
        cohort,
        subject_kind,
        subject AS subject_id,
        min("at") AS since,
        arg_min(criterion, "at") AS criterion,
        arg_min(event_id, "at") AS event_id
    FROM members
    GROUP BY cohort, subject_kind, subject
)

SELECT * FROM final
