-- Validation trend per landing date and suite: expectations run, failed (and how many critical), and the
-- rows Great Expectations flagged as unexpected.
select
    landing_date,
    suite,
    count(*) as expectations,
    sum(case when success then 0 else 1 end) as failed,
    sum(case when severity = 'critical' and not success then 1 else 0 end) as critical_failed,
    sum(coalesce(unexpected_count, 0)) as unexpected_rows
from ops_validation_results
group by landing_date, suite
order by landing_date, suite
