-- accounts_by_industry: B2B accounts per industry and employee band, as stage 2 keeps
-- them (the `accounts` view: the same bands everywhere).
SELECT
    coalesce(industry, '(unknown)') AS industry,
    coalesce(employee_band, '(unknown)') AS employee_band,
    count(*) AS accounts
FROM accounts
GROUP BY ALL
ORDER BY ALL
