-- retention: people grouped by the period (UTC day, or ISO week from Monday) of their first
-- start event; per cohort, how many did the return event k periods later, k = 0..$periods.
-- N-day ($unbounded false): a return in period k exactly; unbounded: in period k or any
-- later one. Only returns at or after the person's first start event count, so with the
-- same event as start and return, period 0 is everyone. Events are those of `events` (one
-- per event_id, the earliest received; people re-attributed through person_merges); an
-- event counts as a start or a return when its name or one of its defined events (the
-- materializer's tags, else stage 1's) is the one asked for.
-- Parameters: $start_event, $return_event (VARCHAR), $period ('day' | 'week'), $periods
-- (INTEGER), $unbounded (BOOLEAN), $since_ms, $until_ms (BIGINT or NULL: cohorts whose
-- first start is in [since, until); returns before until).
WITH matched_ids AS (
    -- Events with a copy that is a start or a return. Reading only these (instead of
    -- deduplicating all of `events`) and deduplicating all their copies afterwards gives
    -- exactly `events`' rows: an event none of whose copies match cannot match.
    SELECT DISTINCT event_id
    FROM lake_events_raw
    WHERE
        list_contains([$start_event, $return_event], event)
        OR list_has_any(defined_events, [$start_event, $return_event])
    UNION
    SELECT event_id
    FROM effective_tags
    WHERE list_has_any(names, [$start_event, $return_event])
),

earliest AS (
    SELECT event_id, person_id, timestamp, event, defined_events
    FROM lake_events_raw
    WHERE event_id IN (SELECT event_id FROM matched_ids)
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, timestamp) = 1
),

deduplicated AS (
    -- The materializer's tags (definitions applied to history) win over stage 1's.
    SELECT
        earliest.person_id,
        earliest.timestamp,
        earliest.event,
        coalesce(effective_tags.names, earliest.defined_events) AS defined_events
    FROM earliest
    LEFT JOIN effective_tags ON effective_tags.event_id = earliest.event_id
),

matching AS (
    SELECT
        coalesce(person_merges.person, deduplicated.person_id) AS person_id,
        epoch_ms(deduplicated.timestamp) AS ts,
        deduplicated.event IS NOT DISTINCT FROM $start_event
        OR coalesce(list_contains(deduplicated.defined_events, $start_event), false)
            AS is_start,
        deduplicated.event IS NOT DISTINCT FROM $return_event
        OR coalesce(list_contains(deduplicated.defined_events, $return_event), false)
            AS is_return
    FROM deduplicated
    LEFT JOIN person_merges ON person_merges.origin = deduplicated.person_id
),

periods AS (
    SELECT
        *,
        -- 1970-01-01 was a Thursday: +3 days makes weeks start on Monday.
        CASE WHEN $period = 'week' THEN (ts // 86400000 + 3) // 7 ELSE ts // 86400000 END
            AS period
    FROM matching
),

firsts AS (
    SELECT person_id, min(ts) AS first_ts, arg_min(period, ts) AS cohort
    FROM periods
    WHERE is_start
    GROUP BY person_id
),

cohorts AS (
    SELECT *
    FROM firsts
    WHERE
        ($since_ms IS NULL OR first_ts >= $since_ms)
        AND ($until_ms IS NULL OR first_ts < $until_ms)
),

returns AS (
    SELECT DISTINCT
        cohorts.person_id,
        cohorts.cohort,
        periods.period - cohorts.cohort AS k
    FROM cohorts
    JOIN periods ON periods.person_id = cohorts.person_id
    WHERE
        periods.is_return
        AND periods.ts >= cohorts.first_ts
        AND ($until_ms IS NULL OR periods.ts < $until_ms)
),

latest AS (
    SELECT person_id, cohort, max(k) AS last_k
    FROM returns
    GROUP BY person_id, cohort
),

reached AS (
    SELECT person_id, cohort, k
    FROM returns
    WHERE NOT $unbounded AND k <= $periods
    UNION ALL
    SELECT person_id, cohort, unnest(range(0, least(last_k, $periods) + 1)) AS k
    FROM latest
    WHERE $unbounded
),

sizes AS (
    SELECT cohort, count(*) AS people
    FROM cohorts
    GROUP BY cohort
),

counts AS (
    SELECT cohort, k, count(*) AS retained
    FROM reached
    GROUP BY cohort, k
),

final AS (
    SELECT sizes.cohort, sizes.people, counts.k, coalesce(counts.retained, 0) AS retained
    FROM sizes
    LEFT JOIN counts ON counts.cohort = sizes.cohort
)

SELECT * FROM final ORDER BY cohort, k
