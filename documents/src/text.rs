//! Text in the standard PDF fonts: Helvetica's advance widths (from the
//! Adobe AFM files), WinAnsi (Windows-1252) encoding, and wrapping and fitting
//! text into a width, all bounded by the space on the page rather than by the
//! length of the input.

use pdf_writer::Name;

/// Helvetica advance widths (1/1000 em) for ASCII 32..=126.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
];

/// Helvetica-Bold advance widths for ASCII 32..=126.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, //
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Font {
    Regular,
    Bold,
}

impl Font {
    pub fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    fn table(self) -> &'static [u16; 95] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }
}

/// A character's WinAnsi (Windows-1252) byte; `?` when it has none.
pub fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '\t' | '\n' | '\r' => b' ',
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ => b'?',
    }
}

pub fn encode(s: &str) -> Vec<u8> {
    s.chars().map(win_ansi).collect()
}

/// The advance width of one WinAnsi byte. Accented Latin letters take their
/// base letter's width (the AFM values match for Helvetica's À–ÿ); the few
/// other symbols take an average glyph's width.
pub fn byte_width(b: u8, font: Font) -> u16 {
    const BASE: &[u8; 64] = b"AAAAAA?CEEEEIIIIDNOOOOO?OUUUUY?saaaaaa?ceeeeiiiidnooooo?ouuuuy?y";
    let ascii = match b {
        32..=126 => b,
        0xc0..=0xff => BASE[(b - 0xc0) as usize],
        0xa0 => b' ',
        _ => b'?',
    };
    match (b, ascii) {
        (0xc6 | 0xe6 | 0x8c | 0x9c, _) => 1000, // Æ æ Œ œ
        (0x80 | 0x85 | 0x89 | 0x99, _) => 1000, // € … ‰ ™
        (_, b'?') if b != b'?' => 556,
        _ => font.table()[(ascii - 32) as usize],
    }
}

/// The width of one character in points at `size`.
pub fn char_width(c: char, font: Font, size: f32) -> f32 {
    byte_width(win_ansi(c), font) as f32 * size / 1000.0
}

/// The width of `s` in points at `size`.
pub fn width(s: &str, font: Font, size: f32) -> f32 {
    let units: u32 = s
        .chars()
        .map(|c| byte_width(win_ansi(c), font) as u32)
        .sum();
    units as f32 * size / 1000.0
}

/// The narrowest glyph of both fonts (the quote, 191/1000 em).
pub const NARROWEST_EM: f32 = 0.191;

/// At most how many characters `lines` lines of `max` points can show: the
/// input is cut to this before any layout, so the work done is bounded by the
/// space on the page, never by how long a stored text is.
pub fn visible_chars(lines: usize, size: f32, max: f32) -> usize {
    lines * ((max / (NARROWEST_EM * size)).ceil() as usize + 1)
}

/// `s` cut to its first `n` characters, without copying.
pub fn head(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Greedy word wrap into at most `max_lines` lines no wider than `max`; a
/// word longer than a line is broken by characters. Explicit newlines start
/// new lines. Returns the lines, and whether text was left over. Linear in
/// the (already cut) input: each character's width is looked up once.
pub fn wrap(s: &str, font: Font, size: f32, max: f32, max_lines: usize) -> (Vec<String>, bool) {
    let cut = head(s, visible_chars(max_lines, size, max));
    let mut lines: Vec<String> = Vec::new();
    let space = char_width(' ', font, size);
    let full = |lines: &Vec<String>| lines.len() >= max_lines;
    let paragraphs: Vec<&str> = cut.split('\n').collect();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        let (mut line, mut line_w) = (String::new(), 0.0f32);
        for word in paragraph.split_whitespace() {
            let word_w: f32 = word.chars().map(|c| char_width(c, font, size)).sum();
            let gap = if line.is_empty() { 0.0 } else { space };
            if line_w + gap + word_w <= max {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                line_w += gap + word_w;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
                if full(&lines) {
                    return (lines, true);
                }
            }
            for c in word.chars() {
                let w = char_width(c, font, size);
                if line_w + w > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_w = 0.0;
                    if full(&lines) {
                        return (lines, true);
                    }
                }
                line.push(c);
                line_w += w;
            }
        }
        lines.push(line);
        if full(&lines) {
            let rest = paragraphs[i + 1..].iter().any(|p| !p.trim().is_empty());
            return (lines, rest || cut.len() < s.len());
        }
    }
    (lines, cut.len() < s.len())
}

