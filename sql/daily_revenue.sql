-- Daily revenue and orders: gross sales, returns, net revenue, orders, customers and average order value.
select
    event_date,
    count(distinct case when line_type = 'purchase' then order_id end) as orders,
    count(distinct case when line_type = 'purchase' then user_id end) as customers,
    sum(case when line_type = 'purchase' then quantity else 0 end) as units,
    round(cast(sum(case when line_type = 'purchase' then revenue else 0 end) as double), 2) as gross_revenue,
    round(cast(-sum(case when line_type = 'return' then revenue else 0 end) as double), 2) as returns,
    round(cast(sum(revenue) as double), 2) as net_revenue,
    round(
        cast(sum(case when line_type = 'purchase' then revenue else 0 end) as double)
        / nullif(count(distinct case when line_type = 'purchase' then order_id end), 0),
        2
    ) as avg_order_value
from silver_order_lines
group by event_date
order by event_date
