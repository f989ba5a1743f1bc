-- cohort_history: every time a subject entered or left a cohort, as the stream keyed it
-- (persons by the person_id stage 2 saw). A change repeated without the opposite one in
-- between (sent again after a crash, or a replay re-evaluated) is kept once: the first.
CREATE OR REPLACE VIEW cohort_history AS
WITH changes AS (
    SELECT
        cohort,
        subject_kind,
        subject_id,
        change,
        timezone('UTC', "at") AS "at",
        criterion,
        event_id,
        lag(change) OVER (
            PARTITION BY cohort, subject_kind, subject_id ORDER BY "at", event_id NULLS FIRST
        ) AS previous
    FROM lake_cohort_changes
),

final AS (
    SELECT cohort, subject_kind, subject_id, change, "at", criterion, event_id
    FROM changes
    WHERE previous IS DISTINCT FROM change
)

SELECT * FROM final
