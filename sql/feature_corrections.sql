-- Late-data corrections: per nightly run, the past feature dates re-derived, the late events inside their
-- windows, and how many gold tables were rebuilt.
select
    run_date,
    feature_date,
    max(late_event_count) as late_events,
    count(*) as tables_rebuilt,
    max(run_id) as run_id
from gold_feature_corrections
group by run_date, feature_date
order by run_date desc, feature_date
