-- gold.item_features at its newest feature_date: one row per SKU.
select *
from gold_item_features
where feature_date = (select max(feature_date) from gold_item_features)
