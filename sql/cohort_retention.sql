-- Weekly cohort retention: customers grouped by the week (Monday) of their first purchase, and the share
-- of each cohort that bought again N weeks later.
with weekly as (
    select distinct user_id, cast(date_trunc('week', event_date) as date) as week
    from silver_order_lines
    where line_type = 'purchase' and user_id is not null
),
cohorts as (
    select user_id, min(week) as cohort_week
    from weekly
    group by user_id
),
activity as (
    select c.cohort_week, cast(cast(w.week - c.cohort_week as int) / 7 as int) as weeks_since_first, w.user_id
    from weekly w
    join cohorts c on c.user_id = w.user_id
),
sizes as (
    select cohort_week, count(*) as cohort_size
    from cohorts
    group by cohort_week
)
select
    a.cohort_week,
    a.weeks_since_first,
    s.cohort_size,
    count(*) as active_customers,
    round(count(*) / cast(s.cohort_size as double), 4) as retention
from activity a
join sizes s on s.cohort_week = a.cohort_week
group by a.cohort_week, a.weeks_since_first, s.cohort_size
order by a.cohort_week, a.weeks_since_first
