-- Top 20 customers by 90-day revenue at the newest feature_date, with frequency, recency and return rate.
select
    user_id,
    round(revenue_90d, 2) as revenue_90d,
    orders_90d,
    recency_days,
    sessions_28d,
    round(return_rate, 3) as return_rate,
    days_since_first_seen
from latest_user_features
where orders_90d > 0
order by revenue_90d desc, user_id
limit 20
