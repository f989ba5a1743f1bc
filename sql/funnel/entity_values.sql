-- entity_values: a breakdown by a person's or an account's property, one value per entity
-- (its current value, from the persons / accounts views), keyed by the hash the funnel
-- groups on: hash(person) (merged, as persons.person_id is), or with $by = 'account'
-- hash(account_id). A person's account is person_accounts' (as for --by account).
-- Parameters: $by ('person' | 'account'), $breakdown_source ('person', 'person.traits',
-- 'person.properties', 'account', 'account.traits') and $breakdown_path (a column name
-- for 'person' / 'account', checked against a fixed list by the engine; else a JSON path).
-- The CASEs name every allowed column: the value is never spliced into the SQL.
WITH person_values AS (
    SELECT
        hash(person_id) AS entity_hash,
        CASE $breakdown_source
            WHEN 'person.traits' THEN json_extract_string(traits, $breakdown_path)
            WHEN 'person.properties' THEN json_extract_string(properties, $breakdown_path)
            ELSE CASE $breakdown_path
                WHEN 'browser' THEN browser
                WHEN 'os' THEN os
                WHEN 'device' THEN device
                WHEN 'country' THEN country
                WHEN 'email_domain' THEN email_domain
                WHEN 'email_kind' THEN email_kind
                WHEN 'initial_referrer' THEN initial_referrer
                WHEN 'initial_utm_source' THEN initial_utm_source
            END
        END AS value
    FROM persons
    WHERE starts_with($breakdown_source, 'person')
),

account_values AS (
    SELECT
        account_id,
        CASE $breakdown_source
            WHEN 'account.traits' THEN json_extract_string(traits, $breakdown_path)
            ELSE CASE $breakdown_path
                WHEN 'name' THEN name
                WHEN 'industry' THEN industry
                WHEN 'employees' THEN employees::VARCHAR
                WHEN 'employee_band' THEN employee_band
                WHEN 'annual_revenue' THEN annual_revenue::VARCHAR
                WHEN 'revenue_band' THEN revenue_band
                WHEN 'country' THEN country
                WHEN 'region' THEN region
                WHEN 'sic_code' THEN sic_code
                WHEN 'naics_code' THEN naics_code
                WHEN 'lead_score' THEN lead_score::VARCHAR
            END
        END AS value
    FROM accounts
    WHERE starts_with($breakdown_source, 'account')
),

-- Per person (their account's value) or per account.
account_entities AS (
    SELECT hash(person_accounts.person) AS entity_hash, account_values.value
    FROM person_accounts
    INNER JOIN account_values ON account_values.account_id = person_accounts.account_id
    WHERE $by = 'person'
    UNION ALL
    SELECT hash(account_id) AS entity_hash, value
    FROM account_values
    WHERE $by = 'account'
)

SELECT entity_hash, value FROM person_values WHERE value IS NOT NULL
UNION ALL
SELECT entity_hash, value FROM account_entities WHERE value IS NOT NULL
ORDER BY entity_hash
