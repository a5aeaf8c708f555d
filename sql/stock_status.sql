-- Stock status per category at the newest feature_date, with the units sold over 7 days at risk
-- (sold by SKUs that are now low or out of stock).
select
    coalesce(category, '(none)') as category,
    count(*) as skus,
    sum(case when stock_status = 'in_stock' then 1 else 0 end) as in_stock,
    sum(case when stock_status = 'low' then 1 else 0 end) as low,
    sum(case when stock_status = 'out_of_stock' then 1 else 0 end) as out_of_stock,
    sum(case when stock_status = 'unknown' then 1 else 0 end) as unknown,
    round(sum(case when stock_status in ('low', 'out_of_stock') then units_sold_7d else 0 end), 1) as units_7d_at_risk
from latest_item_features
where active
group by coalesce(category, '(none)')
order by units_7d_at_risk desc, category
