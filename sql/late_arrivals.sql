-- Late events per landing date: how many arrived for earlier event dates, and how late.
select
    landing_date,
    event_date,
    cast(landing_date - event_date as int) as days_late,
    count(*) as events
from silver_events
where event_date < landing_date
group by landing_date, event_date
order by landing_date, event_date
