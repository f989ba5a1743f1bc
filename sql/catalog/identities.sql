-- identities: the identity ledger, one row per link, alias or device switch, with the
-- event that caused it (who, when, which event), so a wrong merge can be found and undone.
CREATE OR REPLACE VIEW identities AS
SELECT * FROM lake_identities
