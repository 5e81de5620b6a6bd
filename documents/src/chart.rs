//! Charts: bar, line and pie, laid out once as marks (rectangles, lines,
//! wedges, text) in a box, then written either as SVG (for apps, so they need
//! no charting library) or as PDF paths (vector, not images).
//!
//! The value axis is "nice": its ends and steps are 1, 2 or 5 times a power
//! of ten, it always includes zero (a bar starts at zero, negative bars go
//! down from it), and an empty or all-zero series gets the axis 0 to 1.
//! Category labels that would overlap are thinned to every k-th one; long
//! labels are cut with an ellipsis. A pie shows each category's share of the
//! first series; a pie of negative or zero values draws nothing but says so.

use pdf_writer::Content;
use std::fmt::Write as _;

use crate::text::{encode, fit, width, Font};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Bar,
    Line,
    Pie,
}

impl ChartKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bar" => Some(ChartKind::Bar),
            "line" => Some(ChartKind::Line),
            "pie" => Some(ChartKind::Pie),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ChartKind::Bar => "bar",
            ChartKind::Line => "line",
            ChartKind::Pie => "pie",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// What a chart shows: one label per category, and series of one value per
/// category (a missing value is zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub kind: ChartKind,
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

/// A value axis: `min` to `max` in steps of `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

/// 1, 2, 5 or 10 times a power of ten, at least `x`.
fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    let m = x / p;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * p
}

impl Axis {
    /// The axis for values from `lo` to `hi`, zero included, with at most
    /// `max_ticks` intervals.
    pub fn nice(lo: f64, hi: f64, max_ticks: usize) -> Axis {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let (lo, hi) = if !lo.is_finite() || !hi.is_finite() || hi - lo <= f64::EPSILON {
            (0.0, 1.0)
        } else {
            (lo, hi)
        };
        let step = nice_step((hi - lo) / max_ticks.max(1) as f64);
        Axis {
            min: (lo / step).floor() * step,
            max: (hi / step).ceil() * step,
            step,
        }
    }

    pub fn ticks(&self) -> Vec<f64> {
        let n = ((self.max - self.min) / self.step).round() as i64;
        (0..=n)
            .map(|i| {
                let t = self.min + i as f64 * self.step;
                // -0 and float dust print as 0
                if t.abs() < self.step * 1e-9 {
                    0.0
                } else {
                    t
                }
            })
            .collect()
    }

    /// Where `v` sits, from 0 (min) to 1 (max).
    pub fn at(&self, v: f64) -> f64 {
        (v - self.min) / (self.max - self.min)
    }

    /// A tick's label: as many decimals as the step needs, thousands
    /// grouped, or k/M for big numbers.
    pub fn label(&self, v: f64) -> String {
        let a = self.max.abs().max(self.min.abs());
        let (v, step, suffix) = if a >= 1e6 {
            (v / 1e6, self.step / 1e6, "M")
        } else if a >= 1e4 {
            (v / 1e3, self.step / 1e3, "k")
        } else {
            (v, self.step, "")
        };
        let decimals = if step >= 1.0 {
            0
        } else {
            (-step.log10().floor()) as usize
        };
        let s = format!("{:.*}", decimals, v);
        format!("{}{suffix}", group(&s))
    }
}

/// "1234567.5" → "1,234,567.5"
fn group(s: &str) -> String {
    let (sign, s) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// The series colours, in order (distinguishable in print and for the
/// common colour-vision deficiencies).
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
];
const INK: (u8, u8, u8) = (0x33, 0x33, 0x33);
const GRID: (u8, u8, u8) = (0xdd, 0xdd, 0xdd);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// What a chart is drawn with, in a box whose origin is its top left and
/// whose y grows downwards.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        color: (u8, u8, u8),
    },
    Line {
        points: Vec<(f64, f64)>,
        color: (u8, u8, u8),
        width: f64,
    },
    /// A pie slice, angles in radians clockwise from 12 o'clock.
    Wedge {
        cx: f64,
        cy: f64,
        r: f64,
        from: f64,
        to: f64,
        color: (u8, u8, u8),
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        bold: bool,
    },
}

const TITLE: f64 = 11.0;
const SMALL: f64 = 7.5;

fn text(x: f64, y: f64, s: &str, size: f64, anchor: Anchor, bold: bool) -> Mark {
    Mark::Text {
        x,
        y,
        text: s.to_owned(),
        size,
        anchor,
        bold,
    }
}

