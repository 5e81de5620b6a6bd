//! Configuration read once per cold start from the environment the loader passes in.
//!
//! | variable | meaning |
//! |---|---|
//! | `SUPABASE_URL` | project URL; the REST root is `$SUPABASE_URL/rest/v1` |
//! | `SUPABASE_ANON_KEY` | sent as `apikey` to the REST API |
//! | `SUPABASE_JWKS` | JSON Web Key Set of the project's signing keys (ES256/RS256) |
//! | `JWT_SECRET` | the legacy HS256 secret, if the project still accepts it |
//! | `POSTGREST_URL` | optional: the REST root, when it is not `$SUPABASE_URL/rest/v1` |
//! | `SUPABASE_SERVICE_ROLE_KEY` | the dispatcher's key for the outbox RPCs |
//! | `DISPATCH_SECRET` | optional shared secret that may call dispatch-notifications |
//! | `PUBLIC_FUNCTIONS_URL` | optional: the functions' public root, when callers reach them elsewhere than `$SUPABASE_URL/functions/v1` (a custom domain); Twilio signs it |
//! | `RESEND_API_KEY`, `RESEND_BASE_URL`, `EMAIL_FROM` | email |
//! | `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_PHONE_NUMBER`, `TWILIO_BASE_URL` | SMS |
//! | `KLAVIYO_API_KEY`, `KLAVIYO_BASE_URL`, `KLAVIYO_REVISION` | marketing events and profiles |
//! | `SLACK_WEBHOOK_URL` | team alerts |
//! | `STRIPE_SECRET_KEY`, `STRIPE_BASE_URL`, `STRIPE_API_VERSION` | refunds |
//! | `PROVIDER_TIMEOUT_MS` | each provider call's timeout (10000) |
//! | `OUTBOX_BATCH_SIZE`, `OUTBOX_LEASE_SECONDS`, `OUTBOX_BACKOFF_SECONDS` | delivery (50, 60, 30) |
//! | `WEBHOOK_ALLOW_HOSTS` | test only: hosts workflow webhooks may call over http and at private addresses (`shared::outbound`) |
//!
//! An endpoint may name further variables of its own (a webhook's signing
//! secrets, a link-signing key); they are read through [`Config::var`] and
//! [`Config::secrets`], so a new function adds no field here.
//!
//! A provider whose key is unset is `None`: messages for it wait in the outbox
//! (as a transient failure) until it is configured.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::jwt::JwtVerifier;
use crate::postgrest::PostgrestClient;
use crate::providers::{klaviyo, resend, slack, stripe, twilio, RetryPolicy};
use crate::storage::StorageClient;

#[derive(Debug, Clone)]
pub struct Providers {
    pub resend: Option<resend::Resend>,
    /// The address transactional email is sent from.
    pub email_from: Option<String>,
    pub twilio: Option<twilio::Twilio>,
    pub klaviyo: Option<klaviyo::Klaviyo>,
    pub slack: Option<slack::Slack>,
    pub stripe: Option<stripe::Stripe>,
}

impl Providers {
    /// Resend and the address email is sent from, or the transient error a
    /// message waits on until both are configured.
    pub fn email(&self) -> Result<(&resend::Resend, &str), crate::providers::SendError> {
        let resend = self.resend.as_ref().ok_or_else(|| {
            crate::providers::SendError::transient("email is not configured (RESEND_API_KEY)")
        })?;
        let from = self.email_from.as_deref().ok_or_else(|| {
            crate::providers::SendError::transient("email is not configured (EMAIL_FROM)")
        })?;
        Ok((resend, from))
    }
}

