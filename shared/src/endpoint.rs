//! The endpoint contract: what one function declares, and the one copy of
//! the request handling every function shares.
//!
//! A function is a type that implements [`Endpoint`]:
//!
//! ```ignore
//! pub struct Health;
//! impl Endpoint for Health {
//!     const NAME: &'static str = "health";
//!     const METHODS: &'static [&'static str] = &["GET"];
//!     const AUTH: Auth = Auth::Public;
//!     type Input = ();
//!     fn input(_: &Request, _now: i64) -> Result<()> { Ok(()) }
//!     async fn run(_: (), ctx: &Ctx<'_>) -> Result<Response> { … }
//! }
//! shared::export_endpoint!(Health); // on wasm32
//! ```
//!
//! [`handle`] then does the rest, in this order, so each step only sees
//! requests the one before admitted:
//! 1. the method (405 with `Allow`; the loader answers `OPTIONS` with CORS
//!    headers derived from [`Endpoint::METHODS`]);
//! 2. the body limit (413), before anything reads the body;
//! 3. authentication by [`Auth`] mode (401); a webhook's signature is checked
//!    over the raw bytes before they are parsed;
//! 4. [`Endpoint::input`]: parsing and validation into the typed input (400);
//! 5. [`Endpoint::run`].
//!
//! Any error becomes the one envelope (see [`ApiError`]). Work the function
//! asks for after the response ([`Ctx::deliver_outbox`], [`Ctx::after`]) is
//! returned with it, and the wasm runtime hands it to `EdgeRuntime.waitUntil`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;

use crate::auth::{authenticate, Caller};
use crate::config::Config;
use crate::error::{ApiError, Result};
use crate::http::{Request, Response, MAX_BODY_BYTES};
use crate::providers::Clock;
use crate::signed_link::{self, SignedLink};
use crate::webhooks::{self, Provider};
use serde_json::json;
use uuid::Uuid;

/// A webhook's signing scheme (see [`webhooks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Stripe,
    /// Standard Webhooks / Svix: Resend.
    StandardWebhooks,
    Shopify,
    Meta,
    /// Signed over the public URL of the request, which the kit rebuilds from
    /// `SUPABASE_URL`, the function's path and the query.
    Twilio,
}

/// How a function knows who is calling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Auth {
    /// A signed-in user's access token (`Authorization: Bearer <jwt>`).
    User,
    /// The service-role key, a token whose role is `service_role`, or the
    /// shared secret in `x-dispatch-secret` (`DISPATCH_SECRET`): pg_cron and
    /// one function calling another.
    ServiceRole,
    /// Either of the two above: a user acting, or pg_cron and another
    /// function continuing the user's work (the service role is tried first).
    UserOrServiceRole,
    /// A provider's signature over the raw body, with the secrets in the
    /// environment variable `secrets_var` (several, comma-separated, while a
    /// secret is rotated).
    Webhook {
        scheme: Scheme,
        secrets_var: &'static str,
    },
    /// An HMAC token in the query parameter `token`, made by
    /// [`signed_link::sign`] for `purpose`, with the keys in `secrets_var`.
    SignedLink {
        purpose: &'static str,
        secrets_var: &'static str,
    },
    /// Anyone.
    Public,
}

/// Who the request was authenticated as.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    User(Caller),
    Service,
    /// A provider whose signature verified.
    Webhook,
    /// The holder of a valid signed link.
    Link(SignedLink),
    Anonymous,
}

/// One function: its name, methods, auth mode, input and work.
#[allow(async_fn_in_trait)] // one request at a time per isolate: no Send bound wanted
pub trait Endpoint {
    /// The function's name, as in `/functions/v1/<name>`.
    const NAME: &'static str;
    /// The methods it serves; `OPTIONS` is answered for them.
    const METHODS: &'static [&'static str] = &["POST"];
    const AUTH: Auth;
    /// The largest body read.
    const BODY_LIMIT: usize = MAX_BODY_BYTES;
    type Input;
    /// Parses and validates the request into the typed input; `now` is the
    /// time in seconds since the epoch, for rules about dates.
    fn input(req: &Request, now: i64) -> Result<Self::Input>;
    /// Does the work.
    async fn run(input: Self::Input, ctx: &Ctx<'_>) -> Result<Response>;
}

