//! `shared`: everything two or more commerce-edge functions need.
//!
//! - [`ApiError`] and the one error envelope;
//! - the request boundary ([`Request`], [`Response`], body limit, method check);
//! - field validation into typed input ([`Validator`]), with exact decimals;
//! - JWT verification ([`JwtVerifier`]) and the caller ([`authenticate`]);
//! - the PostgREST RPC client ([`PostgrestClient`]);
//! - the Storage API client ([`StorageClient`]);
//! - provider clients (Resend, Twilio, Klaviyo, Slack, Stripe) with retries ([`providers`]);
//! - submitting recorded refunds to Stripe ([`refunds`]);
//! - one format for money and labels in messages and documents ([`format`]);
//! - on wasm32, the loader contract ([`export_function!`]).

mod auth;
mod config;
mod error;
pub mod format;
pub mod gate;
mod http;
mod jwt;
mod postgrest;
pub mod providers;
pub mod refunds;
mod storage;
mod validate;

#[cfg(target_arch = "wasm32")]
pub mod runtime;

pub use auth::{authenticate, Caller};
pub use config::Config;
pub use error::{ApiError, RateLimit, Result};
pub use http::{Request, Response, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LEN};
pub use jwt::{Claims, JwtVerifier, LEEWAY_SECS};
pub use postgrest::{
    is_replay, notifications_queued, Counted, PostgrestClient, BUSY_RETRIES, GATE_MAX_WAIT,
};
pub use storage::{error_from_storage, StorageClient};
pub use validate::{
    is_date, join, json_number, parse_decimal, utc_day, DecimalRule, Validator, DECIMAL_10_2_MAX,
};

// Re-exported so function crates use the same versions.
pub use rust_decimal::Decimal;
pub use serde_json;
pub use uuid::Uuid;