/// How the dispatcher works through the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSettings {
    pub batch_size: u32,
    pub lease_seconds: u32,
    /// The first retry's delay; it doubles per attempt (see fail_notification).
    pub backoff_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rest: PostgrestClient,
    pub jwt: JwtVerifier,
    /// `$SUPABASE_URL/storage/v1`
    pub storage: StorageClient,
    /// `$SUPABASE_URL/functions/v1`, for one function to call another.
    pub functions_url: String,
    /// The functions' public root as callers see it (`PUBLIC_FUNCTIONS_URL`,
    /// else `functions_url`): what a provider that signs the URL it called
    /// (Twilio) signed, behind a custom domain too.
    pub public_functions_url: String,
    pub service_role_key: Option<String>,
    pub dispatch_secret: Option<String>,
    pub providers: Providers,
    pub outbox: OutboxSettings,
    /// The whole environment, for the variables an endpoint names itself.
    pub env: Env,
}

/// The environment as read at cold start. Its `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Env(pub BTreeMap<String, String>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Config {
    /// A variable's value, unless it is unset or empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The secrets in variable `name`: one, or several separated by commas or
    /// spaces while a secret is being rotated (the new one and the old one).
    pub fn secrets(&self, name: &str) -> Vec<&str> {
        self.var(name)
            .map(|v| {
                v.split([',', ' ', '\n'])
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let number = |k: &str, default: f64| -> Result<f64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| format!("{k} must be a positive number")),
            }
        };
        let url = get("SUPABASE_URL").ok_or("SUPABASE_URL is not set")?;
        let anon = get("SUPABASE_ANON_KEY").ok_or("SUPABASE_ANON_KEY is not set")?;
        let url = url.trim_end_matches('/');
        let rest_url = match get("POSTGREST_URL") {
            Some(u) => u.to_owned(),
            None => format!("{url}/rest/v1"),
        };
        let policy = RetryPolicy {
            timeout: Duration::from_millis(number("PROVIDER_TIMEOUT_MS", 10_000.0)? as u64),
            ..RetryPolicy::default()
        };
        let providers = Providers {
            resend: get("RESEND_API_KEY").map(|key| {
                let mut c = resend::Resend::new(
                    get("RESEND_BASE_URL").unwrap_or(resend::DEFAULT_BASE_URL),
                    key,
                );
                c.policy = policy.clone();
                c
            }),
            email_from: get("EMAIL_FROM").map(str::to_owned),
            twilio: match (
                get("TWILIO_ACCOUNT_SID"),
                get("TWILIO_AUTH_TOKEN"),
                get("TWILIO_PHONE_NUMBER"),
            ) {
                (Some(sid), Some(token), Some(from)) => {
                    let mut c = twilio::Twilio::new(
                        get("TWILIO_BASE_URL").unwrap_or(twilio::DEFAULT_BASE_URL),
                        sid,
                        token,
                        from,
                    );
                    c.policy = policy.clone();
                    Some(c)
                }
                _ => None,
            },
            klaviyo: get("KLAVIYO_API_KEY").map(|key| {
                let mut c = klaviyo::Klaviyo::new(
                    get("KLAVIYO_BASE_URL").unwrap_or(klaviyo::DEFAULT_BASE_URL),
                    key,
                    get("KLAVIYO_REVISION").unwrap_or(klaviyo::DEFAULT_REVISION),
                );
                c.policy = policy.clone();
                c
            }),
            slack: get("SLACK_WEBHOOK_URL").map(|hook| {
                let mut c = slack::Slack::new(hook);
                c.policy = policy.clone();
                c
            }),
            stripe: get("STRIPE_SECRET_KEY").map(|key| {
                let mut c = stripe::Stripe::new(
                    get("STRIPE_BASE_URL").unwrap_or(stripe::DEFAULT_BASE_URL),
                    key,
                    get("STRIPE_API_VERSION").unwrap_or(stripe::DEFAULT_API_VERSION),
                );
                c.policy = policy.clone();
                c
            }),
        };
        Ok(Self {
            rest: PostgrestClient::new(&rest_url, anon),
            storage: StorageClient::new(&format!("{url}/storage/v1"), anon),
            jwt: JwtVerifier::new(get("SUPABASE_JWKS"), get("JWT_SECRET"))?,
            functions_url: format!("{url}/functions/v1"),
            public_functions_url: get("PUBLIC_FUNCTIONS_URL")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("{url}/functions/v1")),
            service_role_key: get("SUPABASE_SERVICE_ROLE_KEY").map(str::to_owned),
            dispatch_secret: get("DISPATCH_SECRET").map(str::to_owned),
            providers,
            outbox: OutboxSettings {
                batch_size: number("OUTBOX_BATCH_SIZE", 50.0)? as u32,
                lease_seconds: number("OUTBOX_LEASE_SECONDS", 60.0)? as u32,
                backoff_seconds: number("OUTBOX_BACKOFF_SECONDS", 30.0)?,
            },
            env: Env(env.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("SUPABASE_URL", "https://ref.supabase.co/"),
        ("SUPABASE_ANON_KEY", "anon"),
        ("JWT_SECRET", "s"),
    ];

    #[test]
    fn rest_url_defaults_to_the_project_url() {
        let c = Config::from_env(&env(BASE)).unwrap();
        assert_eq!(c.rest.rpc_url("f"), "https://ref.supabase.co/rest/v1/rpc/f");
        assert_eq!(c.functions_url, "https://ref.supabase.co/functions/v1");
        let mut e = env(BASE);
        e.insert("POSTGREST_URL".into(), "http://127.0.0.1:3000".into());
        let c = Config::from_env(&e).unwrap();
        assert_eq!(c.rest.rpc_url("f"), "http://127.0.0.1:3000/rpc/f");
    }

    #[test]
    fn missing_settings_are_named() {
        assert_eq!(
            Config::from_env(&env(&[])).unwrap_err(),
            "SUPABASE_URL is not set"
        );
        let e = Config::from_env(&env(&[("SUPABASE_URL", "u"), ("SUPABASE_ANON_KEY", "a")]))
            .unwrap_err();
        assert!(e.contains("SUPABASE_JWKS or JWT_SECRET"), "{e}");
        let mut bad = env(BASE);
        bad.insert("OUTBOX_LEASE_SECONDS".into(), "soon".into());
        assert_eq!(
            Config::from_env(&bad).unwrap_err(),
            "OUTBOX_LEASE_SECONDS must be a positive number"
        );
    }

    #[test]
    fn providers_are_configured_only_with_their_keys_and_default_to_the_real_hosts() {
        let c = Config::from_env(&env(BASE)).unwrap();
        assert!(c.providers.resend.is_none() && c.providers.twilio.is_none());
        assert_eq!(
            c.outbox,
            OutboxSettings {
                batch_size: 50,
                lease_seconds: 60,
                backoff_seconds: 30.0
            }
        );
        let mut e = env(BASE);
        for (k, v) in [
            ("RESEND_API_KEY", "re_1"),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_PHONE_NUMBER", "+15550000000"),
            ("PROVIDER_TIMEOUT_MS", "1500"),
        ] {
            e.insert(k.into(), v.into());
        }
        let c = Config::from_env(&e).unwrap();
        let resend = c.providers.resend.unwrap();
        assert_eq!(resend.policy.timeout, Duration::from_millis(1500));
        let email = crate::providers::resend::Email {
            from: "a@b.c".into(),
            to: vec!["d@e.f".into()],
            subject: "s".into(),
            html: None,
            text: None,
            reply_to: None,
            headers: Vec::new(),
            attachments: Vec::new(),
        };
        assert_eq!(
            resend.request(&email, "k").build().unwrap().url().as_str(),
            "https://api.resend.com/emails"
        );
        let twilio = c.providers.twilio.unwrap();
        assert!(twilio
            .request("+1", "b")
            .build()
            .unwrap()
            .url()
            .as_str()
            .starts_with("https://api.twilio.com/"));
    }
}
