//! When a report schedule runs next (seed 000's `scheduled_reports`):
//! `schedule_type` daily, weekly, monthly or `cron`, and a `schedule_config`
//! with the local time, weekdays, day of month and the tenant's IANA time
//! zone.
//!
//! Every kind becomes a standard 5-field cron expression, evaluated by
//! croner in the schedule's time zone (chrono-tz), so the rules across DST
//! are croner's, and they are the ones a person expects:
//! - a local time the clock skips (02:30 on a spring-forward day) runs once,
//!   at the first real instant after the gap (03:00);
//! - a local time that happens twice (01:30 on a fall-back day) runs once,
//!   at the first of the two.
//!
//! [`Schedule::next_after`] is strictly after the instant given. A caller
//! that was down for a while asks from *now*, so the slots it missed become
//! one run, not one each.

use std::fmt;
use std::str::FromStr;

pub use chrono;
pub use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A checked schedule.
#[derive(Clone)]
pub struct Schedule {
    cron: Cron,
    expression: String,
    tz: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({} in {})", self.expression, self.tz)
    }
}

/// What a schedule's config may say; the kind decides which parts it needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config<'a> {
    /// `HH:MM`, 24-hour, local (daily, weekly, monthly).
    pub time: Option<&'a str>,
    /// `mon` … `sun` (weekly: at least one).
    pub weekdays: &'a [&'a str],
    /// 1 to 28, or `last` (monthly).
    pub day_of_month: Option<&'a str>,
    /// A 5-field cron expression (cron).
    pub cron: Option<&'a str>,
    /// An IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: &'a str,
}

/// A problem with one field of the config, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field,
        problem: problem.into(),
    }
}

const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// `HH:MM` as (hour, minute).
fn hh_mm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

impl Schedule {
    /// Checks a schedule: every problem, by field, or the schedule.
    pub fn new(kind: &str, config: &Config<'_>) -> Result<Schedule, Vec<Invalid>> {
        let mut errors = Vec::new();
        let tz = match Tz::from_str(config.time_zone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.push(invalid(
                    "time_zone",
                    "must be an IANA time zone, e.g. Europe/Paris",
                ));
                None
            }
        };
        let time = || match config.time.and_then(hh_mm) {
            Some(t) => Ok(t),
            None => Err(invalid(
                "time",
                "must be a local time HH:MM (00:00 to 23:59)",
            )),
        };
        let expression = match kind {
            "daily" => time().map(|(h, m)| format!("{m} {h} * * *")),
            "weekly" => time().and_then(|(h, m)| {
                let mut days: Vec<usize> = Vec::new();
                for d in config.weekdays {
                    match WEEKDAYS.iter().position(|w| w == d) {
                        Some(i) if !days.contains(&i) => days.push(i),
                        Some(_) => {}
                        None => {
                            return Err(invalid(
                                "weekdays",
                                "must be mon, tue, wed, thu, fri, sat or sun",
                            ))
                        }
                    }
                }
                if days.is_empty() {
                    return Err(invalid("weekdays", "a weekly schedule needs a weekday"));
                }
                days.sort_unstable();
                let list: Vec<String> = days.iter().map(usize::to_string).collect();
                Ok(format!("{m} {h} * * {}", list.join(",")))
            }),
            "monthly" => time().and_then(|(h, m)| {
                let day = match config.day_of_month {
                    Some("last") => "L".to_string(),
                    Some(d) => match d.parse::<u32>() {
                        Ok(n) if (1..=28).contains(&n) => n.to_string(),
                        _ => {
                            return Err(invalid(
                                "day_of_month",
                                "must be 1 to 28, or last (every month has it)",
                            ))
                        }
                    },
                    None => return Err(invalid("day_of_month", "a monthly schedule needs one")),
                };
                Ok(format!("{m} {h} {day} * *"))
            }),
            "cron" => match config.cron {
                Some(c) if c.split_whitespace().count() == 5 => {
                    Ok(c.split_whitespace().collect::<Vec<_>>().join(" "))
                }
                Some(_) => Err(invalid(
                    "cron",
                    "must be a 5-field cron expression: minute hour day month weekday",
                )),
                None => Err(invalid("cron", "a cron schedule needs its expression")),
            },
            _ => Err(invalid(
                "schedule_type",
                "must be one of: daily, weekly, monthly, cron",
            )),
        };
        let expression = match expression {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let cron = expression.as_deref().and_then(|e| match Cron::from_str(e) {
            Ok(c) => Some(c),
            Err(err) => {
                errors.push(invalid(
                    "cron",
                    format!("is not a valid cron expression: {err}"),
                ));
                None
            }
        });
        match (cron, expression, tz) {
            (Some(cron), Some(expression), Some(tz)) if errors.is_empty() => Ok(Schedule {
                cron,
                expression,
                tz,
            }),
            _ => Err(errors),
        }
    }

