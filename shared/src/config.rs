//! Configuration read once per cold start from the environment the loader passes in.
//!
//! | variable | meaning |
//! |---|---|
//! | `SUPABASE_URL` | project URL; the REST root is `$SUPABASE_URL/rest/v1` |
//! | `SUPABASE_ANON_KEY` | sent as `apikey` to the REST API |
//! | `SUPABASE_JWKS` | JSON Web Key Set of the project's signing keys (ES256/RS256) |
//! | `JWT_SECRET` | the legacy HS256 secret, if the project still accepts it |
//! | `POSTGREST_URL` | optional: the REST root, when it is not `$SUPABASE_URL/rest/v1` |

use std::collections::BTreeMap;

use crate::jwt::JwtVerifier;
use crate::postgrest::PostgrestClient;

#[derive(Debug, Clone)]
pub struct Config {
    pub rest: PostgrestClient,
    pub jwt: JwtVerifier,
}

impl Config {
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let url = get("SUPABASE_URL").ok_or("SUPABASE_URL is not set")?;
        let anon = get("SUPABASE_ANON_KEY").ok_or("SUPABASE_ANON_KEY is not set")?;
        let rest_url = match get("POSTGREST_URL") {
            Some(u) => u.to_owned(),
            None => format!("{}/rest/v1", url.trim_end_matches('/')),
        };
        Ok(Self {
            rest: PostgrestClient::new(&rest_url, anon),
            jwt: JwtVerifier::new(get("SUPABASE_JWKS"), get("JWT_SECRET"))?,
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

    #[test]
    fn rest_url_defaults_to_the_project_url() {
        let c = Config::from_env(&env(&[
            ("SUPABASE_URL", "https://ref.supabase.co/"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("JWT_SECRET", "s"),
        ]))
        .unwrap();
        assert_eq!(c.rest.rpc_url("f"), "https://ref.supabase.co/rest/v1/rpc/f");
        let c = Config::from_env(&env(&[
            ("SUPABASE_URL", "http://gw"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("JWT_SECRET", "s"),
            ("POSTGREST_URL", "http://127.0.0.1:3000"),
        ]))
        .unwrap();
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
    }
}
