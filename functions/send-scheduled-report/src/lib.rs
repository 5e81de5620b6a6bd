//! `send-scheduled-report`: runs one slot of a report schedule and emails
//! the file to the schedule's recipients (seed 000 §8).
//!
//! `POST {"scheduled_report_id": "<uuid>"}` with the service-role key (the
//! minute dispatcher, `public.due_report_schedules`, calls it per due
//! schedule). The answer is seed 000's `{success, delivered_count,
//! next_run_at}` plus `action` (what this call did) and `slot`.
//!
//! 1. `public.claim_report_slot` locks the schedule and claims its due
//!    slot's run (the slot is the idempotency key: a second caller gets
//!    `busy` or `not_due`), or asks for the first slot of a new schedule.
//! 2. The next slot is computed here with croner and chrono-tz, strictly
//!    after the later of the slot and now: after downtime the missed slots
//!    are one run, not one each.
//! 3. The report runs as the service role on a spec whose tenant is the
//!    schedule row's ([`public.report_data`] filters every source by it).
//! 4. The file goes to `reports/<tenant>/scheduled/<schedule>/<slot>.<ext>`
//!    (the same path on a retried slot), and a signed link valid 7 days is
//!    made.
//! 5. `public.finish_report_slot` queues one email per recipient through
//!    the outbox (the file attached when it is under Resend's limit, else
//!    linked), logs each in `report_deliveries`, and moves `next_run_at`,
//!    in one transaction; the outbox is then delivered at once.
//!
//! A failure before step 5 leaves the run claimed; when its lease ends the
//! dispatcher's next call takes it over and finishes the same slot.

use documents::tabular::{Meta, Report};
use documents::{ChartKind, Orientation};
use schedule::chrono::{DateTime, Utc};
use schedule::Schedule;
use shared::serde_json::{json, Value};
use shared::{ApiError, Auth, Ctx, Endpoint, Request, Response, Result, Uuid, Validator};

pub const FUNCTION_NAME: &str = "send-scheduled-report";
pub const BUCKET: &str = "reports";
/// The link in the email, and the attachment's source, work this long.
pub const LINK_TTL_SECS: u32 = 7 * 24 * 3600;
/// Resend takes at most 40 MB per email, attachments included after base64
/// (which adds a third): a file up to 28 MiB is attached, a bigger one linked.
pub const ATTACH_LIMIT_BYTES: usize = 28 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub scheduled_report_id: Uuid,
}

pub fn validate(body: &Value) -> Result<Input> {
    let mut v = Validator::new();
    let obj = v
        .object("", body, &["scheduled_report_id"])
        .cloned()
        .unwrap_or_default();
    let id = v.uuid("scheduled_report_id", obj.get("scheduled_report_id"));
    if obj.get("scheduled_report_id").is_none() {
        v.error("scheduled_report_id", "is required");
    }
    v.finish(|| Input {
        scheduled_report_id: id.unwrap_or_default(),
    })
}

/// The schedule a claim describes, as croner will run it.
pub fn schedule_of(kind: &str, config: &Value) -> std::result::Result<Schedule, String> {
    let text = |k: &str| config.get(k).and_then(Value::as_str);
    let day = match config.get("day_of_month") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let weekdays: Vec<&str> = match config.get("weekdays").and_then(Value::as_array) {
        Some(days) => days.iter().filter_map(Value::as_str).collect(),
        None => vec!["mon"],
    };
    let c = schedule::Config {
        time: text("time"),
        weekdays: &weekdays,
        day_of_month: Some(day.as_deref().unwrap_or("1")),
        cron: text("cron"),
        time_zone: text("time_zone").unwrap_or("UTC"),
    };
    Schedule::new(kind, &c).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("schedule_config.{} {}", e.field, e.problem))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn instant(v: &Value) -> Result<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ApiError::Internal(format!("not a timestamp: {v}")))
}

fn now(ctx: &Ctx<'_>) -> DateTime<Utc> {
    DateTime::from_timestamp(ctx.clock.now_unix_secs(), 0).unwrap_or_default()
}

