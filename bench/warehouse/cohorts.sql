-- cohorts: the baseline of the cohort benchmark (bench/warehouse/cohorts.py). The 20 person
-- cohorts of bench/warehouse/cohorts.yaml in plain DuckDB SQL over the catalog's views: one
-- (cohort, person_id) row per member at $as_of (epoch milliseconds), with the rules of
-- pipeline/cohorts.py: a window `within D` is [as_of - D, as_of] (age 0 to D, both ends
-- inclusive); stopped/restarted compare it with [as_of - 2D, as_of - D) (D < age <= 2D);
-- regularly's period k is [as_of - (k+1)E, as_of - kE); an event is a name when it is that
-- event or is tagged with it (defined_events); subjects are every person with an event or a
-- profile. Not expressed: the stream's cap of 1000 kept occurrences per event and person
-- (the benchmark checks no one reaches it). A day is 86400000 ms (BIGINT: 30 days overflow
-- an INTEGER).
WITH events AS (
    SELECT
        person_id,
        event_id,
        epoch_ms(timestamp) AS t,
        $as_of - epoch_ms(timestamp) AS age,
        event,
        coalesce(defined_events, []) AS tags
    FROM lake_events
    WHERE person_id IS NOT NULL
),

named AS (
    SELECT
        person_id,
        event_id,
        t,
        age,
        event = '$pageview' OR list_contains(tags, '$pageview') AS pageview,
        event = '$click' OR list_contains(tags, '$click') AS click,
        event = '$submit' OR list_contains(tags, '$submit') AS submit,
        event = 'Signed Up' OR list_contains(tags, 'Signed Up') AS signed_up,
        event = 'Activated' OR list_contains(tags, 'Activated') AS activated,
        event = 'Purchased' OR list_contains(tags, 'Purchased') AS purchased,
        event = 'Viewed Pricing' OR list_contains(tags, 'Viewed Pricing') AS viewed_pricing,
        event = 'Pricing Page' OR list_contains(tags, 'Pricing Page') AS pricing_page,
        event = 'Key Action' OR list_contains(tags, 'Key Action') AS key_action
    FROM events
),

per_person AS (
    SELECT
        person_id,
        count(*) FILTER (pageview AND age BETWEEN 0 AND 3 * 86400000::BIGINT) AS pageview_3d,
        count(*) FILTER (pageview AND age BETWEEN 0 AND 7 * 86400000::BIGINT) AS pageview_7d,
        count(*) FILTER (pageview AND age BETWEEN 0 AND 30 * 86400000::BIGINT) AS pageview_30d,
        count(*) FILTER (pageview AND age > 7 * 86400000::BIGINT AND age <= 14 * 86400000::BIGINT)
            AS pageview_7d_1,
        count(*) FILTER (pageview AND age > 14 * 86400000::BIGINT AND age <= 21 * 86400000::BIGINT)
            AS pageview_7d_2,
        count(*) FILTER (pageview AND age > 21 * 86400000::BIGINT AND age <= 28 * 86400000::BIGINT)
            AS pageview_7d_3,
        count(*) FILTER (click AND age BETWEEN 0 AND 3 * 86400000::BIGINT) AS click_3d,
        count(*) FILTER (click AND age > 3 * 86400000::BIGINT AND age <= 6 * 86400000::BIGINT)
            AS click_3d_1,
        count(*) FILTER (click AND age > 6 * 86400000::BIGINT AND age <= 9 * 86400000::BIGINT)
            AS click_3d_2,
        count(*) FILTER (click AND age BETWEEN 0 AND 7 * 86400000::BIGINT) AS click_7d,
        count(*) FILTER (submit AND age BETWEEN 0 AND 14 * 86400000::BIGINT) AS submit_14d,
        count(*) FILTER (activated AND age BETWEEN 0 AND 7 * 86400000::BIGINT) AS activated_7d,
        count(*) FILTER (activated AND age BETWEEN 0 AND 30 * 86400000::BIGINT) AS activated_30d,
        count(*) FILTER (purchased AND age BETWEEN 0 AND 30 * 86400000::BIGINT) AS purchased_30d,
        count(*) FILTER (viewed_pricing AND age BETWEEN 0 AND 7 * 86400000::BIGINT) AS viewed_pricing_7d,
        count(*) FILTER (viewed_pricing AND age BETWEEN 0 AND 14 * 86400000::BIGINT)
            AS viewed_pricing_14d,
        count(*) FILTER (viewed_pricing AND age > 7 * 86400000::BIGINT AND age <= 14 * 86400000::BIGINT)
            AS viewed_pricing_7d_before,
        count(*) FILTER (pricing_page AND age BETWEEN 0 AND 7 * 86400000::BIGINT) AS pricing_page_7d,
        count(*) FILTER (pricing_page AND age BETWEEN 0 AND 14 * 86400000::BIGINT) AS pricing_page_14d,
        count(*) FILTER (pricing_page AND age > 7 * 86400000::BIGINT AND age <= 14 * 86400000::BIGINT)
            AS pricing_page_7d_before,
        count(*) FILTER (key_action AND age BETWEEN 0 AND 14 * 86400000::BIGINT) AS key_action_14d,
        $as_of - min(t) FILTER (signed_up) AS signed_up_first_age,
        $as_of - min(t) FILTER (key_action) AS key_action_first_age,
        $as_of - min(t) FILTER (pricing_page) AS pricing_page_first_age
    FROM named
    GROUP BY person_id
),

