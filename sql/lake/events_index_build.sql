-- events_index_build: the index rows of one events file (pipeline/warehouse/event_index.py):
-- every copy as written, sorted by event name (a name filter then skips the row groups of
-- other names from their footer statistics), then person and time.
-- sorted_event_hash is in an order of its own: the same name's event hashes, ascending
-- (rank r of a name's rows by person and time holds the r-th smallest hash of that name).
-- So any name filter reads runs of sorted hashes, which a merge checks for repeats far
-- faster than a sort of the row-ordered event_hash.
WITH copies AS (
    SELECT
        event,
        CASE WHEN person_id IS NOT NULL THEN hash(person_id) END AS person_hash,
        epoch_ms(timestamp) AS ts,
        epoch_ms(received_at) AS received_ms,
        hash(event_id) AS event_hash
    FROM read_parquet({{source}})
),

by_person AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY event ORDER BY person_hash, ts, event_hash) AS rank
    FROM copies
),

by_hash AS (
    SELECT
        event,
        event_hash AS sorted_event_hash,
        row_number() OVER (PARTITION BY event ORDER BY event_hash) AS rank
    FROM copies
)

SELECT
    p.event,
    p.person_hash,
    p.ts,
    p.received_ms,
    p.event_hash,
    h.sorted_event_hash
FROM by_person AS p
INNER JOIN by_hash AS h ON p.event IS NOT DISTINCT FROM h.event AND p.rank = h.rank
ORDER BY p.event, p.rank
