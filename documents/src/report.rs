//! A report as a PDF: a title block, a key-value block, an optional vector
//! chart, and a table whose columns are sized to their contents, whose text
//! wraps (up to three lines a cell), whose figures are right-aligned, whose
//! header repeats on every page, with a totals row; portrait or landscape,
//! "Page n of N" on each page. The caller formats the cells (money, dates,
//! percentages); this module places them.

use std::borrow::Cow;

use crate::chart::Chart;
use crate::layout::{Orientation, BODY, LEFT, ROW};
use crate::text::{fit, width, wrap};
use crate::{Column, Font, Pages};

/// Lines a text cell may wrap onto.
const MAX_CELL_LINES: usize = 3;
/// Space between columns.
const GAP: f32 = 10.0;
/// The narrowest a text column is squeezed to.
const MIN_TEXT: f32 = 48.0;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportColumn {
    pub title: String,
    /// Figures are right-aligned and never wrap.
    pub figure: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportDoc {
    pub title: String,
    /// Under the title: who and when.
    pub subtitle: String,
    /// The key-value block (filters, grouping, time zone…).
    pub facts: Vec<(String, String)>,
    /// Said above the table, e.g. that rows were capped.
    pub note: Option<String>,
    pub chart: Option<Chart>,
    pub columns: Vec<ReportColumn>,
    pub rows: Vec<Vec<String>>,
    /// One per column; the first is usually "Total".
    pub totals: Option<Vec<String>>,
    pub orientation: Orientation,
    /// The footer's left part.
    pub footer: String,
    pub author: String,
}

/// Each column's width: figures as wide as their widest cell; text columns
/// share what is left, none narrower than [`MIN_TEXT`] unless its contents are.
pub fn column_widths(doc: &ReportDoc, available: f32) -> Vec<f32> {
    let natural: Vec<f32> = doc
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cells = doc
                .rows
                .iter()
                .take(2_000)
                .chain(doc.totals.iter())
                .filter_map(|r| r.get(i))
                .map(|s| width(s, Font::Regular, BODY))
                .fold(0.0, f32::max);
            let title = width(&c.title, Font::Bold, BODY);
            // a point more than the text, so that wrapping never breaks what fits
            (cells + 1.0).max(title.min(120.0)).max(12.0)
        })
        .collect();
    let gaps = GAP * doc.columns.len().saturating_sub(1) as f32;
    let figures: f32 = doc
        .columns
        .iter()
        .zip(&natural)
        .filter(|(c, _)| c.figure)
        .map(|(_, w)| w)
        .sum();
    let text: f32 = doc
        .columns
        .iter()
        .zip(&natural)
        .filter(|(c, _)| !c.figure)
        .map(|(_, w)| w)
        .sum();
    let room = (available - gaps - figures).max(0.0);
    if text <= room {
        return natural;
    }
    let scale = room / text.max(1.0);
    doc.columns
        .iter()
        .zip(&natural)
        .map(|(c, w)| match c.figure {
            true => *w,
            false => (w * scale).max(MIN_TEXT.min(*w)),
        })
        .collect()
}

