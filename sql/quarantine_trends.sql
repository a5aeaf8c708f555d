-- Quarantined rows per landing date, dataset, stage and reason, with each reason's share of that day's quarantine.
select
    landing_date,
    dataset,
    stage,
    reason,
    count(*) as rows_quarantined,
    round(count(*) / cast(sum(count(*)) over (partition by landing_date, dataset) as double), 4) as share_of_day
from ops_quarantine
group by landing_date, dataset, stage, reason
order by landing_date, dataset, rows_quarantined desc, reason
