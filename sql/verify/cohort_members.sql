-- cohort_members: the stream's current members per stream key (before persons are merged
-- through the ledger): the subjects whose latest change is an enter.
SELECT cohort, subject_kind, subject_id
FROM cohort_history
QUALIFY row_number() OVER (
    PARTITION BY cohort, subject_kind, subject_id ORDER BY "at" DESC, event_id DESC NULLS LAST
) = 1
AND change = 'enter'
