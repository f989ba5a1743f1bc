-- purchases_per_day: B2C orders (`Order Completed`) and revenue per UTC day.
WITH orders AS (
    SELECT
        strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%d') AS day,
        TRY_CAST(coalesce(properties ->> 'revenue', properties ->> 'amount') AS DOUBLE) AS revenue
    FROM events
    WHERE event = 'Order Completed'
),

final AS (
    SELECT day, count(*) AS orders, round(coalesce(sum(revenue), 0), 2) AS revenue
    FROM orders
    GROUP BY 1
    ORDER BY day
)

SELECT * FROM final
