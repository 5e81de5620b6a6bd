//! From `public.report_data`'s answer to what people read: cells as text
//! (money, percentages, names for ids, labels for codes), the chart (its
//! series and SVG), the PDF and the XLSX. Nothing here reads the database.

use crate::chart::{Chart, ChartKind, Series};
use crate::report::{ReportColumn, ReportDoc};
use crate::xlsx::{Cell, Kind, SheetReport};
use crate::Orientation;
use shared::format::{label, money};
use shared::serde_json::{json, Value};
use shared::{ApiError, Decimal, Result};
use std::str::FromStr;

/// The report as `report_data` returns it.
pub struct Report<'a> {
    pub data: &'a Value,
}

/// What a document says about where it comes from.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub title: String,
    pub tenant_name: String,
    pub generated_at: String,
    pub filters: Value,
}

const TIME: [&str; 4] = ["day", "week", "month", "quarter"];

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

fn number(v: &Value) -> f64 {
    decimal(v)
        .and_then(|d| d.to_string().parse().ok())
        .unwrap_or(0.0)
}

/// `1234567` → `1,234,567`; decimals kept as they are.
fn grouped(d: Decimal) -> String {
    let text = d.normalize().to_string();
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |r| ("-", r));
    let (whole, frac) = digits
        .split_once('.')
        .map_or((digits, None), |(w, f)| (w, Some(f)));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

