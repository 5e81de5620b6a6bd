//! `recall-response`: a consignee answers a recall notice from the link in
//! it, without logging in.
//!
//! The link is `/functions/v1/recall-response?token=<signed link>`, signed by
//! the dispatcher when it sends the notice (`action_links` in the outbox
//! payload) for purpose `recall_response` and subject `<consignee id>`, with
//! the keys in `LINK_SIGNING_SECRET`; it works for a year.
//!
//! - `GET` shows the notice (product, lot codes, reason, hazard, what to do)
//!   and a form: acknowledge, and the quantities on hand, returned and
//!   destroyed. It changes nothing, so mail scanners that open links answer
//!   nothing.
//! - `POST` (the form, `application/x-www-form-urlencoded`) records the
//!   response through `public.record_recall_response` with the service role.
//!   One response per link: the first is kept, and posting again shows it.
//!   A form with a problem is shown again with the problem (`400`), and
//!   nothing is recorded.
//!
//! A link that is damaged, altered, expired or made for something else gets
//! a page saying so (`401`; the database is not touched). Every page is
//! plain HTML: no script, nothing loaded from elsewhere, not framed.

use shared::format::{escape_html as escape, quantity as qty};
use shared::serde_json::{json, Map, Value};
use shared::signed_link::{self, LinkError};
use shared::{ApiError, Auth, Ctx, Endpoint, Request, Response, Result, Uuid};

/// What the link may be used for.
pub const PURPOSE: &str = "recall_response";
/// Where the keys are.
pub use shared::campaign::LINK_SECRETS_VAR as SECRETS_VAR;

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Page,
    Respond(Map<String, Value>),
}

/// The page for a link that cannot be used.
pub fn refused(e: LinkError) -> Response {
    Response::html_page(
        401,
        "Link not valid",
        &format!(
            "<h1>This link cannot be used</h1><p>{}</p>\
             <p>Please use the link in the recall notice you received, or contact the sender.</p>",
            escape(&e.message())
        ),
    )
}

fn s(v: &Value) -> String {
    v.as_str().map(escape).unwrap_or_default()
}

