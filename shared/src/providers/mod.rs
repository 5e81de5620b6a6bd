//! Provider clients. Each reaches its provider through a base URL from the
//! environment (the real one by default), times out every call, retries 429,
//! 5xx and timeouts with exponential backoff and jitter (honouring
//! Retry-After, bounded in count and total time), and classifies each failure
//! as transient or permanent.

pub mod klaviyo;
pub mod resend;
mod retry;
pub mod shopify;
pub mod slack;
pub mod sms;
pub mod stripe;
pub mod twilio;

pub use retry::{
    by_status, exchange, parse_retry_after, with_retries, Clock, HttpReply, RetryPolicy, SendError,
};
