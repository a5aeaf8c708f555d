-- gold.user_features at its newest feature_date: one row per recently active customer.
select *
from gold_user_features
where feature_date = (select max(feature_date) from gold_user_features)
