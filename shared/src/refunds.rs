//! Submitting a recorded refund to Stripe and recording Stripe's answer. Used
//! by process-return right after the return, and by dispatch-notifications for
//! refunds that are still pending later (their outbox row, channel `stripe`).
//!
//! Every submission of one refund uses the Stripe idempotency key
//! `refund_<refund id>`, so Stripe makes at most one refund however many
//! submissions (and their own retries) there are, from either place.
//! `record_refund_outcome` runs with the service role: members cannot mark a
//! refund paid.

use serde_json::{json, Value};

use crate::error::{ApiError, Result};
use crate::postgrest::PostgrestClient;
use crate::providers::stripe::{minor_units, Refund, RefundRequest, Stripe};
use crate::providers::{Clock, SendError};
use crate::validate::parse_decimal;
use rust_decimal::Decimal;

/// A refund as the SQL reports it (`private.refund_json`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(try_from = "Value")]
pub struct RefundState {
    pub id: String,
    pub amount: Decimal,
    pub payment_intent: String,
    pub status: String,
    pub stripe_refund_id: Option<String>,
    pub last_error: Option<String>,
}

impl TryFrom<Value> for RefundState {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        Self::from_json(&v).ok_or_else(|| format!("not a refund: {v}"))
    }
}

impl RefundState {
    pub fn from_json(v: &Value) -> Option<Self> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(RefundState {
            id: text("id")?,
            amount: v.get("amount")?.as_number().and_then(parse_decimal)?,
            payment_intent: text("payment_intent")?,
            status: text("status")?,
            stripe_refund_id: text("stripe_refund_id"),
            last_error: text("last_error"),
        })
    }

    /// Whether Stripe still has to be asked.
    pub fn needs_submitting(&self) -> bool {
        self.status == "pending" && self.stripe_refund_id.is_none()
    }

    pub fn has_failed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "canceled")
    }

    /// The Stripe idempotency key: the same on every submission.
    pub fn stripe_key(&self) -> String {
        format!("refund_{}", self.id)
    }

    /// The refund to ask Stripe for, with the return named in its metadata.
    pub fn stripe_request(&self, return_id: &str, ra_number: &str) -> Result<RefundRequest> {
        Ok(RefundRequest {
            payment_intent: self.payment_intent.clone(),
            amount: minor_units(self.amount).ok_or_else(|| {
                ApiError::Internal(format!("refund amount {} is not whole cents", self.amount))
            })?,
            reason: "requested_by_customer",
            metadata: vec![
                ("refund_id".into(), self.id.clone()),
                ("return_id".into(), return_id.into()),
                ("ra_number".into(), ra_number.into()),
            ],
        })
    }
}

/// What one submission ended with: Stripe's answer (or why there is none),
/// and the refund as recorded afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub stripe: std::result::Result<Refund, SendError>,
    pub recorded: RefundState,
}

/// Asks Stripe for the refund, then records the answer. An `Err` means the
/// answer could not be recorded; Stripe may have made the refund, and the next
/// submission (same key) gets it back and records it.
pub async fn submit(
    refund: &RefundState,
    return_id: &str,
    ra_number: &str,
    stripe: Option<&Stripe>,
    rest: &PostgrestClient,
    service_role_key: &str,
    clock: &dyn Clock,
) -> Result<Submitted> {
    let answer = match stripe {
        Some(stripe) => {
            stripe
                .create_refund(
                    &refund.stripe_request(return_id, ra_number)?,
                    &refund.stripe_key(),
                    clock,
                )
                .await
        }
        None => Err(SendError::transient("STRIPE_SECRET_KEY is not set")),
    };
    let record = match &answer {
        Ok(r) => {
            json!({ "refund_id": refund.id, "stripe_refund_id": r.id, "stripe_status": r.status })
        }
        Err(e) => {
            json!({ "refund_id": refund.id, "error": e.reason(), "permanent": e.is_permanent() })
        }
    };
    let recorded = rest
        .rpc("record_refund_outcome", &record, service_role_key)
        .await?;
    let recorded = RefundState::from_json(&recorded)
        .ok_or_else(|| ApiError::Internal(format!("record_refund_outcome returned {recorded}")))?;
    Ok(Submitted {
        stripe: answer,
        recorded,
    })
}

/// The outbox's `stripe` channel: a refund process-return could not complete
/// at once, queued with `{"refund_id", "return_id", "ra_number"}`. It is
/// submitted with the refund's own idempotency key (so never twice), unless it
/// has been completed or failed since. Stripe's refund id on success.
pub async fn deliver_queued(
    payload: &Value,
    config: &crate::Config,
    clock: &dyn Clock,
) -> std::result::Result<String, SendError> {
    let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    let refund_id = text("refund_id");
    let key = config
        .service_role_key
        .as_deref()
        .ok_or_else(|| SendError::transient("SUPABASE_SERVICE_ROLE_KEY is not set"))?;
    let state = config
        .rest
        .rpc("refund_state", &json!({ "refund_id": refund_id }), key)
        .await
        .map_err(|e| SendError::transient(format!("reading refund {refund_id}: {}", e.code())))?;
    let state = RefundState::from_json(&state)
        .ok_or_else(|| SendError::permanent(format!("no refund {refund_id}")))?;
    if state.has_failed() {
        return Err(SendError::permanent(format!(
            "the refund is {}: {}",
            state.status,
            state.last_error.as_deref().unwrap_or("")
        )));
    }
    if !state.needs_submitting() {
        return Ok(state.stripe_refund_id.unwrap_or_default());
    }
    let submitted = submit(
        &state,
        text("return_id"),
        text("ra_number"),
        config.providers.stripe.as_ref(),
        &config.rest,
        key,
        clock,
    )
    .await
    .map_err(|e| SendError::transient(format!("recording refund {refund_id}: {}", e.code())))?;
    match submitted.stripe {
        Ok(_) if submitted.recorded.has_failed() => Err(SendError::permanent(format!(
            "Stripe reports the refund {}",
            submitted.recorded.status
        ))),
        Ok(r) => Ok(r.id),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(text: &str) -> RefundState {
        RefundState::from_json(&serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_state_and_builds_the_stripe_request() {
        let r = state(
            r#"{"id":"f1","amount":12.50,"payment_intent":"pi_1","status":"pending","stripe_refund_id":null}"#,
        );
        assert!(r.needs_submitting() && !r.has_failed());
        assert_eq!(r.stripe_key(), "refund_f1");
        let req = r.stripe_request("r1", "RA-2026-000001").unwrap();
        assert_eq!(req.amount, 1250);
        assert_eq!(req.payment_intent, "pi_1");
        assert_eq!(
            req.metadata,
            vec![
                ("refund_id".to_owned(), "f1".to_owned()),
                ("return_id".to_owned(), "r1".to_owned()),
                ("ra_number".to_owned(), "RA-2026-000001".to_owned())
            ]
        );
        let done = state(
            r#"{"id":"f1","amount":12.5,"payment_intent":"pi_1","status":"succeeded","stripe_refund_id":"re_1"}"#,
        );
        assert!(!done.needs_submitting());
        assert!(
            state(r#"{"id":"f","amount":1,"payment_intent":"p","status":"canceled"}"#).has_failed()
        );
        assert!(RefundState::from_json(&serde_json::json!({"id": "f"})).is_none());
    }
}
