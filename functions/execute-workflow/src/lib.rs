//! `execute-workflow`: records an event and runs the tenant's marketing
//! workflows that it triggers (seed 000 §5).
//!
//! The request is seed 000's, with an optional `tenant_id` (needed only by a
//! user of several tenants):
//! ```json
//! {"workflow_id": "<uuid, optional>", "trigger_event": "order.created",
//!  "event_data": {"client_id": "<uuid>", "total_amount": 6200}}
//! ```
//! The event is recorded in `platform_events` (its subject is
//! `event_data.client_id`, which must be the tenant's client). Every enabled
//! workflow of the tenant whose `trigger_event` it is and whose conditions
//! hold starts a run, by its re-entry rule; with `workflow_id` only that
//! workflow (another tenant's is 404). The runs it started are advanced
//! within the request until each waits or ends. An `Idempotency-Key` header
//! is the event's key: a repeat records nothing and starts nothing, and is
//! answered with the runs the first call started (`replayed: true`); the
//! same key with another event is 422.
//!
//! The answer (`200`) is seed 000's plus what was started:
//! ```json
//! {"success": true, "workflows_executed": 1, "actions_taken": 1, "event_id": 41,
//!  "runs": [{"run_id": "…", "workflow_id": "…", "status": "waiting"}], "replayed": false}
//! ```
//! `actions_taken` counts the actions completed within this request
//! (messages queued, clients updated). Steps after a wait run in the
//! background: the dispatcher and a pg_cron job advance due runs; messages
//! leave through the outbox, which this request asks to be delivered when
//! it queued any.
//!
//! Everything that decides is SQL (`public.execute_workflow`,
//! `supabase/migrations/20261127000800_workflows.sql`); this function checks
//! the request and names the tenant.

use shared::serde::Deserialize;
use shared::serde_json::{json, Map, Value};
use shared::{Auth, Counted, Ctx, Endpoint, Request, Response, Result, Uuid, Validator};

/// The function's name, as in `rate_limit_policies` and `request_subjects`.
pub const FUNCTION_NAME: &str = "execute-workflow";
/// The largest `event_data`, serialized, in bytes (as the table allows).
pub const MAX_EVENT_BYTES: usize = 65_536;

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInput {
    pub workflow_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub trigger_event: String,
    pub event_data: Map<String, Value>,
    pub idempotency_key: Option<String>,
}

/// An event type: dot-separated lower-case words, e.g. `order.created`
/// (1 to 5 words of at most 40 characters, each starting with a letter).
pub fn is_event_type(s: &str) -> bool {
    let words: Vec<&str> = s.split('.').collect();
    (1..=5).contains(&words.len())
        && words.iter().all(|w| {
            let b = w.as_bytes();
            (1..=40).contains(&b.len())
                && b[0].is_ascii_lowercase()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        })
}

/// The path of the first string (key or value) in `v` holding a NUL, which
/// Postgres cannot store.
fn nul_path(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = format!("{path}.{k}");
            if k.contains('\0') {
                Some(p)
            } else {
                nul_path(x, &p)
            }
        }),
        _ => None,
    }
}

pub fn validate(body: &Value, idempotency_key: Option<String>) -> Result<WorkflowInput> {
    let mut v = Validator::new();
    let obj = v
        .object(
            "",
            body,
            &["workflow_id", "tenant_id", "trigger_event", "event_data"],
        )
        .cloned()
        .unwrap_or_default();
    let workflow_id = v.uuid(
        "workflow_id",
        obj.get("workflow_id").filter(|x| !x.is_null()),
    );
    let tenant_id = v.uuid("tenant_id", obj.get("tenant_id").filter(|x| !x.is_null()));
    let trigger_event = {
        let raw = v.required(&obj, "", "trigger_event");
        v.string("trigger_event", raw, 204)
    };
    if let Some(t) = &trigger_event {
        if !is_event_type(t) {
            v.error(
                "trigger_event",
                "must be an event type: dot-separated lower-case words, e.g. order.created",
            );
        }
    }
    let mut event_data = Map::new();
    match obj.get("event_data") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            event_data = m.clone();
            let data = Value::Object(m.clone());
            if data.to_string().len() > MAX_EVENT_BYTES {
                v.error(
                    "event_data",
                    format!("must be at most {MAX_EVENT_BYTES} bytes of JSON"),
                );
            } else if let Some(p) = nul_path(&data, "event_data") {
                v.error(&p, "must not contain NUL (\\u0000) characters");
            }
            if let Some(c) = m.get("client_id").filter(|c| !c.is_null()) {
                v.uuid("event_data.client_id", Some(c));
            }
        }
        Some(_) => v.error("event_data", "must be an object"),
    }
    let trigger_event = trigger_event.unwrap_or_default();
    v.finish(|| WorkflowInput {
        workflow_id,
        tenant_id,
        trigger_event,
        event_data,
        idempotency_key,
    })
}

/// `public.execute_workflow`'s argument.
pub fn rpc_args(input: &WorkflowInput, tenant: Uuid) -> Value {
    let mut payload = json!({
        "tenant_id": tenant,
        "trigger_event": input.trigger_event,
        "event_data": input.event_data,
    });
    if let Some(w) = input.workflow_id {
        payload["workflow_id"] = json!(w);
    }
    if let Some(k) = &input.idempotency_key {
        payload["idempotency_key"] = json!(k);
    }
    json!({ "payload": payload })
}

/// What `public.execute_workflow` answers.
#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Executed {
    pub workflows_executed: u64,
    pub actions_taken: u64,
    /// Of the actions, the messages queued in the outbox.
    #[serde(default)]
    pub messages_queued: u64,
    pub event_id: Option<i64>,
    #[serde(default)]
    pub runs: Vec<Value>,
    #[serde(default)]
    pub replayed: bool,
}

