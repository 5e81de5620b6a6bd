//! Pages of an A4 document: text placed left or right aligned, rules, a table
//! whose header repeats on every page it flows onto, a short heading on
//! continuation pages, and "Page n of N" footers written once the page count
//! is known. The caller decides what goes where; this module keeps the pages.

use std::borrow::Cow;

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::text::{encode, fit, head, width, Font};

pub const PAGE_W: f32 = 595.28;
pub const PAGE_H: f32 = 841.89;
pub const LEFT: f32 = 50.0;
pub const RIGHT: f32 = PAGE_W - 50.0;
pub const TOP: f32 = PAGE_H - 50.0;
/// Content stops above this; the footer sits below it.
pub const BOTTOM: f32 = 72.0;
/// The body text size, and a row's height.
pub const BODY: f32 = 9.0;
pub const ROW: f32 = 12.0;

/// Portrait (A4, 595 × 842 pt) or landscape (842 × 595).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    #[default]
    Portrait,
    Landscape,
}

/// A table column: its title, and the x its text starts at (or ends at, when
/// right-aligned, as figures are).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub title: Cow<'static, str>,
    pub x: f32,
    pub right: bool,
}

/// The pages being written, and where the next line goes.
pub struct Pages {
    pages: Vec<Content>,
    /// The page being written.
    at: usize,
    /// The baseline of the next line on the current page.
    pub y: f32,
    /// Continuation pages start with these, left (bold) and right.
    heading: (String, String),
    columns: Vec<Column>,
    /// The page's width and height.
    size: (f32, f32),
}

impl Pages {
    /// One empty page; `heading` is what continuation pages start with.
    pub fn new(heading_left: String, heading_right: String) -> Self {
        Self::with_orientation(heading_left, heading_right, Orientation::Portrait)
    }

    pub fn with_orientation(
        heading_left: String,
        heading_right: String,
        orientation: Orientation,
    ) -> Self {
        let size = match orientation {
            Orientation::Portrait => (PAGE_W, PAGE_H),
            Orientation::Landscape => (PAGE_H, PAGE_W),
        };
        Pages {
            pages: vec![Content::new()],
            at: 0,
            y: size.1 - 50.0,
            heading: (heading_left, heading_right),
            columns: Vec::new(),
            size,
        }
    }

    /// The right margin's x (`RIGHT` in portrait).
    pub fn right(&self) -> f32 {
        self.size.0 - 50.0
    }

    /// The top margin's y (`TOP` in portrait).
    pub fn top(&self) -> f32 {
        self.size.1 - 50.0
    }

    /// The current page, to draw on directly (charts).
    pub fn content(&mut self) -> &mut Content {
        self.page()
    }

    fn page(&mut self) -> &mut Content {
        &mut self.pages[self.at]
    }

    /// `s` with its baseline at (`x`, `y`).
    pub fn text(&mut self, x: f32, y: f32, font: Font, size: f32, s: &str) {
        let bytes = encode(s);
        let c = self.page();
        c.begin_text();
        c.set_font(font.name(), size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    /// `s` ending at `right`.
    pub fn text_right(&mut self, right: f32, y: f32, font: Font, size: f32, s: &str) {
        self.text(right - width(s, font, size), y, font, size, s);
    }

    /// A horizontal rule across the text width.
    pub fn rule(&mut self, y: f32, weight: f32) {
        let right = self.right();
        let c = self.page();
        c.set_line_width(weight);
        c.move_to(LEFT, y);
        c.line_to(right, y);
        c.stroke();
    }

    /// Sets the table's columns and draws its header at `y`.
    pub fn start_table(&mut self, columns: &[Column]) {
        self.columns = columns.to_vec();
        self.table_header();
    }

    fn table_header(&mut self) {
        let y = self.y;
        for col in self.columns.clone() {
            match col.right {
                true => self.text_right(col.x, y, Font::Bold, BODY, &col.title),
                false => self.text(col.x, y, Font::Bold, BODY, &col.title),
            }
        }
        self.rule(y - 4.0, 0.8);
        self.y = y - 4.0 - ROW;
    }

    /// Starts a continuation page: the short heading, and the table header
    /// when rows are still flowing.
    fn next_page(&mut self, with_table: bool) {
        self.pages.push(Content::new());
        self.at = self.pages.len() - 1;
        self.y = self.top();
        let (left, right) = self.heading.clone();
        self.text(LEFT, self.y, Font::Bold, 11.0, &left);
        self.text_right(self.right(), self.y, Font::Regular, BODY, &right);
        self.y -= 28.0;
        if with_table {
            self.table_header();
        }
    }

    /// Makes room for `height` points, starting a page if needed.
    /// Starts a new page now (the table header follows when `with_table`).
    pub fn break_page(&mut self, with_table: bool) {
        self.next_page(with_table);
    }

    pub fn room(&mut self, height: f32, with_table: bool) {
        if self.y - height < BOTTOM {
            self.next_page(with_table);
        }
    }

    /// Writes every page's footer, `label` left and "Page n of N" right, then
    /// the file, with its title and author.
    pub fn finish(mut self, label: &str, title: &str, author: &str) -> Vec<u8> {
        let count = self.pages.len();
        for n in 0..count {
            self.at = n;
            let footer = format!("Page {} of {count}", n + 1);
            self.text(
                LEFT,
                40.0,
                Font::Regular,
                8.0,
                &fit(head(label, 400), Font::Regular, 8.0, 380.0),
            );
            self.text_right(self.right(), 40.0, Font::Regular, 8.0, &footer);
        }
        write(self.pages, self.size, title, author)
    }
}

fn write(pages: Vec<Content>, size: (f32, f32), title: &str, author: &str) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first = 6;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first + 2 * i as i32))
        .collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    for (base, content) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(base)
            .base_font(Name(content.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for (page_id, content) in page_ids.iter().zip(pages) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, size.0, size.1));
        page.parent(tree);
        page.contents(content_id);
        page.resources()
            .fonts()
            .pair(Font::Regular.name(), regular)
            .pair(Font::Bold.name(), bold);
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.document_info(info)
        .title(TextStr(title))
        .author(TextStr(author))
        .producer(TextStr("commerce-edge"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_count(pdf: &[u8]) -> usize {
        let text = String::from_utf8_lossy(pdf);
        text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count()
    }

    #[test]
    fn rows_flow_onto_numbered_pages_with_the_header_repeated() {
        let mut p = Pages::new("Acme".into(), "Report (continued)".into());
        p.start_table(&[
            Column {
                title: "Name".into(),
                x: LEFT,
                right: false,
            },
            Column {
                title: "Amount".into(),
                x: RIGHT,
                right: true,
            },
        ]);
        for i in 0..150 {
            p.room(ROW, true);
            let y = p.y;
            p.text(LEFT, y, Font::Regular, BODY, &format!("row {i}"));
            p.text_right(RIGHT, y, Font::Regular, BODY, "1.00");
            p.y -= ROW;
        }
        let pdf = p.finish("Acme · R-1", "Report R-1", "Acme");
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-"));
        let pages = page_count(&pdf);
        assert!((3..=4).contains(&pages), "{pages} pages");
        assert_eq!(text.matches("(Amount)").count(), pages, "a header per page");
        assert_eq!(
            text.matches("continued").count(),
            pages - 1,
            "continuation headings"
        );
        assert!(text.contains(&format!("(Page {pages} of {pages})")));
        assert!(text.contains("(row 149)"));
    }
}
