//! `generate-report`: a report over the tenant's data, from the metric
//! catalogue (seed 000 §7).
//!
//! The request is seed 000's, with `group_by`, `save` and an optional
//! `tenant_id` (needed only by a user of several tenants):
//! ```json
//! {"metrics": ["revenue", "order_count"], "group_by": ["month"],
//!  "filters": {"date_from": "2026-01-01", "payment_terms": ["net_30"]},
//!  "visualization_type": "table", "format": "json", "save": "Revenue by month"}
//! ```
//! or `{"report_id": "<uuid>", "filters": {...}}` to run a saved report, the
//! request's filters narrowing the saved ones.
//!
//! The answer (`200`) is seed 000's: `{success, report_data, report_id?}`,
//! `report_data` being `{columns: [{name, type}], rows, totals, time_zone}`
//! and, for `visualization_type: "summary"`, a one-line `summary`.
//!
//! The work is SQL: `public.start_report` (admission, role, rate limit, the
//! saved definition, saving) and `public.report_data` (the catalogue, read
//! under the caller's RLS).

use documents::tabular::{Meta, Report};
use documents::{ChartKind, Orientation};
use shared::format::label;
use shared::serde_json::{json, Map, Value};
use shared::{ApiError, Auth, Counted, Ctx, Endpoint, Request, Response, Result, Uuid, Validator};

/// The function's name, as in `rate_limit_policies` and `request_subjects`.
pub const FUNCTION_NAME: &str = "generate-report";

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInput {
    pub tenant_id: Option<Uuid>,
    /// What `public.start_report` takes, less the tenant.
    pub payload: Map<String, Value>,
    pub visualization: String,
    pub format: Format,
    pub orientation: Orientation,
    pub chart_kind: Option<ChartKind>,
}

/// What the answer carries: the data only, or a file too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Pdf,
    Excel,
}

impl Format {
    fn file(self) -> Option<(&'static str, &'static str)> {
        match self {
            Format::Json => None,
            Format::Pdf => Some(("pdf", "application/pdf")),
            Format::Excel => Some((
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )),
        }
    }
}

/// Where files go, and the bucket's limit when `storage.buckets` gives none
/// (start_report reads its `file_size_limit`).
pub const BUCKET: &str = "reports";
pub const BUCKET_LIMIT_BYTES: usize = 50 * 1024 * 1024;
/// How long `file_url` works.
pub const FILE_URL_TTL_SECS: u32 = 3600;

pub fn validate(body: &Value) -> Result<ReportInput> {
    let mut v = Validator::new();
    let obj = v
        .object(
            "",
            body,
            &[
                "report_id",
                "tenant_id",
                "data_sources",
                "metrics",
                "filters",
                "group_by",
                "visualization_type",
                "format",
                "save",
                "orientation",
                "chart",
            ],
        )
        .cloned()
        .unwrap_or_default();
    let tenant_id = v.uuid("tenant_id", obj.get("tenant_id").filter(|x| !x.is_null()));
    let report_id = v.uuid("report_id", obj.get("report_id").filter(|x| !x.is_null()));
    let mut payload = Map::new();
    if let Some(id) = report_id {
        payload.insert("report_id".into(), json!(id));
        if obj.contains_key("metrics") || obj.contains_key("data_sources") {
            v.error(
                "report_id",
                "runs the saved definition: leave out metrics and data_sources",
            );
        }
    } else if matches!(obj.get("metrics"), None | Some(Value::Null)) {
        v.error("metrics", "is required (or a report_id)");
    }
    // The catalogue checks the names; here only the shapes.
    for key in ["metrics", "data_sources", "group_by"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items))
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| s.len() <= 100)) =>
            {
                payload.insert(key.into(), Value::Array(items.clone()));
            }
            Some(_) => v.error(key, "must be an array of names"),
        }
    }
    match obj.get("filters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if Value::Object(m.clone()).to_string().contains("\\u0000") {
                v.error("filters", "must not contain NUL (\\u0000) characters");
            }
            payload.insert("filters".into(), Value::Object(m.clone()));
        }
        Some(_) => v.error("filters", "must be an object"),
    }
    let visualization = match obj.get("visualization_type") {
        None | Some(Value::Null) => None,
        Some(x) => v.one_of(
            "visualization_type",
            Some(x),
            &["table", "summary", "chart"],
        ),
    };
    let format = match obj.get("format").filter(|x| !x.is_null()) {
        None => Format::Json,
        Some(f) => match v.one_of("format", Some(f), &["json", "pdf", "excel"]) {
            Some("pdf") => Format::Pdf,
            Some("excel") => Format::Excel,
            _ => Format::Json,
        },
    };
    if format == Format::Excel {
        payload.insert("format".into(), json!("excel"));
    }
    let orientation = match obj.get("orientation").filter(|x| !x.is_null()) {
        None => Orientation::Portrait,
        Some(o) => match v.one_of("orientation", Some(o), &["portrait", "landscape"]) {
            Some("landscape") => Orientation::Landscape,
            _ => Orientation::Portrait,
        },
    };
    let mut chart_kind = None;
    match obj.get("chart") {
        None | Some(Value::Null) => {}
        Some(c) => {
            if let Some(c) = v.object("chart", c, &["kind"]) {
                let kind = c.get("kind").filter(|x| !x.is_null());
                chart_kind = v
                    .one_of("chart.kind", kind, &["bar", "line", "pie"])
                    .and_then(ChartKind::parse);
            }
        }
    }
    if let Some(name) = v.string("save", obj.get("save").filter(|x| !x.is_null()), 200) {
        if name.trim().is_empty() {
            v.error("save", "must be a name");
        } else {
            payload.insert("save".into(), json!(name.trim()));
        }
    }
    if let Some(viz) = &visualization {
        payload.insert("visualization_type".into(), json!(viz));
    }
    v.finish(|| ReportInput {
        tenant_id,
        payload,
        visualization: visualization.unwrap_or_default().to_string(),
        format,
        orientation,
        chart_kind,
    })
}

