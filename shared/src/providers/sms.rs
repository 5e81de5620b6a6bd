//! SMS length: which encoding a text needs and how many segments it costs.

/// GSM 03.38 basic characters (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension characters (an escape plus one septet: two each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The encoding a text needs and its segment count: GSM-7 fits 160 septets in
/// one segment and 153 per segment when split; UCS-2 fits 70, then 67.
pub fn segments(text: &str) -> (Encoding, usize) {
    let mut septets: usize = 0;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            let units: usize = text.chars().map(char::len_utf16).sum();
            return (
                Encoding::Ucs2,
                if units <= 70 { 1 } else { units.div_ceil(67) },
            );
        }
    }
    (
        Encoding::Gsm7,
        if septets <= 160 {
            1
        } else {
            septets.div_ceil(153)
        },
    )
}

/// `text` shortened (with "…" replaced by "..." to stay in GSM-7) so that it
/// fits in one segment, if it does not already.
pub fn fit_one_segment(text: &str) -> String {
    if segments(text).1 == 1 {
        return text.to_owned();
    }
    let mut out: String = text.chars().collect();
    while segments(&format!("{out}...")).1 > 1 {
        out.pop();
    }
    format!("{}...", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_segments() {
        assert_eq!(segments(""), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (Encoding::Gsm7, 3));
        // extension characters cost two septets
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
    }

    #[test]
    fn ucs2_segments() {
        assert_eq!(segments(&"ł".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"ł".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(
            segments(&"😀".repeat(35)),
            (Encoding::Ucs2, 1),
            "surrogate pairs count twice"
        );
        assert_eq!(
            segments(&format!("{}ł", "a".repeat(100))),
            (Encoding::Ucs2, 2)
        );
    }

    #[test]
    fn fitting_one_segment() {
        let long = format!(
            "Order WO-2026-000001 from {} confirmed",
            "Very Long Business Name ".repeat(10)
        );
        let fit = fit_one_segment(&long);
        assert_eq!(segments(&fit).1, 1);
        assert!(fit.ends_with("...") && fit.starts_with("Order WO-2026-000001"));
        assert_eq!(fit_one_segment("short"), "short");
    }
}
