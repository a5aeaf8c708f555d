-- "Customers also bought": the top 5 neighbours of the 20 best-selling SKUs (28 days) at the newest feature_date.
with best as (
    select sku, units_sold_28d
    from latest_item_features
    order by units_sold_28d desc, sku
    limit 20
),
neighbours as (
    select *
    from gold_item_cooccurrence
    where feature_date = (select max(feature_date) from gold_item_cooccurrence) and rank <= 5
)
select
    b.sku,
    b.units_sold_28d,
    n.rank,
    n.other_sku,
    n.co_purchase_count,
    n.co_view_count,
    round(n.similarity, 4) as similarity
from best b
join neighbours n on n.sku = b.sku
order by b.units_sold_28d desc, b.sku, n.rank