/// Work to run after the response.
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// What `run` is given besides its input.
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub config: &'static Config,
    pub clock: &'a dyn Clock,
    pub principal: Principal,
    after: RefCell<Vec<Task>>,
    deliver: Cell<bool>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        req: &'a Request,
        config: &'static Config,
        clock: &'a dyn Clock,
        principal: Principal,
    ) -> Self {
        Ctx {
            req,
            config,
            clock,
            principal,
            after: RefCell::default(),
            deliver: Cell::new(false),
        }
    }

    /// The signed-in user; only [`Auth::User`] endpoints have one.
    pub fn caller(&self) -> Result<&Caller> {
        match &self.principal {
            Principal::User(c) => Ok(c),
            _ => Err(ApiError::Internal(
                "caller() on an endpoint without a user".into(),
            )),
        }
    }

    /// The tenant a request acts for: the one it names, else the caller's
    /// only tenant. A caller of several tenants must name one (400); one of
    /// none is 403. Whether the caller may act for a named tenant is the
    /// RPC's to decide (it checks the role).
    pub async fn tenant(&self, named: Option<Uuid>) -> Result<Uuid> {
        if let Some(t) = named {
            return Ok(t);
        }
        let caller = self.caller()?;
        let rows = self
            .config
            .rest
            .select(
                "tenant_users",
                &format!("select=tenant_id&user_id=eq.{}", caller.user_id),
                &caller.token,
            )
            .await?;
        let ids: Vec<Uuid> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                r.get("tenant_id")?
                    .as_str()
                    .and_then(|s| Uuid::try_parse(s).ok())
            })
            .collect();
        match ids.as_slice() {
            [one] => Ok(*one),
            [] => Err(ApiError::Forbidden {
                message: "you are not a member of any tenant".into(),
                details: json!({}),
            }),
            _ => Err(ApiError::field(
                "tenant_id",
                "is required: you belong to several tenants",
            )),
        }
    }

    /// The service-role key, for calls made on the platform's behalf.
    pub fn service_role_key(&self) -> Option<&'static str> {
        self.config.service_role_key.as_deref()
    }

    /// The service-role key, or a 500 (logged) when the platform did not set it.
    pub fn require_service_key(&self) -> Result<&'static str> {
        self.service_role_key()
            .ok_or_else(|| ApiError::Internal("SUPABASE_SERVICE_ROLE_KEY is not set".into()))
    }

    /// Asks for the outbox to be delivered after the response (coalesced per
    /// isolate; the every-minute schedule delivers otherwise).
    pub fn deliver_outbox(&self) {
        self.deliver.set(true);
    }

    /// Runs `task` after the response, without delaying it.
    pub fn after<F: Future<Output = ()> + 'static>(&self, task: F) {
        self.after.borrow_mut().push(Box::pin(task));
    }
}

/// The work a request left to do after its response.
#[derive(Default)]
pub struct Afterwards {
    pub deliver_outbox: bool,
    pub tasks: Vec<Task>,
}

/// The whole request handling of endpoint `E` (see the module docs).
pub async fn handle<E: Endpoint>(
    req: Request,
    config: &'static Config,
    clock: &dyn Clock,
) -> (Result<Response>, Afterwards) {
    let principal = match admit::<E>(&req, config, clock).await {
        Ok(p) => p,
        Err(e) => return (Err(e), Afterwards::default()),
    };
    let input = match E::input(&req, clock.now_unix_secs()) {
        Ok(i) => i,
        Err(e) => return (Err(e), Afterwards::default()),
    };
    let ctx = Ctx::new(&req, config, clock, principal);
    let result = E::run(input, &ctx).await;
    let afterwards = Afterwards {
        deliver_outbox: ctx.deliver.get(),
        tasks: ctx.after.take(),
    };
    (result, afterwards)
}

