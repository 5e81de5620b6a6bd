//! A campaign's content, made once when it is sent: the body (Markdown or
//! plain text) to HTML and text templates with the footer every message
//! carries, checked against the merge fields, and an SMS's segment count.

use pulldown_cmark::{html, Event, Options, Parser};
use shared::campaign::{
    sample_merge_values, Prepared, Rendered, MAX_SMS_SEGMENTS, MERGE_FIELDS, SMS_STOP_LINE,
};
use shared::providers::sms::{segments, Encoding};
use shared::serde_json::{json, Value};
use shared::template::{Escape, Template};

/// How the body is written (`content.template`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Plain,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown to HTML. HTML written in the body is shown as text, not
/// inserted: a campaign's markup is the Markdown's.
pub fn markdown_html(body: &str) -> String {
    let parser =
        Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES).map(|e| {
            match e {
                Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
                other => other,
            }
        });
    let mut out = String::with_capacity(body.len() * 5 / 4);
    html::push_html(&mut out, parser);
    out
}

/// Plain text to HTML: paragraphs at blank lines, line breaks kept.
pub fn plain_html(body: &str) -> String {
    body.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>\n", escape(p).replace('\n', "<br>\n")))
        .collect()
}

/// The email's footer: the sender's name and the unsubscribe link.
const HTML_FOOTER: &str = "<hr style=\"border:none;border-top:1px solid #ddd;margin:24px 0 12px\">\
<p style=\"font-size:12px;color:#666\">{{business.name}} &middot; \
<a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>";
const TEXT_FOOTER: &str = "\n\n--\n{{business.name}}\nUnsubscribe: {{unsubscribe_url}}\n";

/// What the content check says about an SMS.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsFit {
    pub segments: usize,
    pub encoding: &'static str,
}

/// The rendered templates, or the problem keyed by the field it is in.
pub fn render_email(
    subject: &str,
    body: &str,
    format: Format,
) -> Result<Rendered, (&'static str, String)> {
    let html_body = match format {
        Format::Markdown => markdown_html(body),
        Format::Plain => plain_html(body),
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:Helvetica,Arial,sans-serif;line-height:1.5;max-width:600px;margin:0 auto;padding:16px\">\
         {html_body}{HTML_FOOTER}</body></html>"
    );
    let rendered = Rendered {
        subject: Some(subject.to_owned()),
        html: Some(html),
        text: format!("{}{TEXT_FOOTER}", body.trim_end()),
    };
    check(&rendered)?;
    Ok(rendered)
}

/// The SMS template: the sender's name first, the opt-out line last.
pub fn render_sms(body: &str) -> Result<(Rendered, SmsFit), (&'static str, String)> {
    let rendered = Rendered {
        subject: None,
        html: None,
        text: format!("{{{{business.name}}}}: {}\n{SMS_STOP_LINE}", body.trim()),
    };
    check(&rendered)?;
    let prepared = Prepared::new(&rendered, "sms", 0).map_err(|e| ("content.body", e))?;
    let (_, _, text) = prepared
        .render(&sample_merge_values())
        .map_err(|e| ("content.body", e))?;
    let (encoding, n) = segments(&text);
    if n > MAX_SMS_SEGMENTS {
        return Err((
            "content.body",
            format!(
                "takes {n} SMS segments with the sender's name and \"{SMS_STOP_LINE}\" (at most {MAX_SMS_SEGMENTS})"
            ),
        ));
    }
    Ok((
        rendered,
        SmsFit {
            segments: n,
            encoding: if encoding == Encoding::Gsm7 {
                "GSM-7"
            } else {
                "UCS-2"
            },
        },
    ))
}