/// One line for `visualization_type: "summary"`: each total, labelled, in
/// its column's kind (money with two decimals, a ratio as a percentage).
pub fn summary(report: &Value) -> String {
    let totals = &report["totals"];
    let shown = Report { data: report };
    report["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let value = totals.get(name)?;
            let kind = c["type"].as_str().unwrap_or("number");
            Some(format!(
                "{}: {}",
                label(name),
                shown.display(name, kind, value)
            ))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub struct GenerateReport;

impl Endpoint for GenerateReport {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = ReportInput;

    fn input(req: &Request, _now: i64) -> Result<ReportInput> {
        req.idempotency_key()?;
        validate(&req.json_object()?)
    }

    async fn run(input: ReportInput, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller()?;
        let tenant = ctx.tenant(input.tenant_id).await?;
        let rest = &ctx.config.rest;
        let mut payload = input.payload.clone();
        payload.insert("tenant_id".into(), json!(tenant));
        let started: Value = rest
            .rpc_counted_as(
                "start_report",
                &json!({ "payload": payload }),
                caller,
                Counted {
                    function_name: FUNCTION_NAME,
                    subject_id: tenant,
                },
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        // The report itself, as the caller: the database's RLS decides.
        let mut report = rest
            .rpc(
                "report_data",
                &json!({ "spec": started["spec"] }),
                &caller.token,
            )
            .await?;
        let viz = started["visualization_type"].as_str().unwrap_or("table");
        let rendered = Report { data: &report };
        let title = started["name"]
            .as_str()
            .map_or_else(|| rendered.default_title(), str::to_owned);
        let chart = match viz {
            "chart" => Some(rendered.chart(input.chart_kind, &title)?),
            _ => None,
        };
        let mut render_ms = None;
        let file = match input.format.file() {
            None => None,
            Some((extension, content_type)) => {
                let meta = Meta {
                    title: title.clone(),
                    tenant_name: started["tenant_name"].as_str().unwrap_or("").to_owned(),
                    generated_at: started["generated_at"].as_str().unwrap_or("").to_owned(),
                    filters: started["spec"]["filters"].clone(),
                };
                let started_ms = ctx.clock.monotonic_ms();
                let bytes = match input.format {
                    Format::Excel => rendered.xlsx(&meta, chart.as_ref())?,
                    _ => rendered.pdf(&meta, chart.clone(), input.orientation),
                };
                render_ms = Some(ctx.clock.monotonic_ms() - started_ms);
                Some((bytes, extension, content_type))
            }
        };
        let summary_line = (viz == "summary").then(|| summary(&report));
        if let Some(line) = summary_line {
            report["summary"] = json!(line);
        }
        if let Some(chart) = &chart {
            report["chart"] = Report::chart_json(chart);
        }
        let mut body = json!({"success": true, "report_data": report, "visualization_type": viz});
        if !started["report_id"].is_null() {
            body["report_id"] = started["report_id"].clone();
            body["name"] = started["name"].clone();
        }
        if let Some((bytes, extension, content_type)) = file {
            let size = bytes.len();
            let limit = started["file_size_limit"]
                .as_u64()
                .map_or(BUCKET_LIMIT_BYTES, |l| l as usize);
            if size > limit {
                return Err(ApiError::FileTooLarge {
                    message: format!(
                        "the {extension} file is {size} bytes, over the reports bucket's limit of {limit}; narrow the filters or group more coarsely"
                    ),
                    details: json!({"size_bytes": size, "limit_bytes": limit}),
                });
            }
            // The ticket is unique to this run, so the path is too.
            let run = started["spec"]["ticket"].as_str().unwrap_or("run");
            let path = format!(
                "{tenant}/{}/{run}.{extension}",
                started["report_id"].as_str().unwrap_or("ad-hoc")
            );
            let storage = &ctx.config.storage;
            storage
                .upload(BUCKET, &path, bytes, content_type, false, &caller.token)
                .await?;
            let url = storage
                .create_signed_url(BUCKET, &path, FILE_URL_TTL_SECS, &caller.token)
                .await?;
            body["file_url"] = json!(url);
            body["file"] = json!({"bucket": BUCKET, "path": path, "content_type": content_type,
                                  "size_bytes": size, "expires_in": FILE_URL_TTL_SECS});
        }
        let mut response = Response::json(200, &body);
        if let Some(ms) = render_ms {
            // How long the file took to make: scripts/bench reads it.
            response
                .headers
                .push(("server-timing".into(), format!("render;dur={ms:.2}")));
        }
        Ok(response)
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(GenerateReport);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    fn errors(body: Value) -> Map<String, Value> {
        match validate(&body) {
            Err(ApiError::Validation(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_request_becomes_start_reports_payload() {
        let i = validate(&json!({"metrics": ["revenue"], "group_by": ["month"],
            "filters": {"date_from": "2026-01-01"}, "visualization_type": "summary",
            "format": "json", "save": "  Monthly  "}))
        .unwrap();
        assert_eq!(
            Value::Object(i.payload),
            json!({"metrics": ["revenue"], "group_by": ["month"], "filters": {"date_from": "2026-01-01"},
                   "visualization_type": "summary", "save": "Monthly"})
        );
        let id = Uuid::from_u128(7);
        let i = validate(&json!({"report_id": id, "filters": {"status": "confirmed"}})).unwrap();
        assert_eq!(i.payload["report_id"], json!(id));
        assert_eq!(i.visualization, "");
    }

    #[test]
    fn rejections() {
        let e = errors(json!({"group_by": "month", "filters": [], "format": "csv", "x": 1}));
        assert_eq!(e["metrics"], "is required (or a report_id)");
        assert_eq!(e["group_by"], "must be an array of names");
        assert_eq!(e["filters"], "must be an object");
        assert!(e["format"].as_str().unwrap().starts_with("must be one of"));
        assert_eq!(e["x"], "unknown field");
        let e = errors(json!({"metrics": ["revenue"], "orientation": "sideways",
                              "chart": {"kind": "donut", "colour": "red"}}));
        assert!(e["orientation"]
            .as_str()
            .unwrap()
            .starts_with("must be one of"));
        assert!(e["chart.kind"]
            .as_str()
            .unwrap()
            .starts_with("must be one of"));
        assert_eq!(e["chart.colour"], "unknown field");
        let i = validate(
            &json!({"metrics": ["revenue"], "format": "excel", "orientation": "landscape",
                                  "visualization_type": "chart", "chart": {"kind": "pie"}}),
        )
        .unwrap();
        assert_eq!(
            (i.format, i.orientation, i.chart_kind),
            (Format::Excel, Orientation::Landscape, Some(ChartKind::Pie))
        );
        assert_eq!(
            i.payload["format"], "excel",
            "start_report sets the row limit from it"
        );
        let e = errors(json!({"report_id": Uuid::from_u128(1), "metrics": ["revenue"]}));
        assert!(e["report_id"]
            .as_str()
            .unwrap()
            .contains("saved definition"));
        let e = errors(json!({"metrics": [1], "save": " "}));
        assert_eq!(e["metrics"], "must be an array of names");
        assert_eq!(e["save"], "must be a name");
        let e = errors(json!({"metrics": ["revenue"], "filters": {"status": "a\u{0}b"}}));
        assert!(e["filters"].as_str().unwrap().contains("NUL"));
    }

    #[test]
    fn a_summary_line() {
        let report: Value = serde_json::from_str(
            r#"{"columns": [{"name": "revenue", "type": "money"}, {"name": "order_count", "type": "integer"},
                            {"name": "return_rate", "type": "ratio"}, {"name": "units_sold", "type": "number"}],
                "rows": [], "totals": {"revenue": 1234567.50, "order_count": 3, "return_rate": 0.6667,
                                       "units_sold": 24.00}}"#,
        )
        .unwrap();
        assert_eq!(
            summary(&report),
            "Revenue: 1,234,567.50 · Order count: 3 · Return rate: 66.67% · Units sold: 24"
        );
    }
}