/// The notice as the page shows it.
pub fn notice_html(notice: &Value) -> String {
    let lots: String = notice["lots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "<li>{}, lot <strong>{}</strong>{}</li>",
                s(&l["product"]),
                s(&l["lot_number"]),
                l["expires_on"]
                    .as_str()
                    .map(|e| format!(", expiry {}", escape(e)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let class = notice["classification"]
        .as_str()
        .map(|c| format!(" (Class {})", escape(c)))
        .unwrap_or_default();
    let hazard = notice["hazard"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(|h| format!("<p><strong>Hazard:</strong> {}</p>", escape(h)))
        .unwrap_or_default();
    let instructions = notice["instructions"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(escape)
        .unwrap_or_else(|| {
            "Stop distributing and using this product immediately and hold it.".into()
        });
    format!(
        "<h1 style=\"color:#b00\">URGENT: Product recall{class}</h1>\
         <p>{business} is recalling:</p><ul>{lots}</ul>\
         <p><strong>Reason:</strong> {reason}</p>{hazard}\
         <p><strong>What to do:</strong> {instructions}</p>\
         <p>{client}, you received {shipped} units (orders {orders}).</p>",
        business = s(&notice["business_name"]),
        reason = s(&notice["recall_reason"]),
        client = s(&notice["client_name"]),
        shipped = qty(&notice["quantity_shipped"]),
        orders = s(&notice["order_numbers"]),
    )
}

/// The GET page: the notice and the form (or the response already given).
pub fn form_page(
    status: u16,
    token: &str,
    notice: &Value,
    problems: &Map<String, Value>,
    sent: &Map<String, Value>,
) -> Response {
    if !notice["responded_at"].is_null() {
        return recorded_page(notice, true);
    }
    let problem = |k: &str| {
        problems
            .get(k)
            .and_then(Value::as_str)
            .map(|p| format!(" <strong style=\"color:#b00\">{}</strong>", escape(p)))
            .unwrap_or_default()
    };
    let field = |k: &str, label: &str| {
        format!(
            "<p><label>{label}<br><input name=\"{k}\" inputmode=\"decimal\" required value=\"{v}\"></label>{p}</p>",
            v = sent.get(k).and_then(Value::as_str).map(escape).unwrap_or_default(),
            p = problem(k),
        )
    };
    let others: String = problems
        .iter()
        .filter(|(k, _)| {
            !["acknowledged", "on_hand", "returned", "destroyed"].contains(&k.as_str())
        })
        .map(|(k, v)| format!("<p style=\"color:#b00\">{}: {}</p>", escape(k), s(v)))
        .collect();
    Response::html_page(
        status,
        "Product recall",
        &format!(
            "{notice}<h2>Your response</h2>{others}\
             <form method=\"post\" action=\"?token={token}\">\
             <p><label><input type=\"checkbox\" name=\"acknowledged\" value=\"yes\" required> \
             I have received this notice and will follow its instructions.</label>{ack}</p>\
             {on_hand}{returned}{destroyed}\
             <p><label>Anything we should know (optional)<br>\
             <textarea name=\"note\" maxlength=\"2000\" rows=\"3\" cols=\"40\"></textarea></label></p>\
             <button type=\"submit\">Send response</button></form>",
            notice = notice_html(notice),
            token = escape(token),
            ack = problem("acknowledged"),
            on_hand = field("on_hand", "Units you still hold (quarantined)"),
            returned = field("returned", "Units you returned to us"),
            destroyed = field("destroyed", "Units you destroyed"),
        ),
    )
}

/// After a response: what was recorded.
pub fn recorded_page(notice: &Value, already: bool) -> Response {
    let said = if already {
        "Your response to this recall was already recorded; thank you."
    } else {
        "Thank you: your response is recorded."
    };
    Response::html_page(
        200,
        "Response recorded",
        &format!(
            "<h1>Response recorded</h1><p>{said}</p>\
             <p>On hand: {} · returned: {} · destroyed: {}</p>{}",
            qty(&notice["reported_on_hand"]),
            qty(&notice["reported_returned"]),
            qty(&notice["reported_destroyed"]),
            notice_html(notice),
        ),
    )
}

/// The form as `record_recall_response` takes it: the quantities as JSON
/// numbers when they read as numbers (else as sent, for SQL to name), the
/// box as `acknowledged: true`. Also returns the fields as sent, to refill
/// the form.
pub fn response_from_form(body: &[u8]) -> (Map<String, Value>, Map<String, Value>) {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut response = Map::new();
    let mut sent = Map::new();
    for (k, v) in form {
        let v = v.replace('\0', "");
        match k.as_str() {
            "acknowledged" => {
                response.insert(k, json!(v == "yes" || v == "on" || v == "true"));
            }
            "on_hand" | "returned" | "destroyed" => {
                let t = v.trim();
                let value = shared::serde_json::from_str::<shared::serde_json::Number>(t)
                    .map(Value::Number)
                    .unwrap_or_else(|_| json!(t));
                sent.insert(k.clone(), json!(v));
                response.insert(k, value);
            }
            "note" => {
                response.insert(k, json!(v.chars().take(2000).collect::<String>()));
            }
            _ => {}
        }
    }
    (response, sent)
}

pub struct RecallResponse;

impl Endpoint for RecallResponse {
    const NAME: &'static str = "recall-response";
    const METHODS: &'static [&'static str] = &["GET", "POST"];
    /// The signed link is checked in `run`, so a bad one gets a page.
    const AUTH: Auth = Auth::Public;
    const BODY_LIMIT: usize = 8 * 1024;
    type Input = Asked;

    fn input(req: &Request, _now: i64) -> Result<Asked> {
        if req.method.eq_ignore_ascii_case("GET") {
            return Ok(Asked::Page);
        }
        Ok(Asked::Respond(response_from_form(&req.body).0))
    }

    async fn run(asked: Asked, ctx: &Ctx<'_>) -> Result<Response> {
        let keys: Vec<&[u8]> = ctx
            .config
            .secrets(SECRETS_VAR)
            .into_iter()
            .map(str::as_bytes)
            .collect();
        if keys.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "links are not configured ({SECRETS_VAR})"
            )));
        }
        let token = ctx.req.query_param("token").unwrap_or_default();
        let link = match signed_link::verify(&keys, PURPOSE, &token, ctx.clock.now_unix_secs()) {
            Ok(link) => link,
            Err(e) => return Ok(refused(e)),
        };
        let Ok(consignee) = Uuid::try_parse(&link.subject) else {
            return Ok(refused(LinkError::Invalid));
        };
        let key = ctx.require_service_key()?;
        let rest = &ctx.config.rest;
        match asked {
            Asked::Page => {
                let notice = rest
                    .rpc(
                        "recall_response_page",
                        &json!({"consignee_id": consignee}),
                        key,
                    )
                    .await?;
                if notice.is_null() {
                    return Ok(Response::html_page(
                        404,
                        "Notice not found",
                        "<h1>This notice no longer exists</h1><p>Please contact the sender.</p>",
                    ));
                }
                Ok(form_page(200, &token, &notice, &Map::new(), &Map::new()))
            }
            Asked::Respond(response) => {
                let recorded = rest
                    .rpc(
                        "record_recall_response",
                        &json!({"consignee_id": consignee, "response": response}),
                        key,
                    )
                    .await;
                match recorded {
                    Ok(notice) => Ok(recorded_page(
                        &notice,
                        notice["already"] == Value::Bool(true),
                    )),
                    Err(ApiError::Validation(problems)) => {
                        let notice = rest
                            .rpc(
                                "recall_response_page",
                                &json!({"consignee_id": consignee}),
                                key,
                            )
                            .await?;
                        let (_, sent) = response_from_form(&ctx.req.body);
                        Ok(form_page(400, &token, &notice, &problems, &sent))
                    }
                    Err(ApiError::NotFound { .. }) => Ok(Response::html_page(
                        404,
                        "Notice not found",
                        "<h1>This notice no longer exists</h1><p>Please contact the sender.</p>",
                    )),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(RecallResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_response() {
        let (r, sent) = response_from_form(
            b"acknowledged=yes&on_hand=2.5&returned=10&destroyed=x&note=hi%00there&other=1",
        );
        assert_eq!(
            Value::Object(r),
            json!({"acknowledged": true, "on_hand": 2.5, "returned": 10, "destroyed": "x",
                   "note": "hithere"})
        );
        assert_eq!(sent["destroyed"], "x");
        let (r, _) = response_from_form(b"on_hand=1");
        assert!(!r.contains_key("acknowledged"), "an unticked box is absent");
        let (r, _) = response_from_form(b"\xff\xfe");
        assert!(r.is_empty());
    }

    fn notice() -> Value {
        json!({"business_name": "Acme & Co", "client_name": "<Bakery>", "classification": "I",
               "lots": [{"product": "Granola", "lot_number": "L1", "expires_on": "2027-01-01"}],
               "recall_reason": "Peanut", "hazard": "", "instructions": null,
               "quantity_shipped": 20.00, "order_numbers": "WO-1", "responded_at": null,
               "reported_on_hand": null})
    }

    #[test]
    fn the_page_shows_the_notice_escaped_and_the_problems() {
        let mut problems = Map::new();
        problems.insert("on_hand".into(), json!("must be a number"));
        let mut sent = Map::new();
        sent.insert("on_hand".into(), json!("\"x"));
        let p = form_page(400, "t\"k", &notice(), &problems, &sent);
        assert_eq!(p.status, 400);
        let text = p.text();
        assert!(text.contains("Acme &amp; Co"), "{text}");
        assert!(text.contains("&lt;Bakery&gt;, you received 20 units"));
        assert!(text.contains("lot <strong>L1</strong>, expiry 2027-01-01"));
        assert!(text.contains("(Class I)"));
        assert!(text.contains("action=\"?token=t&quot;k\""));
        assert!(text.contains("must be a number"));
        assert!(text.contains("value=\"&quot;x\""));
        assert!(!text.contains("Hazard:"), "an empty hazard is left out");
        assert!(!text.contains("<script"));
        let mut done = notice();
        done["responded_at"] = json!("2026-11-27T10:00:00Z");
        done["reported_on_hand"] = json!(2.50);
        let p = form_page(200, "t", &done, &Map::new(), &Map::new());
        assert!(p.text().contains("already recorded"));
        assert!(p.text().contains("On hand: 2.5"));
    }

    #[test]
    fn a_bad_link_gets_a_page() {
        let p = refused(LinkError::Expired);
        assert_eq!(p.status, 401);
        assert!(p.text().contains("This link has expired."));
        assert!(p.header("content-type").unwrap().starts_with("text/html"));
    }
}
