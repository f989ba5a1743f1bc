-- accounts: the stream's latest roll-up per account, as verify compares them.
SELECT * FROM lake_accounts
