//! `documents`: PDF pages for the functions that render documents (purchase
//! orders today; reports, recalls and invoices next), written with pdf-writer
//! in the standard fonts, so nothing is embedded and files stay small.
//!
//! - [`text`]: Helvetica's AFM widths, WinAnsi, wrap and fit;
//! - [`layout`]: A4 pages, portrait or landscape, tables that repeat their
//!   header as they flow, continuation headings and "Page n of N";
//! - [`chart`]: bar, line and pie charts with nice axes, as SVG or PDF paths;
//! - [`report`]: a whole report (title, key-value block, chart, table with
//!   totals) as a PDF;
//! - [`xlsx`] (feature `xlsx`): the same report as a typed, two-sheet XLSX
//!   with a native chart;
//! - [`tabular`] (feature `reports`): `public.report_data`'s answer as the
//!   cells people read, a chart, a PDF and an XLSX.
//!
//! A crate of its own: a function that renders no document does not depend on
//! it, so it neither compiles nor carries pdf-writer (see the README's sizes).
//! Money and labels come from `shared::format`, as in every email and SMS.

pub mod chart;
pub mod layout;
pub mod report;
#[cfg(feature = "reports")]
pub mod tabular;
pub mod text;
#[cfg(feature = "xlsx")]
pub mod xlsx;

pub use chart::{Chart, ChartKind, Series};
pub use layout::{Column, Orientation, Pages};
pub use report::{ReportColumn, ReportDoc};
pub use text::Font;
