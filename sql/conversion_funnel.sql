-- Session conversion funnel per day: sessions that viewed, added to cart and purchased, with the step rates.
-- Purchase-only feeds show zero views and carts, so their step rates are empty.
with sessions as (
    select
        event_date,
        session_id,
        max(case when event_type = 'view' then 1 else 0 end) as viewed,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as carted,
        max(case when event_type = 'purchase' then 1 else 0 end) as purchased
    from silver_events
    group by event_date, session_id
)
select
    event_date,
    count(*) as sessions,
    sum(viewed) as viewed,
    sum(carted) as carted,
    sum(purchased) as purchased,
    round(sum(carted) / nullif(cast(sum(viewed) as double), 0), 4) as view_to_cart,
    round(sum(purchased) / nullif(cast(sum(carted) as double), 0), 4) as cart_to_purchase,
    round(sum(purchased) / cast(count(*) as double), 4) as session_conversion
from sessions
group by event_date
order by event_date
