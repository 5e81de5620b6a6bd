//! A report as an XLSX workbook, written with rust_xlsxwriter (feature
//! `xlsx`, so functions that export no spreadsheet do not carry it):
//!
//! - **Data**: a bold header row, frozen, with an autofilter; numbers as
//!   numbers, dates as dates, money with a two-decimal number format, ratios
//!   as percentages; column widths from the contents.
//! - **Summary**: the title, the key-value block, the totals (typed as in
//!   Data), the note on capped rows, and a native Excel chart over the Data
//!   sheet's ranges when the report has a chart.

use rust_xlsxwriter::{Chart as XChart, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};

use crate::chart::ChartKind;

/// What a column holds, which decides its cells' format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Date,
    Money,
    Integer,
    Number,
    Ratio,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date { year: u16, month: u8, day: u8 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SheetReport {
    pub title: String,
    pub facts: Vec<(String, String)>,
    pub note: Option<String>,
    pub columns: Vec<(String, Kind)>,
    pub rows: Vec<Vec<Cell>>,
    /// A label and value per totalled column: (column index, value).
    pub totals: Vec<(usize, Cell)>,
    /// A native chart: its kind, the category column and the value columns.
    pub chart: Option<(ChartKind, String, usize, Vec<usize>)>,
}

const DATA: &str = "Data";
const SUMMARY: &str = "Summary";

fn format_for(kind: Kind) -> Format {
    match kind {
        Kind::Text => Format::new(),
        Kind::Date => Format::new().set_num_format("yyyy-mm-dd"),
        Kind::Money => Format::new().set_num_format("#,##0.00"),
        Kind::Integer => Format::new().set_num_format("#,##0"),
        Kind::Number => Format::new().set_num_format("#,##0.####"),
        Kind::Ratio => Format::new().set_num_format("0.00%"),
    }
}

fn write_cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    format: &Format,
) -> Result<(), String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    match cell {
        Cell::Empty => {}
        Cell::Text(s) => {
            ws.write_string(row, col, s).map_err(e)?;
        }
        Cell::Number(n) => {
            ws.write_number_with_format(row, col, *n, format)
                .map_err(e)?;
        }
        Cell::Date { year, month, day } => {
            let d = ExcelDateTime::from_ymd(*year, *month, *day).map_err(e)?;
            ws.write_datetime_with_format(row, col, &d, format)
                .map_err(e)?;
        }
    }
    Ok(())
}

