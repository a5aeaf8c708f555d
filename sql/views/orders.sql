-- One row per order: customer, day, lines, units and revenue of its purchase lines (returns are separate lines).
select
    order_id,
    min(user_id) as user_id,
    min(event_date) as order_date,
    min(event_ts) as ordered_at,
    count(*) as lines,
    sum(quantity) as units,
    cast(sum(revenue) as double) as revenue
from silver_order_lines
where line_type = 'purchase'
group by order_id