fn text_width(s: &str, size: f64) -> f64 {
    width(s, Font::Regular, size as f32) as f64
}

impl Chart {
    fn value(&self, series: usize, category: usize) -> f64 {
        self.series[series]
            .values
            .get(category)
            .copied()
            .filter(|v| v.is_finite())
            .unwrap_or(0.0)
    }

    /// The value axis over every series.
    pub fn axis(&self) -> Axis {
        let all = (0..self.series.len())
            .flat_map(|s| (0..self.categories.len()).map(move |c| (s, c)))
            .map(|(s, c)| self.value(s, c));
        let (lo, hi) = all.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        Axis::nice(lo, hi, 5)
    }

    /// The legend's entries: the series, or for a pie the categories.
    fn legend(&self) -> Vec<String> {
        match self.kind {
            ChartKind::Pie => self.categories.clone(),
            _ if self.series.len() > 1 => self.series.iter().map(|s| s.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The chart as marks in a `w` × `h` box.
    pub fn marks(&self, w: f64, h: f64) -> Vec<Mark> {
        let mut out = vec![text(
            w / 2.0,
            TITLE,
            &self.title,
            TITLE,
            Anchor::Middle,
            true,
        )];
        let mut top = TITLE + 10.0;
        // The legend: a row of swatches under the title, wrapping.
        let legend = self.legend();
        if !legend.is_empty() {
            let (mut x, mut y) = (0.0, top);
            for (i, name) in legend.iter().enumerate().take(24) {
                let name = fit(name, Font::Regular, SMALL as f32, 120.0);
                let item = 12.0 + text_width(&name, SMALL) + 12.0;
                if x + item > w && x > 0.0 {
                    x = 0.0;
                    y += 12.0;
                }
                out.push(Mark::Rect {
                    x,
                    y,
                    w: 8.0,
                    h: 8.0,
                    color: PALETTE[i % PALETTE.len()],
                });
                out.push(text(x + 12.0, y + 7.0, &name, SMALL, Anchor::Start, false));
                x += item;
            }
            top = y + 18.0;
        }
        let body_h = (h - top).max(40.0);
        match self.kind {
            ChartKind::Pie => self.pie(&mut out, w, top, body_h),
            _ => self.xy(&mut out, w, top, body_h),
        }
        out
    }

    fn pie(&self, out: &mut Vec<Mark>, w: f64, top: f64, h: f64) {
        let values: Vec<f64> = (0..self.categories.len())
            .map(|c| {
                if self.series.is_empty() {
                    0.0
                } else {
                    self.value(0, c)
                }
            })
            .collect();
        let total: f64 = values.iter().filter(|v| **v > 0.0).sum();
        let (cx, cy, r) = (w / 2.0, top + h / 2.0, (h.min(w) / 2.0 - 4.0).max(10.0));
        if total <= 0.0 {
            out.push(text(
                cx,
                cy,
                "No positive values to show",
                SMALL,
                Anchor::Middle,
                false,
            ));
            return;
        }
        let mut from = 0.0;
        for (i, v) in values.iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            let to = from + v / total * std::f64::consts::TAU;
            out.push(Mark::Wedge {
                cx,
                cy,
                r,
                from,
                to,
                color: PALETTE[i % PALETTE.len()],
            });
            let share = v / total;
            if share >= 0.04 {
                let mid = (from + to) / 2.0;
                let (lx, ly) = (cx + 0.65 * r * mid.sin(), cy - 0.65 * r * mid.cos());
                out.push(text(
                    lx,
                    ly + 3.0,
                    &format!("{:.0}%", share * 100.0),
                    SMALL,
                    Anchor::Middle,
                    true,
                ));
            }
            from = to;
        }
    }

    fn xy(&self, out: &mut Vec<Mark>, w: f64, top: f64, h: f64) {
        let axis = self.axis();
        let ticks = axis.ticks();
        let gutter = ticks
            .iter()
            .map(|t| text_width(&axis.label(*t), SMALL))
            .fold(0.0, f64::max)
            + 6.0;
        let (x0, x1) = (gutter, w - 4.0);
        let (y0, y1) = (top, top + h - 16.0); // plot top and bottom
        let y_of = |v: f64| y1 - axis.at(v) * (y1 - y0);
        for t in &ticks {
            let y = y_of(*t);
            out.push(Mark::Line {
                points: vec![(x0, y), (x1, y)],
                color: if *t == 0.0 { INK } else { GRID },
                width: if *t == 0.0 { 0.8 } else { 0.4 },
            });
            out.push(text(
                x0 - 4.0,
                y + SMALL / 3.0,
                &axis.label(*t),
                SMALL,
                Anchor::End,
                false,
            ));
        }
        out.push(Mark::Line {
            points: vec![(x0, y0), (x0, y1)],
            color: INK,
            width: 0.8,
        });
        let n = self.categories.len();
        if n == 0 || self.series.is_empty() {
            out.push(text(
                (x0 + x1) / 2.0,
                (y0 + y1) / 2.0,
                "No data",
                SMALL,
                Anchor::Middle,
                false,
            ));
            return;
        }
        let band = (x1 - x0) / n as f64;
        let centre = |c: usize| x0 + band * (c as f64 + 0.5);
        // Category labels, every k-th one if they would overlap.
        let widest = self
            .categories
            .iter()
            .map(|c| text_width(&fit(c, Font::Regular, SMALL as f32, 90.0), SMALL))
            .fold(0.0, f64::max);
        let every = ((widest + 6.0) / band).ceil().max(1.0) as usize;
        for (c, name) in self.categories.iter().enumerate() {
            if c % every == 0 {
                let shown = fit(name, Font::Regular, SMALL as f32, 90.0);
                out.push(text(
                    centre(c),
                    y1 + 10.0,
                    &shown,
                    SMALL,
                    Anchor::Middle,
                    false,
                ));
            }
        }
        let zero = y_of(0.0);
        match self.kind {
            ChartKind::Bar => {
                let k = self.series.len() as f64;
                let bar = band * 0.8 / k;
                for s in 0..self.series.len() {
                    for c in 0..n {
                        let y = y_of(self.value(s, c));
                        out.push(Mark::Rect {
                            x: x0 + band * (c as f64 + 0.1) + bar * s as f64,
                            y: y.min(zero),
                            w: bar,
                            h: (y - zero).abs(),
                            color: PALETTE[s % PALETTE.len()],
                        });
                    }
                }
            }
            _ => {
                for s in 0..self.series.len() {
                    out.push(Mark::Line {
                        points: (0..n)
                            .map(|c| (centre(c), y_of(self.value(s, c))))
                            .collect(),
                        color: PALETTE[s % PALETTE.len()],
                        width: 1.5,
                    });
                }
            }
        }
    }

    /// The chart as a standalone SVG document.
    pub fn svg(&self, w: f64, h: f64) -> String {
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"Helvetica, Arial, sans-serif\" role=\"img\"><title>{}</title>",
            escape(&self.title)
        );
        let rgb = |(r, g, b): (u8, u8, u8)| format!("#{r:02x}{g:02x}{b:02x}");
        for m in self.marks(w, h) {
            let _ = match m {
                Mark::Rect { x, y, w, h, color } => write!(
                    s,
                    "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" fill=\"{}\"/>",
                    rgb(color)
                ),
                Mark::Line {
                    points,
                    color,
                    width,
                } => write!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"/>",
                    points
                        .iter()
                        .map(|(x, y)| format!("{x:.2},{y:.2}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    rgb(color)
                ),
                Mark::Wedge {
                    cx,
                    cy,
                    r,
                    from,
                    to,
                    color,
                } => {
                    if to - from >= std::f64::consts::TAU - 1e-9 {
                        write!(
                            s,
                            "<circle cx=\"{cx:.2}\" cy=\"{cy:.2}\" r=\"{r:.2}\" fill=\"{}\"/>",
                            rgb(color)
                        )
                    } else {
                        let p = |a: f64| (cx + r * a.sin(), cy - r * a.cos());
                        let ((ax, ay), (bx, by)) = (p(from), p(to));
                        let large = u8::from(to - from > std::f64::consts::PI);
                        write!(
                            s,
                            "<path d=\"M{cx:.2},{cy:.2} L{ax:.2},{ay:.2} A{r:.2},{r:.2} 0 {large} 1 {bx:.2},{by:.2} Z\" fill=\"{}\"/>",
                            rgb(color)
                        )
                    }
                }
                Mark::Text {
                    x,
                    y,
                    text,
                    size,
                    anchor,
                    bold,
                } => write!(
                    s,
                    "<text x=\"{x:.2}\" y=\"{y:.2}\" font-size=\"{size}\" text-anchor=\"{}\"{} fill=\"#333333\">{}</text>",
                    match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    },
                    if bold { " font-weight=\"bold\"" } else { "" },
                    escape(&text)
                ),
            };
        }
        s.push_str("</svg>");
        s
    }

    /// Draws the chart as PDF paths into `c`, in the box whose top left is
    /// (`left`, `top`) in PDF coordinates (y upwards).
    pub fn draw_pdf(&self, c: &mut Content, left: f32, top: f32, w: f32, h: f32) {
        let (left, top) = (left as f64, top as f64);
        let px = |x: f64| (left + x) as f32;
        let py = |y: f64| (top - y) as f32;
        let fill = |c: &mut Content, (r, g, b): (u8, u8, u8)| {
            c.set_fill_rgb(r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
        };
        for m in self.marks(w as f64, h as f64) {
            match m {
                Mark::Rect { x, y, w, h, color } => {
                    fill(c, color);
                    c.rect(px(x), py(y + h), w as f32, h as f32);
                    c.fill_nonzero();
                }
                Mark::Line {
                    points,
                    color: (r, g, b),
                    width,
                } => {
                    c.set_stroke_rgb(r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
                    c.set_line_width(width as f32);
                    for (i, (x, y)) in points.iter().enumerate() {
                        match i {
                            0 => c.move_to(px(*x), py(*y)),
                            _ => c.line_to(px(*x), py(*y)),
                        };
                    }
                    c.stroke();
                }
                Mark::Wedge {
                    cx,
                    cy,
                    r,
                    from,
                    to,
                    color,
                } => {
                    fill(c, color);
                    let full = to - from >= std::f64::consts::TAU - 1e-9;
                    let p = |a: f64| (cx + r * a.sin(), cy - r * a.cos());
                    if !full {
                        c.move_to(px(cx), py(cy));
                        let (ax, ay) = p(from);
                        c.line_to(px(ax), py(ay));
                    } else {
                        let (ax, ay) = p(from);
                        c.move_to(px(ax), py(ay));
                    }
                    // Bézier arcs of at most a quarter turn each.
                    let parts =
                        ((to - from) / std::f64::consts::FRAC_PI_2).ceil().max(1.0) as usize;
                    let step = (to - from) / parts as f64;
                    let k = 4.0 / 3.0 * (step / 4.0).tan();
                    for i in 0..parts {
                        let (a, b) = (from + step * i as f64, from + step * (i + 1) as f64);
                        let ((ax, ay), (bx, by)) = (p(a), p(b));
                        // tangent directions (clockwise from 12 o'clock)
                        let (tax, tay) = (a.cos(), a.sin());
                        let (tbx, tby) = (b.cos(), b.sin());
                        c.cubic_to(
                            px(ax + k * r * tax),
                            py(ay + k * r * tay),
                            px(bx - k * r * tbx),
                            py(by - k * r * tby),
                            px(bx),
                            py(by),
                        );
                    }
                    c.close_path();
                    c.fill_nonzero();
                }
                Mark::Text {
                    x,
                    y,
                    text,
                    size,
                    anchor,
                    bold,
                } => {
                    let font = if bold { Font::Bold } else { Font::Regular };
                    let tw = width(&text, font, size as f32) as f64;
                    let x = match anchor {
                        Anchor::Start => x,
                        Anchor::Middle => x - tw / 2.0,
                        Anchor::End => x - tw,
                    };
                    fill(c, INK);
                    let bytes = encode(&text);
                    c.begin_text();
                    c.set_font(font.name(), size as f32);
                    c.next_line(px(x), py(y));
                    c.show(pdf_writer::Str(&bytes));
                    c.end_text();
                }
            }
        }
        c.set_fill_rgb(0.0, 0.0, 0.0);
        c.set_stroke_rgb(0.0, 0.0, 0.0);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(kind: ChartKind, values: Vec<f64>) -> Chart {
        Chart {
            kind,
            title: "Revenue by month".into(),
            categories: (1..=values.len()).map(|m| format!("2026-{m:02}")).collect(),
            series: vec![Series {
                name: "revenue".into(),
                values,
            }],
        }
    }

    #[test]
    fn nice_axes() {
        let a = Axis::nice(0.0, 873.0, 5);
        assert_eq!((a.min, a.max, a.step), (0.0, 1000.0, 200.0));
        assert_eq!(a.ticks(), vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        // negative values: zero stays on the axis, both ends are steps
        let a = Axis::nice(-130.0, 420.0, 5);
        assert_eq!((a.min, a.max, a.step), (-200.0, 600.0, 200.0));
        assert!(a.ticks().contains(&0.0));
        // all negative: the axis ends at zero
        let a = Axis::nice(-7.0, -3.0, 5);
        assert_eq!((a.min, a.max), (-8.0, 0.0));
        // empty or flat: 0 to 1
        let a = Axis::nice(0.0, 0.0, 5);
        assert_eq!((a.min, a.max, a.step), (0.0, 1.0, 0.2));
        assert_eq!(a.label(0.4), "0.4");
        // ratios
        let a = Axis::nice(0.0, 0.6667, 5);
        assert_eq!((a.max, a.step), (0.8, 0.2));
        // big money: grouped, in thousands or millions
        let a = Axis::nice(0.0, 1_234_567.0, 5);
        assert_eq!(a.step, 500_000.0);
        assert_eq!(a.label(1_500_000.0), "1.5M");
        let a = Axis::nice(0.0, 7_000.0, 5);
        assert_eq!(a.label(8_000.0), "8,000");
        assert_eq!(Axis::nice(0.0, 45_000.0, 5).label(40_000.0), "40k");
        assert_eq!(Axis::nice(-2e6, 0.0, 4).label(-1.5e6), "-1.5M");
    }

    #[test]
    fn bars_start_at_zero_and_negative_bars_go_down() {
        let c = chart(ChartKind::Bar, vec![100.0, -50.0, 0.0]);
        let bars: Vec<_> = c
            .marks(300.0, 200.0)
            .into_iter()
            .filter_map(|m| match m {
                Mark::Rect { y, h, .. } if h >= 0.0 => Some((y, h)),
                _ => None,
            })
            .collect();
        assert_eq!(bars.len(), 3);
        let zero = bars[0].0 + bars[0].1; // bottom of the positive bar
        assert!(
            (bars[1].0 - zero).abs() < 1e-9,
            "the negative bar hangs from zero"
        );
        assert!(
            (bars[0].1 / bars[1].1 - 2.0).abs() < 1e-9,
            "heights scale with values"
        );
        assert_eq!(bars[2].1, 0.0);
    }

    #[test]
    fn an_empty_series_draws_axes_and_says_so() {
        for kind in [ChartKind::Bar, ChartKind::Line, ChartKind::Pie] {
            let c = chart(kind, vec![]);
            let svg = c.svg(300.0, 200.0);
            assert!(
                svg.contains("No data") || svg.contains("No positive values"),
                "{svg}"
            );
            let mut content = Content::new();
            c.draw_pdf(&mut content, 50.0, 700.0, 300.0, 200.0);
        }
    }

    #[test]
    fn crowded_category_labels_are_thinned() {
        let c = chart(ChartKind::Line, (0..60).map(f64::from).collect());
        let labels = c
            .marks(300.0, 200.0)
            .into_iter()
            .filter(|m| matches!(m, Mark::Text { text, .. } if text.starts_with("2026-")))
            .count();
        assert!((5..60).contains(&labels), "{labels} labels");
    }

    #[test]
    fn a_pie_is_shares_of_the_first_series_with_a_legend() {
        let c = chart(ChartKind::Pie, vec![1.0, 1.0, 2.0]);
        let marks = c.marks(300.0, 200.0);
        let wedges: Vec<f64> = marks
            .iter()
            .filter_map(|m| match m {
                Mark::Wedge { from, to, .. } => Some(to - from),
                _ => None,
            })
            .collect();
        assert_eq!(wedges.len(), 3);
        assert!((wedges[2] - std::f64::consts::PI).abs() < 1e-9);
        let svg = c.svg(300.0, 200.0);
        for label in ["2026-01", "2026-03", "50%", "25%"] {
            assert!(svg.contains(&format!(">{label}<")), "{label}");
        }
    }

    #[test]
    fn svg_is_escaped_and_well_formed() {
        let mut c = chart(ChartKind::Bar, vec![1.0, 2.0]);
        c.title = "A & <B>".into();
        c.series.push(Series {
            name: "units \"sold\"".into(),
            values: vec![3.0],
        });
        let svg = c.svg(400.0, 240.0);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("A &amp; &lt;B&gt;"));
        assert!(
            svg.contains("units &quot;sold&quot;"),
            "a legend for two series"
        );
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    }
}