pub fn response(e: &Executed) -> Value {
    json!({
        "success": true,
        "workflows_executed": e.workflows_executed,
        "actions_taken": e.actions_taken,
        "event_id": e.event_id,
        "runs": e.runs,
        "replayed": e.replayed,
    })
}

pub struct ExecuteWorkflow;

impl Endpoint for ExecuteWorkflow {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = WorkflowInput;

    fn input(req: &Request, _now: i64) -> Result<WorkflowInput> {
        let key = req.idempotency_key()?;
        validate(&req.json_object()?, key)
    }

    async fn run(input: WorkflowInput, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller()?;
        let tenant = ctx.tenant(input.tenant_id).await?;
        let executed: Executed = ctx
            .config
            .rest
            .rpc_counted_as(
                "execute_workflow",
                &rpc_args(&input, tenant),
                caller,
                Counted {
                    function_name: FUNCTION_NAME,
                    subject_id: tenant,
                },
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        if executed.messages_queued > 0 {
            ctx.deliver_outbox();
        }
        Ok(Response::json(200, &response(&executed)))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(ExecuteWorkflow);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;
    use shared::ApiError;

    fn errors(body: &str) -> Map<String, Value> {
        match validate(&serde_json::from_str(body).unwrap(), None) {
            Err(ApiError::Validation(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn event_types() {
        for ok in [
            "order.created",
            "client.inactive",
            "a",
            "campaign.email.opened",
            "x_1.y2",
        ] {
            assert!(is_event_type(ok), "{ok}");
        }
        for bad in [
            "",
            "Order.created",
            "order.",
            ".order",
            "order..created",
            "1order",
            "order created",
            "a.b.c.d.e.f",
            &"a".repeat(41),
            "order-created",
        ] {
            assert!(!is_event_type(bad), "{bad}");
        }
    }

    #[test]
    fn a_full_request() {
        let wf = Uuid::from_u128(0x1111);
        let client = Uuid::from_u128(0x2222);
        let body: Value = serde_json::from_str(&format!(
            r#"{{"workflow_id": "{wf}", "trigger_event": "order.created",
                 "event_data": {{"client_id": "{client}", "total_amount": 6200.50}}}}"#
        ))
        .unwrap();
        let i = validate(&body, Some("k-1".into())).unwrap();
        assert_eq!(i.workflow_id, Some(wf));
        assert_eq!(i.trigger_event, "order.created");
        let args = rpc_args(&i, Uuid::nil());
        assert_eq!(args["payload"]["workflow_id"], json!(wf));
        assert_eq!(args["payload"]["idempotency_key"], "k-1");
        assert_eq!(args["payload"]["tenant_id"], json!(Uuid::nil()));
        // Numbers keep their text (arbitrary_precision).
        assert_eq!(
            args["payload"]["event_data"]["total_amount"].to_string(),
            "6200.50"
        );
    }

    #[test]
    fn event_data_is_optional_and_without_key_none_is_sent() {
        let i = validate(&json!({"trigger_event": "lead.created"}), None).unwrap();
        assert!(i.event_data.is_empty());
        let args = rpc_args(&i, Uuid::nil());
        assert!(args["payload"].get("idempotency_key").is_none());
        assert!(args["payload"].get("workflow_id").is_none());
        assert_eq!(args["payload"]["event_data"], json!({}));
    }

    #[test]
    fn rejections_name_each_field() {
        let e = errors(
            r#"{"workflow_id": "nope", "trigger_event": "Order Created", "event_data": [], "extra": 1}"#,
        );
        assert_eq!(e["workflow_id"], "must be a UUID string");
        assert!(e["trigger_event"]
            .as_str()
            .unwrap()
            .starts_with("must be an event type"));
        assert_eq!(e["event_data"], "must be an object");
        assert_eq!(e["extra"], "unknown field");

        let e = errors(r#"{"event_data": {"client_id": "x"}}"#);
        assert_eq!(e["trigger_event"], "is required");
        assert_eq!(e["event_data.client_id"], "must be a UUID string");

        let e = errors(r#"{"trigger_event": 5}"#);
        assert_eq!(e["trigger_event"], "must be a string");

        let e = errors(r#"{"trigger_event": "a.b", "event_data": {"notes": ["ok", "x\u0000y"]}}"#);
        assert_eq!(
            e["event_data.notes[1]"],
            "must not contain NUL (\\u0000) characters"
        );

        let big = format!(
            r#"{{"trigger_event": "a.b", "event_data": {{"t": "{}"}}}}"#,
            "x".repeat(MAX_EVENT_BYTES)
        );
        assert!(errors(&big)["event_data"]
            .as_str()
            .unwrap()
            .contains("65536 bytes"));
        assert_eq!(
            errors("[1]").get("body").and_then(Value::as_str),
            Some("must be an object")
        );
    }

    #[test]
    fn the_answer_is_the_seeds_plus_the_runs() {
        let e: Executed = serde_json::from_value(json!({
            "success": true, "workflows_executed": 2, "actions_taken": 1, "event_id": 7,
            "runs": [{"run_id": "r", "workflow_id": "w", "status": "waiting"}], "replayed": false
        }))
        .unwrap();
        let r = response(&e);
        assert_eq!(r["success"], true);
        assert_eq!(r["workflows_executed"], 2);
        assert_eq!(r["actions_taken"], 1);
        assert_eq!(r["runs"][0]["status"], "waiting");
    }
}
