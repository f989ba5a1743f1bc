-- account_tiers: accounts per fit x engagement tier (A: fit and engaged, B: one of them,
-- C: neither; rules in definitions.yaml `segment_rules`, docs/definitions.md) and size band.
-- Reads the temp table the segment engine builds (segment_account_base).
SELECT
    tier,
    coalesce(size_band, 'unknown') AS size_band,
    count(*) AS accounts
FROM segment_account_base
GROUP BY ALL
ORDER BY tier, size_band