/// The slot as a file name: `2026-11-30T07-00-00Z`.
pub fn slot_name(slot: DateTime<Utc>) -> String {
    slot.format("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// Attached or linked: by the provider's limit.
pub fn attach(size: usize) -> bool {
    size <= ATTACH_LIMIT_BYTES
}

/// The report's period: a named one as `report_data` applied it ("Last
/// week, 2026-11-16 to 2026-11-22"), else its date filters ("2026-01-01 to
/// 2026-03-31").
pub fn period(report: &Value, filters: &Value) -> Option<String> {
    match (Report { data: report }).period(filters) {
        (Some(name), Some(dates)) => Some(format!("{name}, {dates}")),
        (name, dates) => dates.or(name),
    }
}

pub struct SendScheduledReport;

impl Endpoint for SendScheduledReport {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::ServiceRole;
    type Input = Input;

    fn input(req: &Request, _now: i64) -> Result<Input> {
        // The slot is this function's idempotency key; a header, if sent,
        // must still be a valid one.
        req.idempotency_key()?;
        validate(&req.json_object()?)
    }

    async fn run(input: Input, ctx: &Ctx<'_>) -> Result<Response> {
        let key = ctx.require_service_key()?;
        let rest = &ctx.config.rest;
        let id = input.scheduled_report_id;
        let claim = rest
            .rpc(
                "claim_report_slot",
                &json!({ "scheduled_report_id": id }),
                key,
            )
            .await?;
        let action = claim["action"].as_str().unwrap_or("");
        let kind = claim["schedule_type"].as_str().unwrap_or("");
        let answer = |action: &str, next: &Value, delivered: u64| {
            Response::json(
                200,
                &json!({"success": true, "action": action, "delivered_count": delivered,
                        "next_run_at": next, "slot": claim["slot"]}),
            )
        };
        match action {
            "run" => {}
            "compute" => {
                let (next, error) = match schedule_of(kind, &claim["config"]) {
                    Ok(s) => match s.next_after(instant(&claim["after"])?) {
                        Some(t) => (Some(t), None),
                        None => (None, Some("the schedule never runs again".to_owned())),
                    },
                    Err(e) => (None, Some(e)),
                };
                // Absent, not null: a null argument does not reach SQL as null everywhere.
                let mut args = json!({ "scheduled_report_id": id });
                if let Some(t) = next {
                    args["next_run_at"] = json!(t.to_rfc3339());
                }
                if let Some(e) = &error {
                    args["error"] = json!(e);
                }
                let set = rest.rpc("set_report_schedule", &args, key).await?;
                let done = if error.is_some() {
                    "disabled"
                } else {
                    "scheduled"
                };
                return Ok(answer(done, &set["next_run_at"], 0));
            }
            other => return Ok(answer(other, &claim["next_run_at"], 0)),
        }

        // This call owns the slot's run.
        let slot = instant(&claim["slot"])?;
        let config = &claim["config"];
        let tenant = claim["tenant_id"].as_str().unwrap_or("");
        let next = schedule_of(kind, config)
            .ok()
            .and_then(|s| s.next_after(slot.max(now(ctx))));
        let finish = |outcome: Value| {
            let mut args =
                json!({"scheduled_report_id": id, "slot": claim["slot"], "outcome": outcome});
            if let Some(t) = next {
                args["next_run_at"] = json!(t.to_rfc3339());
            }
            async move { rest.rpc("finish_report_slot", &args, key).await }
        };
        let report = match rest
            .rpc("report_data", &json!({ "spec": claim["spec"] }), key)
            .await
        {
            Ok(r) => r,
            // The saved report no longer runs (a metric it names cannot be
            // computed so): this slot fails, recorded, and the schedule moves
            // on rather than retrying each lease. A database outage (5xx) is
            // retried.
            Err(e) if e.status() < 500 => {
                let error = format!("the report does not run: {} {}", e.message(), e.details());
                finish(json!({"status": "failed", "error": error})).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let rendered = Report { data: &report };
        let rows = rendered.rows().len();
        if rows == 0 && config["skip_if_empty"] == true {
            let done = finish(json!({"status": "skipped", "row_count": 0})).await?;
            return Ok(answer("skipped", &done["next_run_at"], 0));
        }
        let title = claim["name"]
            .as_str()
            .map_or_else(|| rendered.default_title(), str::to_owned);
        let chart = match claim["visualization_type"].as_str() {
            Some("chart") => rendered.chart(None::<ChartKind>, &title).ok(),
            _ => None,
        };
        let filters = claim["spec"]["filters"].clone();
        let meta = Meta {
            title: title.clone(),
            tenant_name: claim["tenant_name"].as_str().unwrap_or("").to_owned(),
            generated_at: claim["generated_at"].as_str().unwrap_or("").to_owned(),
            filters: filters.clone(),
        };
        let (bytes, extension, content_type) = match config["format"].as_str() {
            Some("excel") => (
                rendered.xlsx(&meta, chart.as_ref())?,
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            _ => {
                let orientation = match config["orientation"].as_str() {
                    Some("landscape") => Orientation::Landscape,
                    _ => Orientation::Portrait,
                };
                (
                    rendered.pdf(&meta, chart, orientation),
                    "pdf",
                    "application/pdf",
                )
            }
        };
        let size = bytes.len();
        let limit = claim["file_size_limit"].as_u64().unwrap_or(u64::MAX) as usize;
        if size > limit {
            // This slot cannot be sent; the next one may be smaller.
            let error = format!(
                "the {extension} file is {size} bytes, over the reports bucket's limit of {limit}"
            );
            finish(
                json!({"status": "failed", "error": error, "row_count": rows, "size_bytes": size}),
            )
            .await?;
            return Err(ApiError::FileTooLarge {
                message: error,
                details: json!({"size_bytes": size, "limit_bytes": limit}),
            });
        }
        let path = format!("{tenant}/scheduled/{id}/{}.{extension}", slot_name(slot));
        let storage = &ctx.config.storage;
        storage
            .upload(BUCKET, &path, bytes, content_type, true, key)
            .await?;
        let url = storage
            .create_signed_url(BUCKET, &path, LINK_TTL_SECS, key)
            .await?;
        let filename = format!(
            "{}-{}.{extension}",
            title
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .trim_matches('-'),
            slot.format("%Y-%m-%d")
        );
        let done = finish(json!({
            "status": "sent", "file_path": path, "file_url": url, "size_bytes": size,
            "row_count": rows, "filename": filename, "content_type": content_type,
            "attach": attach(size), "title": title, "period": period(&report, &filters),
        }))
        .await?;
        if done["notifications_queued"].as_u64().unwrap_or(0) > 0 {
            ctx.deliver_outbox();
        }
        Ok(answer(
            "sent",
            &done["next_run_at"],
            done["delivered_count"].as_u64().unwrap_or(0),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(SendScheduledReport);

#[cfg(test)]
mod tests {
    use super::*;
    use schedule::chrono::TimeZone;

    #[test]
    fn input() {
        let id = Uuid::from_u128(9);
        assert_eq!(
            validate(&json!({ "scheduled_report_id": id })).unwrap(),
            Input {
                scheduled_report_id: id
            }
        );
        for bad in [
            json!({}),
            json!({"scheduled_report_id": "x"}),
            json!({"scheduled_report_id": id, "tenant_id": id}),
        ] {
            assert_eq!(validate(&bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn schedules_from_claims_with_defaults() {
        let s = schedule_of(
            "weekly",
            &json!({"time": "08:00", "time_zone": "Europe/Paris"}),
        )
        .unwrap();
        assert_eq!(s.expression(), "0 8 * * 1", "weekly defaults to Monday");
        let after = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(); // a Friday
        assert_eq!(
            s.next_after(after).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 7, 0, 0).unwrap(),
            "Monday 08:00 in Paris is 07:00 UTC"
        );
        let s = schedule_of("monthly", &json!({"time": "06:30", "time_zone": "UTC"})).unwrap();
        assert_eq!(s.expression(), "30 6 1 * *", "monthly defaults to the 1st");
        let s = schedule_of(
            "monthly",
            &json!({"time": "06:30", "day_of_month": 15, "time_zone": "UTC"}),
        )
        .unwrap();
        assert_eq!(s.expression(), "30 6 15 * *");
        let e =
            schedule_of("cron", &json!({"cron": "61 * * * *", "time_zone": "UTC"})).unwrap_err();
        assert!(e.starts_with("schedule_config.cron"), "{e}");
    }

    #[test]
    fn missed_slots_are_one_run_and_a_slot_has_one_file() {
        let s = schedule_of("daily", &json!({"time": "08:00", "time_zone": "UTC"})).unwrap();
        let slot = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
        let back_at = Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap();
        // a week down: the run of the 20th's slot is followed by the 28th's, not the 21st's
        assert_eq!(
            s.next_after(slot.max(back_at)).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap()
        );
        assert_eq!(slot_name(slot), "2026-11-20T08-00-00Z");
        assert!(attach(ATTACH_LIMIT_BYTES) && !attach(ATTACH_LIMIT_BYTES + 1));
        assert_eq!(
            period(&json!({}), &json!({"date_from": "2026-01-01"})).as_deref(),
            Some("from 2026-01-01")
        );
        assert_eq!(period(&json!({}), &json!({})), None);
        let applied = json!({"period": {"name": "last_week", "date_from": "2026-11-16", "date_to": "2026-11-22"}});
        assert_eq!(
            period(&applied, &json!({"period": "last_week"})).as_deref(),
            Some("Last week, 2026-11-16 to 2026-11-22")
        );
    }
}
