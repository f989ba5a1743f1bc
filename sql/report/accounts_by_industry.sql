-- accounts_by_industry: accounts (from `group` calls) per industry and employee band.
WITH accounts AS (
    SELECT
        account_id,
        arg_max(traits, timestamp) AS traits
    FROM events
    WHERE type = 'group' AND account_id IS NOT NULL
    GROUP BY 1
),

banded AS (
    SELECT
        coalesce(traits ->> 'industry', '(unknown)') AS industry,
        CASE
            WHEN TRY_CAST(traits ->> 'employees' AS BIGINT) IS NULL THEN '(unknown)'
            WHEN TRY_CAST(traits ->> 'employees' AS BIGINT) < 50 THEN '1-49'
            WHEN TRY_CAST(traits ->> 'employees' AS BIGINT) < 250 THEN '50-249'
            WHEN TRY_CAST(traits ->> 'employees' AS BIGINT) < 1000 THEN '250-999'
            WHEN TRY_CAST(traits ->> 'employees' AS BIGINT) < 5000 THEN '1000-4999'
            ELSE '5000+'
        END AS employee_band
    FROM accounts
),

final AS (
    SELECT industry, employee_band, count(*) AS accounts
    FROM banded
    GROUP BY 1, 2
    ORDER BY industry, employee_band
)

SELECT * FROM final