/// `s` cut to fit `max`, ending in an ellipsis when cut. Linear, and it never
/// looks past what one line could show.
pub fn fit(s: &str, font: Font, size: f32, max: f32) -> String {
    let cut = head(s, visible_chars(1, size, max));
    if cut.len() == s.len() && width(s, font, size) <= max {
        return s.to_owned();
    }
    let room = max - char_width('…', font, size);
    let (mut out, mut w) = (String::new(), 0.0f32);
    for c in cut.chars() {
        w += char_width(c, font, size);
        if w > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_match_helvetica() {
        // "Hello": H 722 e 556 l 222 l 222 o 556 = 2278 units; bold: 722 556 278 278 611.
        assert!((width("Hello", Font::Regular, 10.0) - 22.78).abs() < 1e-3);
        assert!((width("Hello", Font::Bold, 10.0) - 24.45).abs() < 1e-3);
        // é takes e's width.
        assert_eq!(
            width("é", Font::Regular, 1.0),
            width("e", Font::Regular, 1.0)
        );
    }

    #[test]
    fn text_is_wrapped_and_cut_to_fit() {
        let (lines, more) = wrap(
            "the quick brown fox jumps over the lazy dog",
            Font::Regular,
            10.0,
            80.0,
            10,
        );
        assert!(lines.len() > 1 && !more);
        assert!(lines.iter().all(|l| width(l, Font::Regular, 10.0) <= 80.0));
        assert_eq!(
            lines.join(" "),
            "the quick brown fox jumps over the lazy dog"
        );
        let (long, more) = wrap(&"x".repeat(100), Font::Regular, 10.0, 50.0, 10);
        assert!(long.len() > 1 && long.iter().all(|l| width(l, Font::Regular, 10.0) <= 50.0));
        assert!(!more && long.concat() == "x".repeat(100));
        assert_eq!(
            wrap("a\nb", Font::Regular, 10.0, 100.0, 10),
            (vec!["a".to_owned(), "b".to_owned()], false)
        );
        let cut = fit("ABCDEFGHIJKLMNOPQRSTUVWXYZ", Font::Regular, 10.0, 40.0);
        assert!(cut.ends_with('…') && width(&cut, Font::Regular, 10.0) <= 40.0);
    }

    #[test]
    fn huge_text_is_cut_before_it_is_laid_out() {
        // 1 MB of text: only what four lines can show is ever looked at.
        let name = "word ".repeat(200_000);
        let (lines, more) = wrap(&name, Font::Regular, 9.0, 200.0, 4);
        assert_eq!(lines.len(), 4);
        assert!(more);
        assert!(lines.iter().all(|l| width(l, Font::Regular, 9.0) <= 200.0));
        let one_word = "x".repeat(1_000_000);
        let (lines, more) = wrap(&one_word, Font::Regular, 9.0, 200.0, 4);
        assert!(lines.len() == 4 && more);
        let cut = fit(&one_word, Font::Regular, 9.0, 200.0);
        assert!(cut.ends_with('…') && width(&cut, Font::Regular, 9.0) <= 200.0);
        assert!(cut.chars().count() < 200);
    }

    #[test]
    fn win_ansi_covers_latin_1_and_typographic_marks() {
        assert_eq!(
            encode("Café €5 – “ok”"),
            b"Caf\xe9 \x805 \x96 \x93ok\x94".to_vec()
        );
        assert_eq!(encode("日本"), b"??".to_vec());
    }
}
