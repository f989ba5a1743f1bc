-- segment_account_base: one row per account, the columns account segments test: the
-- accounts view's firmographics and roll-ups, plus sector (from NAICS, else SIC, else the
-- industry trait), configurable size and revenue bands, technographics (technologies
-- traits, members' browsers and OS), buying-committee coverage and the fit x engagement
-- tier (rules: pipeline/segments/rules.py). Needs segment_person_base and
-- segment_industry_codes.
CREATE OR REPLACE TEMP TABLE segment_account_base AS
WITH members AS (
    SELECT
        account_id,
        list_sort(list_distinct(list(browser) FILTER (WHERE browser IS NOT NULL)))
            AS member_browsers,
        list_sort(list_distinct(list(os) FILTER (WHERE os IS NOT NULL))) AS member_os,
        count(DISTINCT role) FILTER (WHERE last_seen >= $committee_since) AS roles_engaged,
        count(DISTINCT role) FILTER (
            WHERE last_seen >= $committee_since
            AND list_contains(CAST($committee_roles AS VARCHAR []), role)
        ) AS committee_roles_engaged
    FROM segment_person_base
    WHERE account_id IS NOT NULL
    GROUP BY 1
),

coded AS (
    SELECT
        accounts.*,
        coalesce(naics.sector, sic.sector, accounts.industry) AS sector
    FROM accounts
    LEFT JOIN segment_industry_codes AS naics
        ON
            naics.scheme = 'naics'
            AND naics.prefix = left(regexp_replace(accounts.naics_code, '[^0-9]', '', 'g'), 2)
    LEFT JOIN segment_industry_codes AS sic
        ON
            sic.scheme = 'sic'
            AND sic.prefix
            = left(lpad(regexp_replace(accounts.sic_code, '[^0-9]', '', 'g'), 4, '0'), 2)
),

scored AS (
    SELECT
        coded.*,
        CASE WHEN coded.employees IS NOT NULL THEN
            $employee_labels[
                1 + len(list_filter($employee_edges, lambda e: e <= coded.employees))
            ]
        END AS size_band,
        CASE WHEN coded.annual_revenue IS NOT NULL THEN
            $revenue_labels[
                1 + len(list_filter($revenue_edges, lambda e: e <= coded.annual_revenue))
            ]
        END AS revenue_tier,
        coalesce(members.member_browsers, []) AS member_browsers,
        coalesce(members.member_os, []) AS member_os,
        coalesce(members.roles_engaged, 0) AS roles_engaged,
        coalesce(members.committee_roles_engaged, 0)
        / greatest(len(CAST($committee_roles AS VARCHAR [])), 1) AS committee_coverage,
        coalesce(coded.employees, 0) >= $fit_min_employees
        AND (
            len(CAST($fit_sectors AS VARCHAR [])) = 0
            OR list_contains(CAST($fit_sectors AS VARCHAR []), coded.sector)
            OR list_contains(CAST($fit_sectors AS VARCHAR []), coded.industry)
        ) AS fit,
        coalesce(coded.active_users_30d, 0) >= $engaged_min_active
        AND coalesce(coded.lead_score, 0) >= $engaged_min_lead AS engaged
    FROM coded
    LEFT JOIN members ON members.account_id = coded.account_id
),

final AS (
    SELECT
        account_id AS subject_id,
        * EXCLUDE (version),
        CASE WHEN fit AND engaged THEN 'A' WHEN fit OR engaged THEN 'B' ELSE 'C' END AS tier
    FROM scored
)

SELECT * FROM final