    /// The cron expression this schedule runs on.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first run strictly after `after`, or None if the expression never
    /// matches again (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn daily(time: &str, tz: &str) -> Schedule {
        Schedule::new(
            "daily",
            &Config {
                time: Some(time),
                time_zone: tz,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Every run from `from` for `n` runs, as UTC RFC 3339.
    fn runs(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn a_daily_0230_in_new_york_runs_once_on_the_spring_forward_day_at_the_first_real_instant() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let s = daily("02:30", "America/New_York");
        assert_eq!(
            runs(&s, "2026-03-06T12:00:00Z", 4),
            [
                "2026-03-07T07:30:00+00:00", // 02:30 EST
                "2026-03-08T07:00:00+00:00", // 03:00 EDT, the first instant after the gap
                "2026-03-09T06:30:00+00:00", // 02:30 EDT
                "2026-03-10T06:30:00+00:00",
            ]
        );
    }

    #[test]
    fn a_daily_0130_in_new_york_runs_once_on_the_fall_back_day() {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
        let s = daily("01:30", "America/New_York");
        assert_eq!(
            runs(&s, "2026-10-31T12:00:00Z", 3),
            [
                "2026-11-01T05:30:00+00:00", // 01:30 EDT, the first of the two
                "2026-11-02T06:30:00+00:00", // 01:30 EST
                "2026-11-03T06:30:00+00:00",
            ]
        );
    }

    #[test]
    fn berlin_both_changes() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 2026-10-25: 03:00 CEST
        // becomes 02:00 CET, so 02:30 happens twice.
        let s = daily("02:30", "Europe/Berlin");
        assert_eq!(
            runs(&s, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        assert_eq!(
            runs(&s, "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T00:30:00+00:00", // 02:30 CEST, once
                "2026-10-26T01:30:00+00:00", // 02:30 CET
                "2026-10-27T01:30:00+00:00",
            ]
        );
    }

    #[test]
    fn weekly_monday_0800_in_the_tenants_zone() {
        let s = Schedule::new(
            "weekly",
            &Config {
                time: Some("08:00"),
                weekdays: &["mon"],
                time_zone: "Europe/Paris",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.expression(), "0 8 * * 1");
        // Friday 2026-11-27 → Monday 2026-11-30 08:00 CET.
        assert_eq!(
            runs(&s, "2026-11-27T10:00:00Z", 2),
            ["2026-11-30T07:00:00+00:00", "2026-12-07T07:00:00+00:00"]
        );
        let two = Schedule::new(
            "weekly",
            &Config {
                time: Some("17:45"),
                weekdays: &["fri", "mon", "fri"],
                time_zone: "UTC",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(two.expression(), "45 17 * * 1,5");
    }

    #[test]
    fn monthly_on_a_day_or_the_last() {
        let last = Schedule::new(
            "monthly",
            &Config {
                time: Some("09:00"),
                day_of_month: Some("last"),
                time_zone: "UTC",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            runs(&last, "2027-01-15T00:00:00Z", 3),
            [
                "2027-01-31T09:00:00+00:00",
                "2027-02-28T09:00:00+00:00",
                "2027-03-31T09:00:00+00:00"
            ]
        );
        let fifth = Schedule::new(
            "monthly",
            &Config {
                time: Some("06:15"),
                day_of_month: Some("5"),
                time_zone: "Asia/Tokyo",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            runs(&fifth, "2026-11-27T00:00:00Z", 1),
            ["2026-12-04T21:15:00+00:00"]
        );
    }

    #[test]
    fn a_cron_expression_and_a_missed_stretch_is_one_run() {
        let s = Schedule::new(
            "cron",
            &Config {
                cron: Some("0  */6 * * *"),
                time_zone: "America/Sao_Paulo",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.expression(), "0 */6 * * *");
        // Down for two days: asked from now, the next run is the next slot,
        // not the eight that were missed.
        let slot = utc("2026-11-25T03:00:00Z");
        let now = slot + chrono::Duration::days(2) + chrono::Duration::minutes(7);
        assert_eq!(
            s.next_after(now).unwrap().to_rfc3339(),
            "2026-11-27T09:00:00+00:00"
        );
        // Strictly after: a slot is never its own next run.
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        assert_eq!(
            s.next_after(at).unwrap().to_rfc3339(),
            "2026-11-27T15:00:00+00:00"
        );
        // An expression that never matches has no next run.
        let never = Schedule::new(
            "cron",
            &Config {
                cron: Some("0 0 30 2 *"),
                time_zone: "UTC",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(never.next_after(at), None);
    }

    #[test]
    fn every_rejection_names_its_field() {
        let fields = |kind: &str, c: Config<'_>| -> Vec<&'static str> {
            Schedule::new(kind, &c)
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        let tz = "UTC";
        assert_eq!(
            fields(
                "hourly",
                Config {
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["schedule_type"]
        );
        assert_eq!(
            fields(
                "daily",
                Config {
                    time: Some("9:00"),
                    time_zone: "Mars/Olympus",
                    ..Default::default()
                }
            ),
            ["time_zone", "time"]
        );
        assert_eq!(
            fields(
                "daily",
                Config {
                    time: Some("24:00"),
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["time"]
        );
        assert_eq!(
            fields(
                "weekly",
                Config {
                    time: Some("08:00"),
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["weekdays"]
        );
        assert_eq!(
            fields(
                "weekly",
                Config {
                    time: Some("08:00"),
                    weekdays: &["monday"],
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["weekdays"]
        );
        for day in ["0", "29", "31", "first"] {
            assert_eq!(
                fields(
                    "monthly",
                    Config {
                        time: Some("08:00"),
                        day_of_month: Some(day),
                        time_zone: tz,
                        ..Default::default()
                    }
                ),
                ["day_of_month"],
                "{day}"
            );
        }
        assert_eq!(
            fields(
                "cron",
                Config {
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["cron"]
        );
        assert_eq!(
            fields(
                "cron",
                Config {
                    cron: Some("0 0 * * * *"),
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["cron"]
        );
        assert_eq!(
            fields(
                "cron",
                Config {
                    cron: Some("61 * * * *"),
                    time_zone: tz,
                    ..Default::default()
                }
            ),
            ["cron"]
        );
    }
}
