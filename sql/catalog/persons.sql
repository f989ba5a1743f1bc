-- persons: one row per person. Stage 2 keeps a profile per person_id as stage 1 emitted it
-- (a:<anonymousId> before an identify, u:<userId> after); here the profiles of ids merged
-- through the identity ledger (person_merges) join the person they became: counts add up,
-- first/initial values come from the earliest profile, last values, traits and custom
-- properties from the most recently seen one.
CREATE OR REPLACE VIEW persons AS
WITH profiles AS (
    SELECT
        lake_profiles.*,
        coalesce(person_merges.person, lake_profiles.person_id) AS person
    FROM lake_profiles
    LEFT JOIN person_merges ON person_merges.origin = lake_profiles.person_id
),

final AS (
    SELECT
        person AS person_id,
        list(person_id ORDER BY person_id) AS profile_ids,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        sum(event_count)::BIGINT AS event_count,
        sum(session_count)::BIGINT AS session_count,
        arg_min_null(initial_referrer, first_seen) AS initial_referrer,
        arg_min_null(initial_utm_source, first_seen) AS initial_utm_source,
        arg_max_null(last_url, last_seen) AS last_url,
        arg_max_null(browser, last_seen) AS browser,
        arg_max_null(os, last_seen) AS os,
        arg_max_null(device, last_seen) AS device,
        arg_max_null(country, last_seen) AS country,
        arg_max_null(email_domain, last_seen) AS email_domain,
        arg_max_null(email_kind, last_seen) AS email_kind,
        list_sort(list_distinct(flatten(list(account_ids)))) AS account_ids,
        arg_max_null(traits, last_seen)::JSON AS traits,
        arg_max_null(properties, last_seen)::JSON AS properties
    FROM profiles
    GROUP BY person
)

SELECT * FROM final
