-- accounts: one row per B2B account (its latest version), group traits as JSON.
CREATE OR REPLACE VIEW accounts AS
SELECT * REPLACE (traits::JSON AS traits)
FROM lake_accounts
