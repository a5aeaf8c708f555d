-- Null rates of the nullable feature columns at the newest feature_date (a jump means an upstream feed broke;
-- the column docs say when a null is expected, e.g. rates without views in purchase-only feeds).
with users as (select * from latest_user_features),
items as (select * from latest_item_features),
demand as (
    select * from gold_sku_daily_demand
    where feature_date = (select max(feature_date) from gold_sku_daily_demand)
)
select 'gold.user_features' as table_name, 'recency_days' as column_name, count(*) as rows,
       round(avg(case when recency_days is null then 1.0 else 0.0 end), 4) as null_rate from users
union all
select 'gold.user_features', 'view_to_cart_rate', count(*),
       round(avg(case when view_to_cart_rate is null then 1.0 else 0.0 end), 4) from users
union all
select 'gold.user_features', 'cart_to_purchase_rate', count(*),
       round(avg(case when cart_to_purchase_rate is null then 1.0 else 0.0 end), 4) from users
union all
select 'gold.user_features', 'return_rate', count(*),
       round(avg(case when return_rate is null then 1.0 else 0.0 end), 4) from users
union all
select 'gold.user_features', 'avg_unit_price', count(*),
       round(avg(case when avg_unit_price is null then 1.0 else 0.0 end), 4) from users
union all
select 'gold.item_features', 'category', count(*),
       round(avg(case when category is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.item_features', 'unit_price', count(*),
       round(avg(case when unit_price is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.item_features', 'price_change_7d', count(*),
       round(avg(case when price_change_7d is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.item_features', 'trend_7_28', count(*),
       round(avg(case when trend_7_28 is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.item_features', 'conversion_rate', count(*),
       round(avg(case when conversion_rate is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.item_features', 'on_hand', count(*),
       round(avg(case when on_hand is null then 1.0 else 0.0 end), 4) from items
union all
select 'gold.sku_daily_demand', 'lag_28', count(*),
       round(avg(case when lag_28 is null then 1.0 else 0.0 end), 4) from demand
union all
select 'gold.sku_daily_demand', 'rolling_std_28', count(*),
       round(avg(case when rolling_std_28 is null then 1.0 else 0.0 end), 4) from demand
