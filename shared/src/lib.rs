//! `shared`: everything two or more commerce-edge functions need.
//!
//! - [`ApiError`] and the one error envelope;
//! - the request boundary ([`Request`], [`Response`], body limit, method check);
//! - field validation into typed input ([`Validator`]), with exact decimals;
//! - JWT verification ([`JwtVerifier`]) and the caller ([`authenticate`]);
//! - the PostgREST RPC client ([`PostgrestClient`]);
//! - the Storage API client ([`StorageClient`]);
//! - provider clients (Resend, Twilio, Klaviyo, Slack, Stripe, Shopify) with retries ([`providers`]);
//! - store records mapped from Shopify's GraphQL nodes and webhook payloads ([`commerce`]);
//! - submitting recorded refunds to Stripe ([`refunds`]);
//! - one format for money and labels in messages and documents ([`format`]);
//! - the safe template language messages are written in ([`template`]);
//! - the endpoint contract: one declaration per function, one copy of the
//!   request handling ([`Endpoint`], [`endpoint::handle`]);
//! - webhook signature checks ([`webhooks`]) and signed links ([`signed_link`]);
//! - on wasm32, the loader contract ([`export_endpoint!`]).

mod auth;
pub mod campaign;
pub mod commerce;
mod config;
pub mod endpoint;
mod error;
pub mod format;
pub mod gate;
mod http;
mod jwt;
pub mod outbound;
mod postgrest;
pub mod providers;
pub mod refunds;
pub mod signed_link;
mod storage;
pub mod template;
mod validate;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
pub mod runtime;

pub use auth::{authenticate, Caller};
pub use config::Config;
pub use endpoint::{Auth, Ctx, Endpoint, Principal, Scheme};
pub use error::{ApiError, RateLimit, Result};
pub use http::{Keyed, Request, Response, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LEN};
pub use jwt::{Claims, JwtVerifier, LEEWAY_SECS};
pub use postgrest::{
    is_replay, notifications_queued, null_as_default, rpc_result, Counted, PostgrestClient,
    BUSY_RETRIES, GATE_MAX_WAIT,
};
pub use storage::{error_from_storage, StorageClient};
pub use validate::{
    is_date, is_shop_domain, join, json_number, parse_decimal, utc_day, DecimalRule, Validator,
    DECIMAL_10_2_MAX,
};

// Re-exported so function crates use the same versions.
pub use rust_decimal::Decimal;
pub use serde;
pub use serde_json;
pub use uuid::Uuid;