/// The workbook's bytes.
pub fn render(report: &SheetReport) -> Result<Vec<u8>, String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut book = Workbook::new();
    let formats: Vec<Format> = report.columns.iter().map(|(_, k)| format_for(*k)).collect();
    let header = Format::new().set_bold().set_align(FormatAlign::Center);
    let bold = Format::new().set_bold();
    let last_row = report.rows.len() as u32; // the header is row 0

    // Summary first, so it is the sheet a workbook opens on.
    let summary = book.add_worksheet();
    summary.set_name(SUMMARY).map_err(e)?;
    summary
        .write_string_with_format(
            0,
            0,
            &report.title,
            &Format::new().set_bold().set_font_size(14),
        )
        .map_err(e)?;
    let mut r = 2u32;
    for (k, v) in &report.facts {
        summary
            .write_string_with_format(r, 0, k, &bold)
            .map_err(e)?;
        summary.write_string(r, 1, v).map_err(e)?;
        r += 1;
    }
    if let Some(note) = &report.note {
        r += 1;
        summary
            .write_string_with_format(r, 0, note, &bold)
            .map_err(e)?;
        r += 1;
    }
    if !report.totals.is_empty() {
        r += 1;
        summary
            .write_string_with_format(r, 0, "Totals", &bold)
            .map_err(e)?;
        r += 1;
        for (col, value) in &report.totals {
            let (name, _) = &report.columns[*col];
            summary.write_string(r, 0, name).map_err(e)?;
            write_cell(summary, r, 1, value, &formats[*col])?;
            r += 1;
        }
    }
    summary.set_column_width(0, 24).map_err(e)?;
    summary.set_column_width(1, 40).map_err(e)?;
    if let Some((kind, title, category, values)) = &report.chart {
        if last_row > 0 && !values.is_empty() {
            let mut chart = match kind {
                ChartKind::Bar => XChart::new_column(),
                ChartKind::Line => XChart::new_line(),
                ChartKind::Pie => XChart::new_pie(),
            };
            chart.title().set_name(title);
            let values = match kind {
                ChartKind::Pie => &values[..1],
                _ => &values[..],
            };
            for v in values {
                chart
                    .add_series()
                    .set_name((DATA, 0, *v as u16))
                    .set_categories((DATA, 1, *category as u16, last_row, *category as u16))
                    .set_values((DATA, 1, *v as u16, last_row, *v as u16));
            }
            summary.insert_chart(r + 1, 0, &chart).map_err(e)?;
        }
    }

    let data = book.add_worksheet();
    data.set_name(DATA).map_err(e)?;
    for (c, (name, kind)) in report.columns.iter().enumerate() {
        data.write_string_with_format(0, c as u16, name, &header)
            .map_err(e)?;
        let widest = report
            .rows
            .iter()
            .take(1_000)
            .filter_map(|row| match row.get(c) {
                Some(Cell::Text(s)) => Some(s.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let w = match kind {
            Kind::Text => widest.clamp(10, 60) as f64 + 2.0,
            Kind::Date => 12.0,
            _ => 16.0,
        }
        .max(name.chars().count() as f64 + 4.0);
        data.set_column_width(c as u16, w).map_err(e)?;
    }
    for (i, row) in report.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate().take(report.columns.len()) {
            write_cell(data, i as u32 + 1, c as u16, cell, &formats[c])?;
        }
    }
    if !report.columns.is_empty() {
        data.set_freeze_panes(1, 0).map_err(e)?;
        data.autofilter(0, 0, last_row, report.columns.len() as u16 - 1)
            .map_err(e)?;
    }
    book.save_to_buffer().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cells' types (numbers, dates, formats) are read back with openpyxl
    // in tests/reports.test.ts; the parts are compressed here.
    #[test]
    fn a_workbook_has_two_sheets_styles_and_a_chart_and_a_bad_date_is_an_error() {
        let report = SheetReport {
            title: "Revenue by month".into(),
            facts: vec![("Time zone".into(), "Europe/Paris".into())],
            note: Some("Rows are capped at 50,000".into()),
            columns: vec![
                ("Month".into(), Kind::Date),
                ("Revenue".into(), Kind::Money),
                ("Return rate".into(), Kind::Ratio),
            ],
            rows: vec![
                vec![
                    Cell::Date {
                        year: 2026,
                        month: 1,
                        day: 1,
                    },
                    Cell::Number(100.5),
                    Cell::Number(0.25),
                ],
                vec![
                    Cell::Date {
                        year: 2026,
                        month: 2,
                        day: 1,
                    },
                    Cell::Number(-20.0),
                    Cell::Empty,
                ],
            ],
            totals: vec![(1, Cell::Number(80.5))],
            chart: Some((ChartKind::Bar, "Revenue".into(), 0, vec![1])),
        };
        let bytes = render(&report).unwrap();
        assert_eq!(&bytes[..2], b"PK", "a zip");
        let text = String::from_utf8_lossy(&bytes);
        for part in [
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
            "xl/charts/chart1.xml",
            "xl/styles.xml",
        ] {
            assert!(text.contains(part), "{part}");
        }
        // a bad date is an error, not a panic
        let mut bad = report.clone();
        bad.rows[0][0] = Cell::Date {
            year: 2026,
            month: 13,
            day: 1,
        };
        assert!(render(&bad).is_err());
    }
}