/// Steps 1–3: method, body limit, authentication.
async fn admit<E: Endpoint>(
    req: &Request,
    config: &'static Config,
    clock: &dyn Clock,
) -> Result<Principal> {
    req.require_method(E::METHODS)?;
    req.require_body_within(E::BODY_LIMIT)?;
    authenticate_for::<E>(req, config, clock.now_unix_secs()).await
}

/// Authenticates a request to endpoint `E` by its [`Auth`] mode.
///
/// The match is on a constant of `E`, so each function's module contains
/// only its own mode's code: a user endpoint carries no webhook verifier.
pub async fn authenticate_for<E: Endpoint>(
    req: &Request,
    config: &Config,
    now: i64,
) -> Result<Principal> {
    match E::AUTH {
        Auth::Public => Ok(Principal::Anonymous),
        Auth::User => Ok(Principal::User(authenticate(req, &config.jwt, now).await?)),
        Auth::ServiceRole => service_role(req, config, now).await,
        Auth::UserOrServiceRole => match service_role(req, config, now).await {
            Ok(service) => Ok(service),
            Err(_) => Ok(Principal::User(authenticate(req, &config.jwt, now).await?)),
        },
        Auth::Webhook {
            scheme,
            secrets_var,
        } => webhook(scheme, secrets_var, E::NAME, req, config, now),
        Auth::SignedLink {
            purpose,
            secrets_var,
        } => link(purpose, secrets_var, req, config, now),
    }
}

fn webhook(
    scheme: Scheme,
    secrets_var: &str,
    name: &str,
    req: &Request,
    config: &Config,
    now: i64,
) -> Result<Principal> {
    let secrets = config.secrets(secrets_var);
    if secrets.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "this webhook is not configured ({secrets_var})"
        )));
    }
    let url = public_url(config, name, req);
    let provider = match scheme {
        Scheme::Stripe => Provider::Stripe,
        Scheme::StandardWebhooks => Provider::StandardWebhooks,
        Scheme::Shopify => Provider::Shopify,
        Scheme::Meta => Provider::Meta,
        Scheme::Twilio => Provider::Twilio { url: &url },
    };
    webhooks::verify(provider, &req.headers, &req.body, &secrets, now)
        .map_err(|e| ApiError::Unauthorized(e.message()))?;
    Ok(Principal::Webhook)
}

fn link(
    purpose: &str,
    secrets_var: &str,
    req: &Request,
    config: &Config,
    now: i64,
) -> Result<Principal> {
    let keys: Vec<&[u8]> = config
        .secrets(secrets_var)
        .into_iter()
        .map(str::as_bytes)
        .collect();
    if keys.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "links are not configured ({secrets_var})"
        )));
    }
    let token = req
        .query_param("token")
        .ok_or_else(|| ApiError::Unauthorized("the link has no token".into()))?;
    let link = signed_link::verify(&keys, purpose, &token, now)
        .map_err(|e| ApiError::Unauthorized(e.message()))?;
    Ok(Principal::Link(link))
}

/// The URL a provider signed: the public functions URL, the path and the query.
fn public_url(config: &Config, name: &str, req: &Request) -> String {
    let mut url = format!("{}/{name}{}", config.public_functions_url, req.path);
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&req.query);
    }
    url
}

