-- Customer scores at the newest scored_date for the CRM, likeliest churners first; the reasons as one text
-- column, so the result exports as CSV: python -m shopml.query sql/customer_scores.sql --out customers.csv
select
    user_id,
    round(p_purchase_30d, 4) as p_purchase_30d,
    round(p_churn_90d, 4) as p_churn_90d,
    round(expected_revenue_90d, 2) as expected_revenue_90d,
    rfm_segment,
    concat_ws('; ', top_reasons) as top_reasons,
    scored_by,
    model_version,
    scored_date
from gold_customer_scores
where scored_date = (select max(scored_date) from gold_customer_scores)
order by p_churn_90d desc nulls last, user_id