/// Parses and renders against the sample values, so an unknown merge field
/// is refused now, with its name, not discovered per recipient. The text
/// part is checked before the HTML: it is the body as written, so a line
/// and column point into what the caller sent.
fn check(rendered: &Rendered) -> Result<(), (&'static str, String)> {
    let sample = sample_merge_values();
    let parts = [
        (
            "content.subject",
            "subject",
            rendered.subject.as_deref(),
            Escape::None,
        ),
        (
            "content.body",
            "body",
            Some(rendered.text.as_str()),
            Escape::None,
        ),
        (
            "content.body",
            "body",
            rendered.html.as_deref(),
            Escape::Html,
        ),
    ];
    for (field, part, source, escape) in parts {
        let Some(source) = source else { continue };
        let outcome = Template::parse_part(part, source).and_then(|t| t.render(&sample, escape));
        if let Err(e) = outcome {
            let mut why = e.to_string();
            if why.contains("unknown variable") || why.contains("missing") {
                why.push_str(&format!("; the merge fields are {MERGE_FIELDS}"));
            }
            return Err((field, why));
        }
    }
    Ok(())
}

/// The content as stored on the campaign: what was sent in, and what is sent.
pub fn stored(content: &Value, rendered: &Rendered) -> Value {
    let mut c = content.clone();
    c["rendered"] =
        json!({"subject": rendered.subject, "html": rendered.html, "text": rendered.text});
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html_and_html_stays_text() {
        let h = markdown_html("# Hi {{client.name}}\n\n**New** <b>x</b> [site](https://a.test)");
        assert!(h.contains("<h1>Hi {{client.name}}</h1>"), "{h}");
        assert!(
            h.contains("<strong>New</strong> &lt;b&gt;x&lt;/b&gt;"),
            "{h}"
        );
        assert!(h.contains("<a href=\"https://a.test\">site</a>"), "{h}");
        assert_eq!(
            plain_html("a <b>\nc\n\n\nd"),
            "<p>a &lt;b&gt;<br>\nc</p>\n<p>d</p>\n"
        );
    }

    #[test]
    fn every_email_has_the_footer_and_merge_fields_work() {
        let r = render_email(
            "Hi {{client.name}}",
            "Dear {{client.name}} of {{client.city}}",
            Format::Markdown,
        )
        .unwrap();
        let p = Prepared::new(&r, "email", 0).unwrap();
        let merge = json!({"client": {"name": "Ann & Co", "city": "Lyon"}, "business": {"name": "Acme"},
                           "unsubscribe_url": "https://x.test/u?token=t"});
        let (subject, html, text) = p.render(&merge).unwrap();
        assert_eq!(subject.unwrap(), "Hi Ann & Co");
        let html = html.unwrap();
        assert!(html.contains("Dear Ann &amp; Co of Lyon"), "{html}");
        assert!(
            html.contains("Acme &middot; <a href=\"https://x.test/u?token=t\">Unsubscribe</a>"),
            "{html}"
        );
        assert!(
            text.starts_with(
                "Dear Ann & Co of Lyon\n\n--\nAcme\nUnsubscribe: https://x.test/u?token=t"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_merge_field_is_refused_by_name() {
        let (field, why) =
            render_email("Hi", "Dear {{client.nickname}}", Format::Markdown).unwrap_err();
        assert_eq!(field, "content.body");
        assert!(
            why.contains("client.nickname") && why.contains("client.name"),
            "{why}"
        );
        let (field, why) = render_email("Hi {{first_name}}", "x", Format::Plain).unwrap_err();
        assert_eq!(field, "content.subject");
        assert!(why.contains("first_name"), "{why}");
        assert!(render_sms("{{#if}}").is_err());
    }

    #[test]
    fn sms_segments_are_counted_with_the_sender_and_the_stop_line() {
        let (r, fit) = render_sms("Sale today").unwrap();
        assert_eq!(
            r.text,
            "{{business.name}}: Sale today\nReply STOP to opt out"
        );
        assert_eq!(
            fit,
            SmsFit {
                segments: 1,
                encoding: "GSM-7"
            }
        );
        let (_, fit) = render_sms(&"x".repeat(200)).unwrap();
        assert_eq!(fit.segments, 2);
        let (_, fit) = render_sms("Soldes d’hiver ❄").unwrap();
        assert_eq!(fit.encoding, "UCS-2");
        let (field, why) = render_sms(&"x".repeat(600)).unwrap_err();
        assert_eq!(field, "content.body");
        assert!(why.contains("at most 4"), "{why}");
    }
}
