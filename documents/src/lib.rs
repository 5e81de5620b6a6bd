//! `documents`: PDF pages for the functions that render documents (purchase
//! orders today; reports, recalls and invoices next), written with pdf-writer
//! in the standard fonts, so nothing is embedded and files stay small.
//!
//! - [`text`]: Helvetica's AFM widths, WinAnsi, wrap and fit;
//! - [`layout`]: A4 pages, tables that repeat their header as they flow,
//!   continuation headings and "Page n of N".
//!
//! A crate of its own: a function that renders no document does not depend on
//! it, so it neither compiles nor carries pdf-writer (see the README's sizes).
//! Money and labels come from `shared::format`, as in every email and SMS.

pub mod layout;
pub mod text;

pub use layout::{Column, Pages};
pub use text::Font;