/// The dispatch secret, the service-role key itself, or a verified token whose
/// role is service_role. Secrets are compared as SHA-256 digests, so the time
/// taken says nothing about how much of a guess matched.
async fn service_role(req: &Request, config: &Config, now: i64) -> Result<Principal> {
    use sha2::{Digest, Sha256};
    let same = |a: &str, b: &str| Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes());
    if let (Some(sent), Some(secret)) = (req.header("x-dispatch-secret"), &config.dispatch_secret) {
        if same(sent, secret) {
            return Ok(Principal::Service);
        }
    }
    if let Some(token) = req.bearer() {
        if let Some(key) = &config.service_role_key {
            if same(token, key) {
                return Ok(Principal::Service);
            }
        }
        if let Ok(claims) = config.jwt.verify(token, now).await {
            if claims.role.as_deref() == Some("service_role") {
                return Ok(Principal::Service);
            }
        }
    }
    Err(ApiError::Unauthorized(
        "the service-role key or the dispatch secret is required".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Clock;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use futures::executor::block_on;
    use hmac::{Hmac, Mac};
    use serde_json::{json, Value};
    use sha2::Sha256;
    use std::collections::BTreeMap;
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;
    const JWT_SECRET: &str = "secret-secret-secret-secret-secret!";

    struct Fixed;
    impl Clock for Fixed {
        fn now_unix_secs(&self) -> i64 {
            NOW
        }
        fn jitter(&self) -> f64 {
            0.5
        }
        fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
            Box::pin(async {})
        }
    }

    fn config(extra: &[(&str, &str)]) -> &'static Config {
        let mut env: BTreeMap<String, String> = [
            ("SUPABASE_URL", "http://gw"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("JWT_SECRET", JWT_SECRET),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc-key"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.retain(|_, v| !v.is_empty());
        Box::leak(Box::new(Config::from_env(&env).unwrap()))
    }

    fn token(role: &str) -> String {
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!(
            "{}.{}",
            b64(json!({"alg":"HS256"})),
            b64(json!({"sub":"7b0c1a64-58b5-4a8f-a8b1-0b7e5b8f6c11","role":role,"exp":NOW+60}))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(JWT_SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn req(method: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    /// Echoes what it was given, and asks for work after the response.
    struct Echo;
    impl Endpoint for Echo {
        const NAME: &'static str = "echo";
        const METHODS: &'static [&'static str] = &["GET", "POST"];
        const AUTH: Auth = Auth::User;
        const BODY_LIMIT: usize = 64;
        type Input = Value;
        fn input(req: &Request, _now: i64) -> Result<Value> {
            match req.method.as_str() {
                "GET" => Ok(json!({"q": req.query_param("q")})),
                _ => req.json_object(),
            }
        }
        async fn run(input: Value, ctx: &Ctx<'_>) -> Result<Response> {
            ctx.deliver_outbox();
            ctx.after(async {});
            let user = ctx.caller()?.user_id;
            Ok(Response::json(200, &json!({"input": input, "user": user})))
        }
    }

    fn call<E: Endpoint>(r: Request, c: &'static Config) -> (Result<Response>, Afterwards) {
        block_on(handle::<E>(r, c, &Fixed))
    }

    #[test]
    fn method_then_size_then_auth_then_input() {
        let c = config(&[]);
        let user = format!("Bearer {}", token("authenticated"));
        let status = |r: Request| match call::<Echo>(r, c).0 {
            Ok(resp) => resp.status,
            Err(e) => e.status(),
        };
        // A wrong method is refused before anything else is looked at.
        assert_eq!(status(req("DELETE", &[], &"x".repeat(1000))), 405);
        // An oversized body before authentication: nothing reads it.
        assert_eq!(status(req("POST", &[], &"x".repeat(65))), 413);
        assert_eq!(status(req("POST", &[], "{}")), 401);
        assert_eq!(status(req("POST", &[("authorization", &user)], "{")), 400);
        let (ok, after) = call::<Echo>(req("POST", &[("authorization", &user)], r#"{"a":1}"#), c);
        let ok = ok.unwrap();
        assert_eq!(ok.status, 200);
        assert!(ok.text().contains(r#""input":{"a":1}"#));
        assert!(after.deliver_outbox && after.tasks.len() == 1);
        // A failed request leaves no work behind.
        let (_, after) = call::<Echo>(req("POST", &[], "{}"), c);
        assert!(!after.deliver_outbox && after.tasks.is_empty());
        let e = call::<Echo>(req("PUT", &[], ""), c).0.unwrap_err();
        assert_eq!(
            Response::from_error(&e).header("allow"),
            Some("GET, POST, OPTIONS")
        );
    }

    #[test]
    fn a_get_reads_its_query() {
        let c = config(&[]);
        let mut r = req(
            "GET",
            &[(
                "authorization",
                &format!("Bearer {}", token("authenticated")),
            )],
            "",
        );
        r.query = "q=a%20b".into();
        let resp = call::<Echo>(r, c).0.unwrap();
        assert!(resp.text().contains(r#""q":"a b""#), "{}", resp.text());
    }

    #[test]
    fn the_anon_key_is_not_a_user_and_users_are_not_the_service() {
        let c = config(&[("DISPATCH_SECRET", "d-secret")]);
        let anon = format!("Bearer {}", token("anon"));
        let e = call::<Echo>(req("POST", &[("authorization", &anon)], "{}"), c)
            .0
            .unwrap_err();
        assert_eq!(e.status(), 401);
        struct Internal;
        impl Endpoint for Internal {
            const NAME: &'static str = "internal";
            const AUTH: Auth = Auth::ServiceRole;
            type Input = ();
            fn input(_: &Request, _: i64) -> Result<()> {
                Ok(())
            }
            async fn run(_: (), _: &Ctx<'_>) -> Result<Response> {
                Ok(Response::json(200, &json!({})))
            }
        }
        let as_service = |h: &[(&str, &str)]| {
            block_on(authenticate_for::<Internal>(&req("POST", h, ""), c, NOW))
        };
        let user = format!("Bearer {}", token("authenticated"));
        let service = format!("Bearer {}", token("service_role"));
        assert!(as_service(&[("authorization", &user)]).is_err());
        assert_eq!(
            as_service(&[("authorization", &service)]).unwrap(),
            Principal::Service
        );
        assert_eq!(
            as_service(&[("authorization", "Bearer svc-key")]).unwrap(),
            Principal::Service
        );
        assert_eq!(
            as_service(&[("x-dispatch-secret", "d-secret")]).unwrap(),
            Principal::Service
        );
        assert!(as_service(&[("x-dispatch-secret", "d-secreT")]).is_err());
    }

    /// A Stripe webhook receiver and a signed-link page, to prove the modes.
    struct StripeHook;
    impl Endpoint for StripeHook {
        const NAME: &'static str = "stripe-hook";
        const AUTH: Auth = Auth::Webhook {
            scheme: Scheme::Stripe,
            secrets_var: "STRIPE_WEBHOOK_SECRET",
        };
        type Input = Value;
        fn input(req: &Request, _: i64) -> Result<Value> {
            req.json_object()
        }
        async fn run(input: Value, ctx: &Ctx<'_>) -> Result<Response> {
            assert_eq!(ctx.principal, Principal::Webhook);
            Ok(Response::json(200, &json!({"received": input["type"]})))
        }
    }

    struct Unsubscribe;
    impl Endpoint for Unsubscribe {
        const NAME: &'static str = "unsubscribe";
        const METHODS: &'static [&'static str] = &["GET"];
        const AUTH: Auth = Auth::SignedLink {
            purpose: "unsubscribe",
            secrets_var: "LINK_SECRET",
        };
        type Input = ();
        fn input(_: &Request, _: i64) -> Result<()> {
            Ok(())
        }
        async fn run(_: (), ctx: &Ctx<'_>) -> Result<Response> {
            let Principal::Link(link) = &ctx.principal else {
                unreachable!("the kit admitted only a link")
            };
            Ok(Response::html(
                200,
                format!("<p>{} unsubscribed</p>", link.subject),
            ))
        }
    }

    fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("t={t},v1={hex}")
    }

    #[test]
    fn a_webhook_is_verified_over_the_raw_body_before_it_is_parsed() {
        // Rotation: the new secret and the old one are both accepted.
        let c = config(&[("STRIPE_WEBHOOK_SECRET", "whsec_new,whsec_old")]);
        let body = r#"{"type":"charge.refunded"}"#;
        let hook = |sig: &str, body: &str| {
            call::<StripeHook>(req("POST", &[("stripe-signature", sig)], body), c).0
        };
        for secret in ["whsec_new", "whsec_old"] {
            let ok = hook(&stripe_signature(secret, NOW, body), body).unwrap();
            assert_eq!(ok.text(), r#"{"received":"charge.refunded"}"#);
        }
        let forged = hook(&stripe_signature("whsec_guess", NOW, body), body).unwrap_err();
        assert_eq!(forged.status(), 401);
        // A body that is not JSON but is signed reaches parsing (400); an
        // unsigned one never does (401).
        assert_eq!(
            hook(&stripe_signature("whsec_new", NOW, "{"), "{")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(hook("t=1,v1=00", "{").unwrap_err().status(), 401);
        let stale = hook(&stripe_signature("whsec_new", NOW - 3600, body), body).unwrap_err();
        assert_eq!(stale.status(), 401);
        // Not configured: the platform's problem, not the sender's.
        let bare = config(&[]);
        let e = call::<StripeHook>(
            req("POST", &[("stripe-signature", "t=1,v1=00")], body),
            bare,
        )
        .0
        .unwrap_err();
        // 503, so the provider retries; the variable is named in the log only.
        assert_eq!(e.status(), 503);
        assert!(e.log_cause().unwrap().contains("STRIPE_WEBHOOK_SECRET"));
    }

    #[test]
    fn a_signed_link_opens_only_its_purpose_until_it_expires() {
        let c = config(&[("LINK_SECRET", "link-key-2, link-key-1")]);
        let open = |token: &str| {
            let mut r = req("GET", &[], "");
            r.query = format!("token={token}");
            call::<Unsubscribe>(r, c).0
        };
        let old_key =
            signed_link::sign(b"link-key-1", "unsubscribe", "c@x.test", NOW + 60).unwrap();
        let page = open(&old_key).unwrap();
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.text(), "<p>c@x.test unsubscribed</p>");
        let other =
            signed_link::sign(b"link-key-2", "recall_response", "c@x.test", NOW + 60).unwrap();
        assert_eq!(open(&other).unwrap_err().status(), 401);
        let expired = signed_link::sign(b"link-key-2", "unsubscribe", "c@x.test", NOW - 1).unwrap();
        assert_eq!(open(&expired).unwrap_err().status(), 401);
        let foreign =
            signed_link::sign(b"someone-else", "unsubscribe", "c@x.test", NOW + 60).unwrap();
        assert_eq!(open(&foreign).unwrap_err().status(), 401);
        let e = call::<Unsubscribe>(req("GET", &[], ""), c).0.unwrap_err();
        assert_eq!(
            (e.status(), e.message()),
            (401, "the link has no token".to_owned())
        );
    }

    struct TwilioStatus;
    impl Endpoint for TwilioStatus {
        const NAME: &'static str = "twilio-status";
        const AUTH: Auth = Auth::Webhook {
            scheme: Scheme::Twilio,
            secrets_var: "TWILIO_AUTH_TOKEN",
        };
        type Input = ();
        fn input(_: &Request, _: i64) -> Result<()> {
            Ok(())
        }
        async fn run(_: (), _: &Ctx<'_>) -> Result<Response> {
            Ok(Response::json(200, &json!({})))
        }
    }

    #[test]
    fn twilio_is_checked_against_the_public_url_it_called() {
        use base64::engine::general_purpose::STANDARD;
        let c = config(&[
            ("TWILIO_AUTH_TOKEN", "12345"),
            (
                "PUBLIC_FUNCTIONS_URL",
                "https://api.example.com/functions/v1/",
            ),
        ]);
        let body = "MessageSid=SM1&MessageStatus=delivered";
        let signed = "https://api.example.com/functions/v1/twilio-status/cb/?k=1MessageSidSM1MessageStatusdelivered";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"12345").unwrap();
        mac.update(signed.as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let headers = [
            ("x-twilio-signature", sig.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let mut r = req("POST", &headers, body);
        // As the function sees it: the internal URL, with the trailing slash kept.
        (r.path, r.query) = Request::locate(
            "http://localhost:9000/twilio-status/cb/?k=1",
            "twilio-status",
        );
        assert_eq!(call::<TwilioStatus>(r.clone(), c).0.unwrap().status, 200);
        r.path = "/cb".into();
        assert_eq!(call::<TwilioStatus>(r, c).0.unwrap_err().status(), 401);
    }
}
