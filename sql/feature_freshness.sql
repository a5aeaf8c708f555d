-- Feature freshness: per gold feature table, the newest feature_date, its row count, how many dates are kept,
-- and how many days it lags the newest event in silver.
with stats as (
    select 'gold.user_features' as table_name, max(feature_date) as newest_feature_date,
           count(distinct feature_date) as dates_kept,
           sum(case when feature_date = (select max(feature_date) from gold_user_features) then 1 else 0 end) as rows_at_newest
    from gold_user_features
    union all
    select 'gold.item_features', max(feature_date), count(distinct feature_date),
           sum(case when feature_date = (select max(feature_date) from gold_item_features) then 1 else 0 end)
    from gold_item_features
    union all
    select 'gold.user_item_interactions', max(feature_date), count(distinct feature_date),
           sum(case when feature_date = (select max(feature_date) from gold_user_item_interactions) then 1 else 0 end)
    from gold_user_item_interactions
    union all
    select 'gold.item_cooccurrence', max(feature_date), count(distinct feature_date),
           sum(case when feature_date = (select max(feature_date) from gold_item_cooccurrence) then 1 else 0 end)
    from gold_item_cooccurrence
    union all
    select 'gold.sku_daily_demand', max(feature_date), count(distinct feature_date),
           sum(case when feature_date = (select max(feature_date) from gold_sku_daily_demand) then 1 else 0 end)
    from gold_sku_daily_demand
),
newest_event as (
    select max(event_date) as newest_event_date from silver_events
)
select
    s.table_name,
    s.newest_feature_date,
    s.rows_at_newest,
    s.dates_kept,
    e.newest_event_date,
    cast(e.newest_event_date - s.newest_feature_date as int) as days_behind
from stats s
cross join newest_event e
order by s.table_name
