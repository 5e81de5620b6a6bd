//! `unsubscribe`: a client leaves a tenant's marketing on one channel, from
//! the link in a campaign message, without logging in.
//!
//! The link is `/functions/v1/unsubscribe?token=<signed link>`, made by
//! [`link_token`] for purpose `unsubscribe` and subject `<client id>:<channel>`
//! with the keys in `LINK_SIGNING_SECRET` (several, comma-separated, while
//! one is rotated). It stays valid for [`LINK_TTL_SECS`] (a year): a message
//! may be read long after it was sent.
//!
//! - `GET` shows a page with one button and changes nothing, so the link
//!   scanners of mail providers, which open every link, unsubscribe no one.
//! - `POST` unsubscribes: the page's button, and RFC 8058's one-click
//!   unsubscribe, which mail clients send as `List-Unsubscribe=One-Click`
//!   to the URL in the message's `List-Unsubscribe` header. It is idempotent;
//!   the page says whether the client was already unsubscribed.
//!
//! Consent is recorded by `public.record_unsubscribe` with the service role.

use shared::format::escape_html as escape;
use shared::serde::Deserialize;
use shared::serde_json::json;

use shared::{ApiError, Auth, Ctx, Endpoint, Principal, Request, Response, Result, Uuid};

/// The token for a client's link on `channel`, valid from `now` for [`LINK_TTL_SECS`].
pub use shared::campaign::unsubscribe_token as link_token;
/// Where the keys are.
pub use shared::campaign::LINK_SECRETS_VAR as SECRETS_VAR;
/// How long a link works.
pub use shared::campaign::LINK_TTL_SECS;
/// What the link may be used for.
pub use shared::campaign::UNSUBSCRIBE_PURPOSE as PURPOSE;
/// The channels a client can leave.
pub const CHANNELS: &[&str] = &["email", "sms"];

/// The client and channel a verified link names.
pub fn subject(subject: &str) -> Result<(Uuid, &str)> {
    let bad = || ApiError::Unauthorized("the link names no client".into());
    let (id, channel) = subject.split_once(':').ok_or_else(bad)?;
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    let channel = CHANNELS.iter().find(|c| **c == channel).ok_or_else(bad)?;
    Ok((id, channel))
}

/// What a POST said: RFC 8058's one-click body, or the page's button.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Via {
    Page,
    OneClick,
    Button,
}

impl Via {
    pub fn source(self) -> &'static str {
        match self {
            Via::OneClick => "one_click",
            _ => "unsubscribe_link",
        }
    }
}

/// What `record_unsubscribe` answers.
#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Recorded {
    pub status: String,
    pub business_name: String,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub already: bool,
}

fn noun(channel: &str) -> &'static str {
    if channel == "sms" {
        "text messages"
    } else {
        "emails"
    }
}

/// The GET page: one button, which posts back to the same link.
pub fn confirm_page(token: &str, channel: &str) -> Response {
    Response::html_page(
        200,
        "Unsubscribe",
        &format!(
            "<h1>Unsubscribe</h1><p>Stop marketing {noun} from this sender?</p>\
             <form method=\"post\" action=\"?token={token}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            noun = noun(channel),
            token = escape(token),
        ),
    )
}

/// The POST page.
pub fn done_page(recorded: &Recorded, channel: &str) -> Response {
    let business = escape(&recorded.business_name);
    let said = if recorded.already {
        format!(
            "You had already stopped marketing {} from {business}.",
            noun(channel)
        )
    } else {
        format!(
            "You will no longer receive marketing {} from {business}.",
            noun(channel)
        )
    };
    Response::html_page(
        200,
        "Unsubscribed",
        &format!(
            "<h1>Unsubscribed</h1><p>{said}</p><p>Messages about your orders still arrive.</p>"
        ),
    )
}

/// The function.
pub struct Unsubscribe;

impl Endpoint for Unsubscribe {
    const NAME: &'static str = "unsubscribe";
    const METHODS: &'static [&'static str] = &["GET", "POST"];
    const AUTH: Auth = Auth::SignedLink {
        purpose: PURPOSE,
        secrets_var: SECRETS_VAR,
    };
    /// A one-click body is 26 bytes; a form adds little.
    const BODY_LIMIT: usize = 1024;
    type Input = Via;

    fn input(req: &Request, _now: i64) -> Result<Via> {
        if req.method.eq_ignore_ascii_case("GET") {
            return Ok(Via::Page);
        }
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&req.body).unwrap_or_default();
        let one_click = form
            .iter()
            .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
        Ok(if one_click {
            Via::OneClick
        } else {
            Via::Button
        })
    }

    async fn run(via: Via, ctx: &Ctx<'_>) -> Result<Response> {
        let Principal::Link(link) = &ctx.principal else {
            return Err(ApiError::Internal("unsubscribe without a link".into()));
        };
        let (client_id, channel) = subject(&link.subject)?;
        if via == Via::Page {
            let token = ctx.req.query_param("token").unwrap_or_default();
            return Ok(confirm_page(&token, channel));
        }
        let key = ctx.require_service_key()?;
        let recorded: Recorded = ctx
            .config
            .rest
            .rpc_as(
                "record_unsubscribe",
                &json!({"client_id": client_id, "channel": channel, "source": via.source()}),
                key,
            )
            .await?;
        Ok(done_page(&recorded, channel))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(Unsubscribe);

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "11111111-1111-4111-8111-111111111111";

    #[test]
    fn a_token_names_one_client_and_channel_for_a_year() {
        let id = Uuid::parse_str(C).unwrap();
        let t = link_token(b"k", id, "sms", 1000).unwrap();
        let link = shared::signed_link::verify(&[b"k"], PURPOSE, &t, 1000).unwrap();
        assert_eq!(link.expires_at, 1000 + LINK_TTL_SECS);
        assert_eq!(subject(&link.subject).unwrap(), (id, "sms"));
        for bad in [
            "",
            C,
            "x:email",
            &format!("{C}:fax"),
            &format!("{C}:email:x"),
        ] {
            assert_eq!(subject(bad).unwrap_err().status(), 401, "{bad}");
        }
    }

    #[test]
    fn only_rfc_8058_bodies_are_one_click() {
        let post = |body: &str| Request {
            method: "POST".into(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(
            Unsubscribe::input(&post("List-Unsubscribe=One-Click"), 0).unwrap(),
            Via::OneClick
        );
        assert_eq!(Unsubscribe::input(&post(""), 0).unwrap(), Via::Button);
        assert_eq!(
            Unsubscribe::input(&post("\u{0}%%"), 0).unwrap(),
            Via::Button
        );
        let get = Request {
            method: "GET".into(),
            ..Default::default()
        };
        assert_eq!(Unsubscribe::input(&get, 0).unwrap(), Via::Page);
        assert_eq!(
            (Via::OneClick.source(), Via::Button.source()),
            ("one_click", "unsubscribe_link")
        );
    }

    #[test]
    fn pages_escape_what_they_show_and_load_nothing() {
        let p = confirm_page("a\"b", "email");
        let text = p.text();
        assert!(text.contains("action=\"?token=a&quot;b\""), "{text}");
        assert!(!text.contains("<script"));
        assert!(p
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'"));
        let done = done_page(
            &Recorded {
                status: "unsubscribed".into(),
                business_name: "<Acme & Co>".into(),
                already: true,
            },
            "sms",
        );
        assert!(done
            .text()
            .contains("already stopped marketing text messages from &lt;Acme &amp; Co&gt;"));
    }
}
