-- Top 5 products per category by revenue over the 28 days up to the newest order date.
with bounds as (
    select max(event_date) as last_day from silver_order_lines
),
catalogue as (
    select sku, title, category
    from silver_products
    where snapshot_date = (select max(snapshot_date) from silver_products)
),
sales as (
    select
        l.sku,
        sum(l.quantity) as units,
        cast(sum(l.revenue) as double) as revenue,
        count(distinct l.order_id) as orders
    from silver_order_lines l
    cross join bounds b
    where l.line_type = 'purchase' and l.event_date > b.last_day - 28
    group by l.sku
),
ranked as (
    select
        coalesce(c.category, '(none)') as category,
        s.sku,
        c.title,
        s.units,
        round(s.revenue, 2) as revenue,
        s.orders,
        row_number() over (partition by coalesce(c.category, '(none)') order by s.revenue desc, s.sku) as rank
    from sales s
    left join catalogue c on c.sku = s.sku
)
select category, rank, sku, title, units, revenue, orders
from ranked
where rank <= 5
order by category, rank