pub fn render(doc: &ReportDoc) -> Vec<u8> {
    let mut p = Pages::with_orientation(
        fit(&doc.title, Font::Bold, 11.0, 300.0),
        "continued".into(),
        doc.orientation,
    );
    let right = p.right();
    // Title block.
    let y = p.y;
    p.text(
        LEFT,
        y - 6.0,
        Font::Bold,
        16.0,
        &fit(&doc.title, Font::Bold, 16.0, right - LEFT),
    );
    p.y -= 24.0;
    if !doc.subtitle.is_empty() {
        let y = p.y;
        p.text(
            LEFT,
            y,
            Font::Regular,
            BODY,
            &fit(&doc.subtitle, Font::Regular, BODY, right - LEFT),
        );
        p.y -= ROW;
    }
    p.y -= 6.0;
    // Key-value block.
    let key_w = doc
        .facts
        .iter()
        .map(|(k, _)| width(k, Font::Bold, BODY))
        .fold(0.0, f32::max)
        .min(140.0)
        + GAP;
    for (k, v) in &doc.facts {
        let (lines, _) = wrap(v, Font::Regular, BODY, right - LEFT - key_w, 4);
        p.room(ROW * lines.len().max(1) as f32, false);
        let y = p.y;
        p.text(
            LEFT,
            y,
            Font::Bold,
            BODY,
            &fit(k, Font::Bold, BODY, key_w - GAP),
        );
        for (i, line) in lines.iter().enumerate() {
            p.text(LEFT + key_w, y - ROW * i as f32, Font::Regular, BODY, line);
        }
        p.y -= ROW * lines.len().max(1) as f32;
    }
    if let Some(note) = &doc.note {
        let (lines, _) = wrap(note, Font::Bold, BODY, right - LEFT, 4);
        p.y -= 4.0;
        for line in lines {
            p.room(ROW, false);
            let y = p.y;
            p.text(LEFT, y, Font::Bold, BODY, &line);
            p.y -= ROW;
        }
    }
    p.y -= 8.0;
    // The chart, on this page if it fits, else at the top of the next.
    if let Some(chart) = &doc.chart {
        let h = match doc.orientation {
            Orientation::Portrait => 240.0,
            Orientation::Landscape => 220.0,
        };
        p.room(h + 10.0, false);
        let top = p.y;
        chart.draw_pdf(p.content(), LEFT, top, right - LEFT, h);
        p.y -= h + 18.0;
    }
    // The table.
    if doc.columns.is_empty() {
        return p.finish(&doc.footer, &doc.title, &doc.author);
    }
    let widths = column_widths(doc, right - LEFT);
    let mut x = LEFT;
    let mut columns = Vec::new();
    for (c, w) in doc.columns.iter().zip(&widths) {
        columns.push(Column {
            title: Cow::Owned(fit(&c.title, Font::Bold, BODY, *w)),
            x: if c.figure { x + w } else { x },
            right: c.figure,
        });
        x += w + GAP;
    }
    p.room(ROW * 3.0, false);
    p.start_table(&columns);
    let draw = |p: &mut Pages, cells: &[String], font: Font| {
        let wrapped: Vec<Vec<String>> = doc
            .columns
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let s = cells.get(i).map(String::as_str).unwrap_or("");
                match c.figure {
                    true => vec![s.to_owned()],
                    false => wrap(s, font, BODY, *w, MAX_CELL_LINES).0,
                }
            })
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        p.room(ROW * lines as f32, true);
        let y = p.y;
        for (col, cell) in columns.iter().zip(wrapped) {
            for (i, line) in cell.iter().enumerate() {
                let ly = y - ROW * i as f32;
                match col.right {
                    true => p.text_right(col.x, ly, font, BODY, line),
                    false => p.text(col.x, ly, font, BODY, line),
                }
            }
        }
        p.y -= ROW * lines as f32;
    };
    for row in &doc.rows {
        draw(&mut p, row, Font::Regular);
    }
    if let Some(totals) = &doc.totals {
        p.room(ROW + 4.0, true);
        let y = p.y + ROW - 3.0;
        p.rule(y, 0.8);
        p.y -= 2.0;
        draw(&mut p, totals, Font::Bold);
    }
    p.finish(&doc.footer, &doc.title, &doc.author)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{ChartKind, Series};

    fn doc(rows: usize, orientation: Orientation) -> ReportDoc {
        ReportDoc {
            title: "Revenue by product".into(),
            subtitle: "Acme Wholesale · generated 2026-11-27 09:00 (Europe/Paris)".into(),
            facts: vec![
                ("Period".into(), "2026-01-01 to 2026-06-30".into()),
                ("Grouped by".into(), "Product".into()),
            ],
            note: None,
            chart: Some(Chart {
                kind: ChartKind::Bar,
                title: "Revenue".into(),
                categories: vec!["Widget".into(), "Gadget".into()],
                series: vec![Series {
                    name: "Revenue".into(),
                    values: vec![1200.0, -300.0],
                }],
            }),
            columns: vec![
                ReportColumn {
                    title: "Product".into(),
                    figure: false,
                },
                ReportColumn {
                    title: "Revenue".into(),
                    figure: true,
                },
            ],
            rows: (0..rows)
                .map(|i| {
                    vec![
                        format!("Product {i} with a long descriptive name that has to wrap somewhere because it does not fit on one line of the table, not even in landscape"),
                        format!("{i},000.00"),
                    ]
                })
                .collect(),
            totals: Some(vec!["Total".into(), "9,999,999.00".into()]),
            orientation,
            footer: "Acme · Revenue by product".into(),
            author: "Acme".into(),
        }
    }

    fn pages(pdf: &[u8]) -> usize {
        let t = String::from_utf8_lossy(pdf);
        t.matches("/Type /Page\n").count() + t.matches("/Type /Page ").count()
    }

    #[test]
    fn portrait_and_landscape_pages_with_headers_totals_and_page_numbers() {
        let portrait = render(&doc(120, Orientation::Portrait));
        let landscape = render(&doc(120, Orientation::Landscape));
        let (tp, tl) = (
            String::from_utf8_lossy(&portrait).to_string(),
            String::from_utf8_lossy(&landscape).to_string(),
        );
        assert!(tp.contains("/MediaBox [0 0 595.28 841.89]"));
        assert!(tl.contains("/MediaBox [0 0 841.89 595.28]"));
        let (np, nl) = (pages(&portrait), pages(&landscape));
        assert!(np >= 3, "{np} portrait pages");
        // a landscape page is wider (less wrapping) but shorter
        assert!(nl >= 2, "{nl} landscape pages");
        for (t, n) in [(&tp, np), (&tl, nl)] {
            assert_eq!(
                t.matches("(Revenue)").count() - 1,
                n,
                "a header per page, and the chart title"
            );
            assert!(t.contains(&format!("(Page {n} of {n})")));
            assert!(t.contains("(9,999,999.00)"));
            assert!(t.contains("(Total)"));
        }
    }

    #[test]
    fn text_columns_share_the_width_and_figures_keep_theirs() {
        let d = doc(5, Orientation::Portrait);
        let w = column_widths(&d, 495.0);
        assert!((w[0] + w[1] + GAP - 495.0).abs() < 0.5, "{w:?}");
        assert!(w[1] >= width("9,999,999.00", Font::Regular, BODY));
        // a short table keeps its natural widths
        let mut d = d;
        d.rows = vec![vec!["A".into(), "1.00".into()]];
        d.totals = None;
        let w = column_widths(&d, 495.0);
        assert!(w[0] < 100.0, "{w:?}");
    }

    #[test]
    fn the_chart_is_vector_paths_not_an_image() {
        let pdf = render(&doc(1, Orientation::Portrait));
        let t = String::from_utf8_lossy(&pdf);
        assert!(!t.contains("/Image"));
        assert!(t.contains(" re\n"), "bars are rectangles");
        assert!(t.contains("(Widget)") && t.contains("(Gadget)"));
    }
}