impl<'a> Report<'a> {
    pub fn columns(&self) -> Vec<(&'a str, &'a str)> {
        self.data["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or(""),
                    c["type"].as_str().unwrap_or("text"),
                )
            })
            .collect()
    }

    pub fn rows(&self) -> &'a [Value] {
        self.data["rows"].as_array().map_or(&[], Vec::as_slice)
    }

    /// How many leading columns are dimensions.
    pub fn dimensions(&self) -> usize {
        self.columns()
            .iter()
            .take_while(|(_, t)| matches!(*t, "date" | "id" | "text"))
            .count()
    }

    /// A cell as people read it.
    pub fn display(&self, column: &str, kind: &str, v: &Value) -> String {
        match (kind, v) {
            (_, Value::Null) => match kind {
                "id" | "text" | "date" => "(none)".into(),
                _ => "0".into(),
            },
            ("id", Value::String(id)) => self.data["labels"][column][id]
                .as_str()
                .map_or_else(|| id.clone(), str::to_owned),
            ("text", Value::String(s)) => label(s),
            ("date", Value::String(s)) => match column {
                "month" => s.get(..7).unwrap_or(s).to_owned(),
                "quarter" => {
                    let m: u32 = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
                    format!("{} Q{}", s.get(..4).unwrap_or(s), m.div_ceil(3))
                }
                _ => s.clone(),
            },
            ("money", v) => decimal(v).map(money).unwrap_or_default(),
            ("ratio", v) => decimal(v)
                .map(|d| format!("{}%", (d * Decimal::from(100)).round_dp(2).normalize()))
                .unwrap_or_default(),
            (_, v) => decimal(v)
                .map(grouped)
                .unwrap_or_else(|| v.as_str().unwrap_or("").to_owned()),
        }
    }

    /// A title from the metrics and the grouping: "Revenue and Order count by month".
    pub fn default_title(&self) -> String {
        let columns = self.columns();
        let dims = self.dimensions();
        let metrics: Vec<String> = columns[dims..].iter().map(|(n, _)| label(n)).collect();
        let by: Vec<&str> = columns[..dims].iter().map(|(n, _)| *n).collect();
        let mut title = match metrics.len() {
            0 => "Report".to_owned(),
            1 => metrics[0].clone(),
            n => format!("{} and {}", metrics[..n - 1].join(", "), metrics[n - 1]),
        };
        if !by.is_empty() {
            title = format!("{title} by {}", by.join(" and ").replace('_', " "));
        }
        title
    }

    /// The chart: the dimensions' values (joined) as categories, each
    /// metric a series. A report without a dimension has no categories.
    pub fn chart(&self, kind: Option<ChartKind>, title: &str) -> Result<Chart> {
        let columns = self.columns();
        let dims = self.dimensions();
        if dims == 0 {
            let mut fields = shared::serde_json::Map::new();
            fields.insert(
                "visualization_type".into(),
                json!("a chart needs a group_by (a time grain or a dimension)"),
            );
            return Err(ApiError::Validation(fields));
        }
        let kind = kind.unwrap_or(if TIME.contains(&columns[0].0) {
            ChartKind::Line
        } else {
            ChartKind::Bar
        });
        let rows = self.rows();
        let categories = rows
            .iter()
            .map(|r| {
                columns[..dims]
                    .iter()
                    .enumerate()
                    .map(|(i, (n, t))| self.display(n, t, &r[i]))
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
            .collect();
        let series = columns[dims..]
            .iter()
            .enumerate()
            .map(|(j, (n, _))| Series {
                name: label(n),
                values: rows.iter().map(|r| number(&r[dims + j])).collect(),
            })
            .collect();
        Ok(Chart {
            kind,
            title: title.to_owned(),
            categories,
            series,
        })
    }

    /// `{kind, categories, series: [{name, values}], svg}` for the JSON answer.
    pub fn chart_json(chart: &Chart) -> Value {
        json!({
            "kind": chart.kind.name(),
            "categories": chart.categories,
            "series": chart.series.iter().map(|s| json!({"name": s.name, "values": s.values})).collect::<Vec<_>>(),
            "svg": chart.svg(640.0, 360.0),
        })
    }

    fn facts(&self, meta: &Meta) -> Vec<(String, String)> {
        let mut facts = Vec::new();
        let f = &meta.filters;
        let (name, dates) = self.period(f);
        let dates = dates.unwrap_or_else(|| "all time".into());
        facts.push((
            "Period".into(),
            match name {
                Some(n) => format!("{n} ({dates})"),
                None => dates,
            },
        ));
        if let Some(m) = f.as_object() {
            for (k, v) in m {
                if k == "date_from" || k == "date_to" || k == "period" {
                    continue;
                }
                if k == "where" {
                    facts.push(("Where".into(), self.describe_where(v)));
                    continue;
                }
                let kind = if ["product", "client", "warehouse"].contains(&k.as_str()) {
                    "id"
                } else {
                    "text"
                };
                let values: Vec<String> = match v {
                    Value::Array(a) => a.iter().map(|x| self.display(k, kind, x)).collect(),
                    x => vec![self.display(k, kind, x)],
                };
                facts.push((label(k), values.join(", ")));
            }
        }
        let dims = self.dimensions();
        if dims > 0 {
            let by: Vec<String> = self.columns()[..dims]
                .iter()
                .map(|(n, _)| label(n))
                .collect();
            facts.push(("Grouped by".into(), by.join(", ")));
        }
        facts.push((
            "Time zone".into(),
            self.data["time_zone"].as_str().unwrap_or("UTC").to_owned(),
        ));
        facts.push(("Rows".into(), grouped(Decimal::from(self.rows().len()))));
        facts
    }

    /// The period the report covers, as people read it: the label of the
    /// named period `report_data` applied, if any, and the dates ("2026-01-01
    /// to 2026-03-31", "from …", "up to …"; None: all time), from the applied
    /// period or else from the date filters.
    pub fn period(&self, filters: &Value) -> (Option<String>, Option<String>) {
        let applied = &self.data["period"];
        let name = applied["name"].as_str();
        let dates = if name.is_some() { applied } else { filters };
        let range = match (dates["date_from"].as_str(), dates["date_to"].as_str()) {
            (Some(a), Some(b)) => Some(format!("{a} to {b}")),
            (Some(a), None) => Some(format!("from {a}")),
            (None, Some(b)) => Some(format!("up to {b}")),
            _ => None,
        };
        (name.map(label), range)
    }

    /// A `where` filter in words: "Status is Confirmed and (Payment terms
    /// is one of Net 30, Prepaid or Product is not Widget)".
    pub fn describe_where(&self, filter: &Value) -> String {
        let (joiner, conds) = match (filter.get("all"), filter.get("any")) {
            (Some(Value::Array(c)), None) => (" and ", c),
            (None, Some(Value::Array(c))) => (" or ", c),
            _ => return String::new(),
        };
        conds
            .iter()
            .map(|c| {
                if c.get("all").is_some() || c.get("any").is_some() {
                    return format!("({})", self.describe_where(c));
                }
                let field = c["field"].as_str().unwrap_or("");
                let kind = match field {
                    "product" | "client" | "warehouse" => "id",
                    _ => "text",
                };
                let values = match &c["value"] {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| self.display(field, kind, x))
                        .collect::<Vec<_>>()
                        .join(", "),
                    x => self.display(field, kind, x),
                };
                let op = match c["op"].as_str() {
                    Some("eq") => "is",
                    Some("neq") => "is not",
                    Some("in") => "is one of",
                    _ => "is none of",
                };
                format!("{} {op} {values}", label(field))
            })
            .collect::<Vec<_>>()
            .join(joiner)
    }

    /// Said in every file whose rows were capped.
    pub fn cap_note(&self) -> Option<String> {
        (self.data["truncated"] == true).then(|| {
            format!(
                "Only the first {} rows are shown: the report has more. Narrow the filters to see the rest. The totals cover every row.",
                grouped(Decimal::from(self.data["row_limit"].as_u64().unwrap_or(0)))
            )
        })
    }

    pub fn pdf(&self, meta: &Meta, chart: Option<Chart>, orientation: Orientation) -> Vec<u8> {
        let columns = self.columns();
        let dims = self.dimensions();
        let rows = self
            .rows()
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (n, t))| self.display(n, t, &r[i]))
                    .collect()
            })
            .collect();
        let totals = (columns.len() > dims).then(|| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (n, t))| match i {
                    0 if dims > 0 => "Total".to_owned(),
                    i if i < dims => String::new(),
                    _ => self.display(n, t, &self.data["totals"][n]),
                })
                .collect()
        });
        let doc = ReportDoc {
            title: meta.title.clone(),
            subtitle: format!("{} · generated {}", meta.tenant_name, meta.generated_at),
            facts: self.facts(meta),
            note: self.cap_note(),
            chart,
            columns: columns
                .iter()
                .map(|(n, t)| ReportColumn {
                    title: label(n),
                    figure: !matches!(*t, "date" | "id" | "text"),
                })
                .collect(),
            rows,
            totals: if dims > 0 { totals } else { None },
            orientation,
            footer: format!("{} · {}", meta.tenant_name, meta.title),
            author: meta.tenant_name.clone(),
        };
        crate::report::render(&doc)
    }

    fn cell(&self, column: &str, kind: &str, v: &Value) -> Cell {
        match (kind, v) {
            (_, Value::Null) => Cell::Empty,
            ("date", Value::String(s)) => {
                let part = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<u16>().ok());
                let small = |x: Option<u16>| x.and_then(|x| u8::try_from(x).ok());
                match (part(0, 4), small(part(5, 7)), small(part(8, 10))) {
                    (Some(year), Some(month), Some(day)) => Cell::Date { year, month, day },
                    _ => Cell::Text(s.clone()),
                }
            }
            ("id" | "text", _) => Cell::Text(self.display(column, kind, v)),
            (_, v) => Cell::Number(number(v)),
        }
    }

    pub fn xlsx(&self, meta: &Meta, chart: Option<&Chart>) -> Result<Vec<u8>> {
        let columns = self.columns();
        let dims = self.dimensions();
        let kinds: Vec<Kind> = columns
            .iter()
            .map(|(_, t)| match *t {
                "date" => Kind::Date,
                "money" => Kind::Money,
                "integer" => Kind::Integer,
                "ratio" => Kind::Ratio,
                "number" => Kind::Number,
                _ => Kind::Text,
            })
            .collect();
        let mut facts = vec![(
            "Generated".to_owned(),
            format!("{} · {}", meta.tenant_name, meta.generated_at),
        )];
        facts.extend(self.facts(meta));
        let report = SheetReport {
            title: meta.title.clone(),
            facts,
            note: self.cap_note(),
            columns: columns
                .iter()
                .zip(&kinds)
                .map(|((n, _), k)| (label(n), *k))
                .collect(),
            rows: self
                .rows()
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, (n, t))| self.cell(n, t, &r[i]))
                        .collect()
                })
                .collect(),
            totals: columns
                .iter()
                .enumerate()
                .skip(dims)
                .map(|(i, (n, t))| (i, self.cell(n, t, &self.data["totals"][n])))
                .collect(),
            chart: chart.map(|c| {
                (
                    c.kind,
                    c.title.clone(),
                    0,
                    (dims..columns.len()).collect::<Vec<_>>(),
                )
            }),
        };
        crate::xlsx::render(&report).map_err(|e| ApiError::Internal(format!("xlsx: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    fn data() -> Value {
        serde_json::from_str(
            r#"{"columns": [{"name": "month", "type": "date"}, {"name": "product", "type": "id"},
                            {"name": "revenue", "type": "money"}, {"name": "return_rate", "type": "ratio"},
                            {"name": "units_sold", "type": "number"}],
                "rows": [["2026-01-01", "p1", 1234.5, 0.25, 1200.000],
                         ["2026-04-01", "p2", -20, 0, 3]],
                "totals": {"revenue": 1214.50, "return_rate": 0.1667, "units_sold": 1203},
                "labels": {"product": {"p1": "Widget"}},
                "time_zone": "Europe/Paris", "row_limit": 10000, "truncated": true}"#,
        )
        .unwrap()
    }

    #[test]
    fn cells_read_as_people_read_them() {
        let d = data();
        let r = Report { data: &d };
        assert_eq!(r.dimensions(), 2);
        assert_eq!(r.display("product", "id", &json!("p1")), "Widget");
        assert_eq!(r.display("product", "id", &json!("p2")), "p2");
        assert_eq!(r.display("month", "date", &json!("2026-04-01")), "2026-04");
        assert_eq!(
            r.display("quarter", "date", &json!("2026-04-01")),
            "2026 Q2"
        );
        assert_eq!(r.display("status", "text", &json!("net_30")), "Net 30");
        assert_eq!(r.display("revenue", "money", &d["rows"][0][2]), "1,234.50");
        assert_eq!(r.display("return_rate", "ratio", &json!(0.1667)), "16.67%");
        assert_eq!(r.display("units_sold", "number", &d["rows"][0][4]), "1,200");
        assert_eq!(r.display("client", "id", &Value::Null), "(none)");
        assert_eq!(
            r.default_title(),
            "Revenue, Return rate and Units sold by month and product"
        );
        assert!(r.cap_note().unwrap().contains("first 10,000 rows"));
        assert_eq!(
            r.describe_where(&json!({"all": [
                {"field": "status", "op": "eq", "value": "confirmed"},
                {"any": [{"field": "payment_terms", "op": "in", "value": ["net_30", "prepaid"]},
                         {"field": "product", "op": "neq", "value": "p1"}]}]})),
            "Status is Confirmed and (Payment terms is one of Net 30, Prepaid or Product is not Widget)"
        );
    }

    #[test]
    fn a_chart_has_a_category_per_row_and_a_series_per_metric() {
        let d = data();
        let r = Report { data: &d };
        let c = r.chart(None, "T").unwrap();
        assert_eq!(c.kind, ChartKind::Line, "time first: a line");
        assert_eq!(c.categories, vec!["2026-01 · Widget", "2026-04 · p2"]);
        assert_eq!(c.series.len(), 3);
        assert_eq!(c.series[0].values, vec![1234.5, -20.0]);
        let j = Report::chart_json(&c);
        assert!(j["svg"].as_str().unwrap().starts_with("<svg"));
        let flat =
            json!({"columns": [{"name": "revenue", "type": "money"}], "rows": [[1]], "totals": {}});
        let e = Report { data: &flat }.chart(None, "T").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn files_say_the_cap_and_carry_typed_cells() {
        let d = data();
        let r = Report { data: &d };
        let meta = Meta {
            title: "Revenue".into(),
            tenant_name: "Acme".into(),
            generated_at: "2026-11-27 09:00 Europe/Paris".into(),
            filters: json!({"date_from": "2026-01-01", "product": ["p1"]}),
        };
        let pdf = r.pdf(&meta, None, Orientation::Landscape);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(Total)") && text.contains("(1,214.50)"));
        assert!(text.contains("first 10,000 rows"));
        assert!(text.contains("(from 2026-01-01)") && text.contains("(Widget)"));
        let mut named = d.clone();
        named["period"] =
            json!({"name": "last_week", "date_from": "2026-11-16", "date_to": "2026-11-22"});
        let facts = Report { data: &named }.facts(&meta);
        assert_eq!(facts[0].1, "Last week (2026-11-16 to 2026-11-22)");
        let chart = r.chart(Some(ChartKind::Bar), "Revenue").unwrap();
        let xlsx = r.xlsx(&meta, Some(&chart)).unwrap();
        assert_eq!(&xlsx[..2], b"PK");
    }
}
