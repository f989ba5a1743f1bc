-- segment_person_base: one row per person, the columns person segments test: the persons
-- view's built-ins, traits and custom properties, the person's account, RFM scores and
-- lifecycle stage as of $now (rules: pipeline/segments/rules.py, docs/definitions.md).
CREATE OR REPLACE TEMP TABLE segment_person_base AS
WITH people AS (
    SELECT
        persons.*,
        coalesce(person_accounts.account_id, persons.account_ids[1]) AS account
    FROM persons
    LEFT JOIN person_accounts ON person_accounts.person = persons.person_id
),

purchase_events AS (
    SELECT
        events.person_id,
        events.timestamp,
        TRY_CAST(json_extract_string(events.properties, $rfm_amount_path) AS DOUBLE) AS amount
    FROM events
    WHERE
        (
            events.event = $rfm_event
            OR events.event_id IN (SELECT event_id FROM defined_events WHERE name = $rfm_event)
        )
        AND events.timestamp >= $rfm_since
        AND events.timestamp <= $now
),

purchases AS (
    SELECT
        person_id,
        count(*) AS purchases,
        coalesce(sum(amount), 0) AS revenue,
        max(timestamp) AS last_purchase
    FROM purchase_events
    GROUP BY 1
),

-- Quintiles among purchasers only; ties split by person_id so a rerun gives the same.
scored AS (
    SELECT
        *,
        ntile(5) OVER (ORDER BY last_purchase, person_id) AS r_score,
        ntile(5) OVER (ORDER BY purchases, person_id) AS f_score,
        ntile(5) OVER (ORDER BY revenue, person_id) AS m_score
    FROM purchases
),

gaps AS (
    SELECT
        person_id,
        timestamp,
        epoch(timestamp) - epoch(lag(timestamp) OVER (PARTITION BY person_id ORDER BY timestamp))
            AS gap_s
    FROM events
    WHERE timestamp <= $now
),

-- The longest silence before an event of the active window: a long one means returning.
returns AS (
    SELECT person_id, max(gap_s) AS return_gap_s
    FROM gaps
    WHERE timestamp >= $active_since
    GROUP BY 1
),

final AS (
    SELECT
        people.person_id AS subject_id,
        people.person_id,
        people.account AS account_id,
        people.first_seen,
        people.last_seen,
        people.event_count,
        people.session_count,
        people.initial_referrer,
        people.initial_utm_source,
        people.browser,
        people.os,
        people.device,
        people.country,
        people.email_domain,
        people.email_kind,
        json_extract_string(people.traits, '$.role') AS role,
        json_extract_string(people.traits, '$.title') AS title,
        people.traits,
        people.properties,
        scored.purchases,
        scored.revenue,
        scored.last_purchase,
        date_diff('day', scored.last_purchase, $now) AS recency_days,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        CASE
            WHEN scored.person_id IS NULL THEN NULL
            WHEN scored.r_score >= 4 AND scored.purchases = 1 THEN 'new'
            WHEN scored.r_score >= 4 AND (scored.f_score + scored.m_score) / 2 >= 4
                THEN 'champions'
            WHEN scored.r_score >= 3 AND (scored.f_score + scored.m_score) / 2 >= 3 THEN 'loyal'
            WHEN scored.r_score <= 2 AND (scored.f_score + scored.m_score) / 2 >= 3
                THEN 'at_risk'
            WHEN scored.r_score <= 2 THEN 'hibernating'
            ELSE 'needs_attention'
        END AS rfm_segment,
        CASE
            WHEN people.last_seen IS NULL THEN NULL
            WHEN people.first_seen >= $new_since THEN 'new'
            WHEN people.last_seen >= $active_since AND returns.return_gap_s >= $dormant_s
                THEN 'returning'
            WHEN people.last_seen >= $active_since THEN 'active'
            WHEN people.last_seen < $dormant_since THEN 'dormant'
            ELSE 'lapsing'
        END AS lifecycle
    FROM people
    LEFT JOIN scored ON scored.person_id = people.person_id
    LEFT JOIN returns ON returns.person_id = people.person_id
)

SELECT * FROM final