-- sequence Signed Up then Purchased within 7d: the first Signed Up in the window (by time,
-- then event_id), then any Purchased after it in the window.
first_signup_7d AS (
    SELECT person_id, t, event_id
    FROM named
    WHERE signed_up AND age BETWEEN 0 AND 7 * 86400000::BIGINT
    QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY t, event_id) = 1
),

signup_then_purchase AS (
    SELECT DISTINCT first_signup_7d.person_id
    FROM first_signup_7d
    JOIN named AS later ON later.person_id = first_signup_7d.person_id
    WHERE
        later.purchased
        AND later.age BETWEEN 0 AND 7 * 86400000::BIGINT
        AND (
            later.t > first_signup_7d.t
            OR (later.t = first_signup_7d.t AND later.event_id > first_signup_7d.event_id)
        )
),

-- A property test is false on a missing value or a value of another type (condition_holds).
profiles AS (
    SELECT
        person_id,
        country,
        json_extract_string(properties, '$.plan') AS plan,
        CASE
            WHEN json_type(properties, '$.lead_score') IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                THEN CAST(json_extract(properties, '$.lead_score') AS DOUBLE)
        END AS lead_score
    FROM lake_profiles
),

subjects AS (
    SELECT person_id FROM per_person
    UNION
    SELECT person_id FROM profiles
),

flags AS (
    SELECT
        subjects.person_id,
        coalesce(p.pageview_7d >= 3, false) AS active_week,
        coalesce(p.click_3d >= 2, false) AS clickers_3d,
        coalesce(p.pageview_30d = 1, false) AS single_visit,
        coalesce(p.click_7d, 0) <= 1 AS light_clickers,
        coalesce(p.submit_14d, 0) = 0 AS no_submit_14d,
        coalesce(p.signed_up_first_age BETWEEN 0 AND 7 * 86400000::BIGINT, false) AS new_signups,
        coalesce(p.key_action_first_age BETWEEN 0 AND 14 * 86400000::BIGINT, false) AS new_key_action,
        coalesce(p.viewed_pricing_7d_before > 0 AND p.viewed_pricing_7d = 0, false)
            AS pricing_stopped,
        coalesce(p.click_3d_1 > 0 AND p.click_3d = 0, false) AS clicks_stopped,
        coalesce(
            p.pricing_page_7d > 0
            AND p.pricing_page_7d_before = 0
            AND p.pricing_page_first_age > 14 * 86400000::BIGINT,
            false
        ) AS pricing_back,
        signup_then_purchase.person_id IS NOT NULL AS signup_then_purchase,
        coalesce(
            p.pageview_7d >= 1
            AND p.pageview_7d_1 >= 1
            AND p.pageview_7d_2 >= 1
            AND p.pageview_7d_3 >= 1,
            false
        ) AS weekly_visitors,
        coalesce(p.click_3d >= 1 AND p.click_3d_1 >= 1 AND p.click_3d_2 >= 1, false)
            AS steady_clickers,
        coalesce(profiles.plan IN ('pro', 'enterprise'), false) AS paying_plans,
        coalesce(profiles.lead_score >= 70 AND p.pricing_page_14d >= 1, false) AS hot_leads,
        coalesce(profiles.country = 'DE' AND p.pageview_30d >= 1, false) AS german_visitors,
        coalesce(p.viewed_pricing_14d >= 2, false) AND coalesce(p.purchased_30d, 0) = 0
            AS evaluators,
        coalesce(p.activated_7d >= 1 OR p.purchased_30d >= 1, false) AS activated_or_bought,
        coalesce(p.pageview_30d >= 5 AND p.pageview_3d = 0, false) AS going_quiet,
        coalesce(
            (p.signed_up_first_age BETWEEN 0 AND 30 * 86400000::BIGINT AND p.activated_30d = 0)
            OR (profiles.plan = 'free' AND p.key_action_14d >= 2),
            false
        ) AS stuck_or_busy_free
    FROM subjects
    LEFT JOIN per_person AS p ON p.person_id = subjects.person_id
    LEFT JOIN profiles ON profiles.person_id = subjects.person_id
    LEFT JOIN signup_then_purchase ON signup_then_purchase.person_id = subjects.person_id
),

final AS (
    UNPIVOT flags
    ON COLUMNS(* EXCLUDE (person_id))
    INTO NAME cohort VALUE member
)

SELECT cohort, person_id
FROM final
WHERE member
