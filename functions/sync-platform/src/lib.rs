//! `sync-platform`: brings a connected store's products, orders, customers
//! and abandoned checkouts into the commerce tables, resumably.
//!
//! `POST {"integration_id", "resources"?: [...], "full"?: bool}` (an admin)
//! starts a sync, or joins the one running for the integration, and answers
//! `202` with the job. The work goes on after the answer:
//!
//! - a resource never synced, or every resource with `full: true`, is read
//!   with a **bulk operation** (its JSONL, a chunk of root objects at a time);
//! - otherwise it is read **incrementally**: GraphQL pages sorted by
//!   `updated_at`, with `updated_at:>='<last mark>'`, through the cursor;
//! - each chunk or page is written in one transaction with the resource's
//!   checkpoint (`commerce_sync_step`), so an invocation killed anywhere
//!   leaves either the whole page or none of it, and the next one carries on
//!   from the checkpoint. Upserts are keyed on the store's ids, so reading a
//!   page twice changes nothing;
//! - an invocation works for `SYNC_BUDGET_SECONDS` (default 100, inside the
//!   platform's 150 s wall clock), then gives up its lease and hands over to
//!   a new invocation; the pg_cron job `resume-commerce-syncs` also resumes,
//!   every minute, any job whose invocation died (its lease, extended by
//!   each page, ran out after `SYNC_LEASE_SECONDS`, default 120);
//! - the throttle is honoured: a `THROTTLED` answer is retried when the
//!   bucket has refilled to the query's cost, and a page is not sent before
//!   the bucket holds what it will cost.
//!
//! `POST {"job_id"}` with the service role (pg_cron, or the previous
//! invocation) resumes a job.

use std::time::Duration;

use shared::commerce::{
    bulk_chunk, latest_updated, nodes, record_from_node, token_context, RESOURCES,
};
use shared::providers::shopify::{Answer, Cost, Shopify};
use shared::providers::{Clock, SendError};
use shared::serde_json::{json, Map, Value};
use shared::{
    ApiError, Auth, Config, Counted, Ctx, Endpoint, Principal, Request, Response, Result, Uuid,
};

pub const FUNCTION_NAME: &str = "sync-platform";
/// Root objects per bulk chunk (one transaction each).
pub const BULK_CHUNK: usize = 250;
/// How often a page or a bulk poll waits for the throttle before giving up
/// the invocation (the next resumes).
const MAX_THROTTLED: u32 = 20;

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Start {
        integration_id: Uuid,
        resources: Vec<&'static str>,
        full: bool,
    },
    Resume {
        job_id: Uuid,
    },
}

/// Validates a request body.
pub fn read(body: &Value) -> Result<Input> {
    let mut problems = Map::new();
    if let Some(job) = body.get("job_id") {
        return match job.as_str().and_then(|j| Uuid::try_parse(j).ok()) {
            Some(job_id) if body.as_object().is_some_and(|o| o.len() == 1) => {
                Ok(Input::Resume { job_id })
            }
            Some(_) => Err(ApiError::field("job_id", "is given alone")),
            None => Err(ApiError::field("job_id", "must be a UUID")),
        };
    }
    let integration_id = match body.get("integration_id") {
        Some(Value::String(s)) => Uuid::try_parse(s).ok(),
        _ => None,
    };
    if integration_id.is_none() {
        problems.insert("integration_id".into(), json!("is required (a UUID)"));
    }
    let mut resources: Vec<&'static str> = Vec::new();
    match body.get("resources") {
        None | Some(Value::Null) => resources = RESOURCES.to_vec(),
        Some(Value::Array(list)) if !list.is_empty() => {
            for r in list {
                match r.as_str().and_then(|r| RESOURCES.iter().find(|k| **k == r)) {
                    Some(k) if !resources.contains(k) => resources.push(k),
                    Some(_) => {
                        problems.insert("resources".into(), json!("must not repeat a resource"));
                    }
                    None => {
                        problems.insert(
                            "resources".into(),
                            json!(format!("must be a list of {}", RESOURCES.join(", "))),
                        );
                    }
                }
            }
        }
        Some(_) => {
            problems.insert(
                "resources".into(),
                json!(format!(
                    "must be a non-empty list of {}",
                    RESOURCES.join(", ")
                )),
            );
        }
    }
    let full = match body.get("full") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.insert("full".into(), json!("must be true or false"));
            false
        }
    };
    for key in body.as_object().into_iter().flat_map(|o| o.keys()) {
        if !["integration_id", "resources", "full"].contains(&key.as_str()) {
            problems.insert(key.clone(), json!("is not a field of this request"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(Input::Start {
        integration_id: integration_id.expect("validated"),
        resources,
        full,
    })
}

// ---------------------------------------------------------------------------
// The queries
// ---------------------------------------------------------------------------

const PRODUCT: &str =
    "id title descriptionHtml vendor productType status tags createdAt updatedAt \
images(first: 5) { nodes { url } }";
const VARIANT: &str = "id title sku price compareAtPrice inventoryQuantity \
inventoryItem { requiresShipping measurement { weight { unit value } } }";
const ORDER: &str = "id name email phone note tags createdAt updatedAt currencyCode \
displayFinancialStatus displayFulfillmentStatus paymentGatewayNames \
customer { id firstName lastName email phone } \
totalPriceSet { shopMoney { amount currencyCode } } subtotalPriceSet { shopMoney { amount } } \
totalTaxSet { shopMoney { amount } } totalDiscountsSet { shopMoney { amount } } \
shippingAddress { name address1 address2 city province country zip phone } \
billingAddress { name address1 address2 city province country zip phone }";
const LINE_ITEM: &str =
    "id title variantTitle sku quantity originalUnitPriceSet { shopMoney { amount } } \
variant { id } product { id }";
const CUSTOMER: &str = "id firstName lastName email phone tags numberOfOrders \
amountSpent { amount currencyCode } createdAt updatedAt";
const CHECKOUT: &str = "id name abandonedCheckoutUrl createdAt updatedAt completedAt \
customer { id firstName lastName email phone } totalPriceSet { shopMoney { amount currencyCode } }";
const CHECKOUT_LINE: &str =
    "id title variantTitle quantity originalUnitPriceSet { shopMoney { amount } } \
variant { id image { url } } product { id }";

/// A resource as GraphQL Admin names it: the connection, its node's fields,
/// and the child connection (name, fields) a node carries.
pub struct Shape {
    pub connection: &'static str,
    /// `UPDATED_AT` where the connection has it (abandoned checkouts do not:
    /// they are read in `CREATED_AT` order, see [`Run::incremental`]).
    pub sort_key: &'static str,
    pub fields: &'static str,
    pub child: Option<(&'static str, &'static str)>,
    /// What one child costs (1 + its nested objects), for the follow-up
    /// query that reads the rest of a node's children.
    pub child_cost: u32,
    /// What one node costs in Shopify's model (1 per object, nested objects
    /// included; a connection 2 + first × its node); a page is as many nodes
    /// as fit in a query's 1,000 points.
    pub node_cost: u32,
}

/// Children asked per node in a page; a node with more is completed with
/// follow-up queries ([`more_children`]).
pub const CHILDREN_PER_PAGE: u32 = 10;

impl Shape {
    /// Nodes per page: the most whose requested cost stays within 1,000.
    pub fn page(&self) -> u32 {
        ((1000 - 2) / self.node_cost).min(250)
    }
}

pub fn shape(resource: &str) -> Shape {
    match resource {
        "products" => Shape {
            connection: "products",
            sort_key: "UPDATED_AT",
            fields: PRODUCT,
            child: Some(("variants", VARIANT)),
            child_cost: 4,
            // 1 + images (2 + 5) + variants (2 + 10 × (1 + inventoryItem, measurement, weight)).
            node_cost: 50,
        },
        "orders" => Shape {
            connection: "orders",
            sort_key: "UPDATED_AT",
            fields: ORDER,
            child: Some(("lineItems", LINE_ITEM)),
            child_cost: 5,
            // 1 + customer, 4 money sets (2 each), 2 addresses + line items
            // (2 + 10 × (1 + price set 2, variant, product)).
            node_cost: 64,
        },
        "abandoned_checkouts" => Shape {
            connection: "abandonedCheckouts",
            sort_key: "CREATED_AT",
            fields: CHECKOUT,
            child: Some(("lineItems", CHECKOUT_LINE)),
            child_cost: 6,
            // 1 + customer, price set (2) + line items (2 + 10 × (1 + price set 2,
            // variant, its image, product)).
            node_cost: 66,
        },
        _ => Shape {
            connection: "customers",
            sort_key: "UPDATED_AT",
            fields: CUSTOMER,
            child: None,
            child_cost: 1,
            // 1 + amountSpent.
            node_cost: 2,
        },
    }
}

/// The search filter for records changed since `since` (inclusive: a record
/// updated in the same second as the mark is read again, which is harmless).
pub fn since_filter(since: Option<&str>) -> Option<String> {
    since.map(|s| format!("updated_at:>='{s}'"))
}

/// One page of an incremental read.
pub fn page_query(resource: &str) -> String {
    let s = shape(resource);
    let child = s
        .child
        .map(|(name, fields)| {
            format!(" {name}(first: {CHILDREN_PER_PAGE}) {{ nodes {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }}")
        })
        .unwrap_or_default();
    format!(
        "query page($first: Int!, $after: String, $query: String) {{ {conn}(first: $first, after: $after, \
query: $query, sortKey: {sort}) {{ nodes {{ {fields}{child} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        conn = s.connection,
        sort = s.sort_key,
        fields = s.fields,
    )
}

/// The rest of one node's children, after the first page of them: as many
/// at a time as fit in 1,000 points (`node` 1, the connection 2 + first ×
/// the child's cost): variants 249, order line items 199, checkout items 166.
pub fn children_query(resource: &str) -> Option<String> {
    let s = shape(resource);
    let (name, fields) = s.child?;
    let first = ((1000 - 3) / s.child_cost).min(250);
    Some(format!(
        "query more($id: ID!, $after: String) {{ node(id: $id) {{ id ... on {typ} {{ {name}(first: {first}, after: $after) \
{{ nodes {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }} }} }}",
        typ = match resource {
            "products" => "Product",
            "orders" => "Order",
            _ => "AbandonedCheckout",
        }
    ))
}

/// The inner query of a bulk operation (connections without `first`, as
/// bulk queries are written).
pub fn bulk_query(resource: &str, since: Option<&str>) -> String {
    let s = shape(resource);
    let filter = since_filter(since)
        .map(|f| format!("(query: \"{}\")", f.replace('"', "")))
        .unwrap_or_default();
    // In a bulk file every nested connection becomes lines of its own: the
    // product's picture comes inline instead (its featured media).
    let fields = s.fields.replace(
        "images(first: 5) { nodes { url } }",
        "featuredMedia { preview { image { url } } }",
    );
    let child = s
        .child
        .map(|(name, fields)| format!(" {name} {{ edges {{ node {{ {fields} }} }} }}"))
        .unwrap_or_default();
    format!(
        "{{ {conn}{filter} {{ edges {{ node {{ {fields}{child} }} }} }} }}",
        conn = s.connection
    )
}

pub const RUN_BULK: &str =
    "mutation run($query: String!) { bulkOperationRunQuery(query: $query) { \
bulkOperation { id status createdAt } userErrors { field message code } } }";
pub const POLL_BULK: &str =
    "query poll($id: ID!) { node(id: $id) { ... on BulkOperation { id status errorCode \
objectCount rootObjectCount url partialDataUrl createdAt completedAt } } }";

// ---------------------------------------------------------------------------
// The work
// ---------------------------------------------------------------------------

/// Why an invocation stopped before the job was done.
#[derive(Debug)]
enum Stop {
    /// Time is up: hand over.
    Budget,
    /// Another invocation holds the job.
    LeaseLost,
    /// Try again later (a 5xx, a timeout, a long throttle).
    Transient(String),
    /// The job cannot go on (a revoked token, a refused query).
    Failed(String),
}

impl From<SendError> for Stop {
    fn from(e: SendError) -> Self {
        if e.is_permanent() {
            Stop::Failed(e.reason().to_owned())
        } else {
            Stop::Transient(e.reason().to_owned())
        }
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        if e.code() == "SYNC_LEASE_LOST" {
            Stop::LeaseLost
        } else if e.code() == "INTEGRATION_NOT_CONNECTED" {
            Stop::Failed(e.message())
        } else {
            Stop::Transient(format!("{}: {}", e.code(), e.message()))
        }
    }
}

/// One invocation's hold on a job.
struct Run<'a> {
    config: &'static Config,
    clock: &'a dyn Clock,
    app: Shopify,
    service: &'static str,
    job: Uuid,
    owner: String,
    shop: String,
    token: String,
    lease_seconds: u64,
    deadline_ms: f64,
    /// Throttled answers since the last step (recorded with it).
    throttled: u32,
    /// Points the next page will ask, and the bucket after the last answer.
    last_cost: Option<Cost>,
    /// The resource being read (what a lease-keeping touch names).
    current: String,
}

impl Run<'_> {
    fn out_of_time(&self) -> bool {
        self.clock.monotonic_ms() > self.deadline_ms
    }

    /// A GraphQL query that honours the throttle: it first waits, when the
    /// last answer left too few points for it, for the bucket to refill; a
    /// `THROTTLED` answer (charged nothing) is asked again once the bucket
    /// holds the query's cost. The lease is kept through every wait.
    async fn query(&mut self, query: &str, variables: &Value) -> std::result::Result<Value, Stop> {
        if let Some(cost) = self.last_cost {
            self.wait(cost.wait_for(cost.requested)).await?;
        }
        let mut refused = 0;
        loop {
            match self
                .app
                .graphql_once(&self.shop, &self.token, query, variables, self.clock)
                .await?
            {
                Answer::Data(data, cost) => {
                    if cost.is_some() {
                        self.last_cost = cost;
                    }
                    return Ok(data);
                }
                Answer::Throttled(cost) => {
                    self.throttled += 1;
                    refused += 1;
                    if refused > MAX_THROTTLED {
                        return Err(Stop::Transient(format!(
                            "still throttled after {MAX_THROTTLED} waits"
                        )));
                    }
                    self.last_cost = Some(cost);
                    self.wait(cost.wait_for(cost.requested)).await?;
                }
            }
        }
    }

    /// Sleeps `d`, touching the lease every third of it, so a long wait for
    /// the throttle does not hand the job to another invocation.
    async fn wait(&mut self, d: Duration) -> std::result::Result<(), Stop> {
        let slice = Duration::from_secs((self.lease_seconds / 3).max(1));
        let mut left = d;
        while left > Duration::ZERO {
            let part = left.min(slice);
            self.clock.sleep(part).await;
            left -= part;
            if left > Duration::ZERO {
                self.touch().await?;
            }
        }
        Ok(())
    }

    /// Extends the lease (a step that writes nothing).
    async fn touch(&mut self) -> std::result::Result<(), Stop> {
        let resource = self.current.clone();
        self.step(&resource, vec![], Map::new()).await.map(|_| ())
    }

    /// Writes one page and the resource's checkpoint in one transaction.
    async fn step(
        &mut self,
        resource: &str,
        records: Vec<Value>,
        mut checkpoint: Map<String, Value>,
    ) -> std::result::Result<Value, Stop> {
        checkpoint.insert("throttled_now".into(), json!(self.throttled));
        let job = self
            .config
            .rest
            .rpc(
                "commerce_sync_step",
                &json!({
                    "job_id": self.job,
                    "owner": self.owner,
                    "resource": resource,
                    "records": records,
                    "checkpoint": checkpoint,
                    "lease_seconds": self.lease_seconds,
                }),
                self.service,
            )
            .await?;
        self.throttled = 0;
        Ok(job)
    }

    /// Children beyond the first page of a node (a product with more than
    /// 20 variants, an order with more than 20 line items).
    async fn more_children(
        &mut self,
        resource: &str,
        node: &mut Value,
    ) -> std::result::Result<(), Stop> {
        let Some((name, _)) = shape(resource).child else {
            return Ok(());
        };
        let Some(query) = children_query(resource) else {
            return Ok(());
        };
        let mut after = node[name]["pageInfo"]["endCursor"].clone();
        while node[name]["pageInfo"]["hasNextPage"] == json!(true) {
            let data = self
                .query(&query, &json!({"id": node["id"], "after": after}))
                .await?;
            let more = &data["node"][name];
            let extra: Vec<Value> = nodes(more).into_iter().cloned().collect();
            if let Some(list) = node[name]["nodes"].as_array_mut() {
                list.extend(extra);
            }
            node[name]["pageInfo"] = more["pageInfo"].clone();
            after = more["pageInfo"]["endCursor"].clone();
        }
        Ok(())
    }

    /// An incremental read, page by page, until done or out of time.
    async fn incremental(
        &mut self,
        resource: &str,
        cp: &Map<String, Value>,
    ) -> std::result::Result<bool, Stop> {
        let query = page_query(resource);
        let since = cp.get("since").and_then(Value::as_str).map(str::to_owned);
        let mut cursor = cp.get("cursor").cloned().unwrap_or(Value::Null);
        // The newest updated_at read so far (kept across invocations).
        let mut newest = cp.get("newest").and_then(Value::as_str).map(str::to_owned);
        let conn = shape(resource).connection;
        let began = cp
            .get("began_at")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| self.clock.now_unix_secs());
        loop {
            if self.out_of_time() {
                return Err(Stop::Budget);
            }
            let data = self
                .query(
                    &query,
                    &json!({"first": shape(resource).page(), "after": cursor, "query": since_filter(since.as_deref())}),
                )
                .await?;
            let page = &data[conn];
            let mut list: Vec<Value> = nodes(page).into_iter().cloned().collect();
            for node in list.iter_mut() {
                self.more_children(resource, node).await?;
            }
            let records: Vec<Value> = list
                .iter()
                .map(|n| record_from_node(resource, n, None))
                .collect();
            if let Some(latest) = latest_updated(&records) {
                if newest.as_deref().map_or(true, |h| latest.as_str() > h) {
                    newest = Some(latest);
                }
            }
            let more = page["pageInfo"]["hasNextPage"] == json!(true);
            cursor = page["pageInfo"]["endCursor"].clone();
            let mut next = Map::new();
            next.insert("cursor".into(), cursor.clone());
            next.insert("began_at".into(), json!(began));
            next.insert("newest".into(), json!(newest));
            next.insert(
                "high_water".into(),
                json!(next_mark(since.as_deref(), newest.as_deref(), began)),
            );
            next.insert("done".into(), json!(!more));
            self.step(resource, records, next).await?;
            if !more {
                return Ok(true);
            }
        }
    }

    /// A bulk read: start the operation, wait for it, then read its file a
    /// chunk at a time. Each stage is checkpointed.
    async fn bulk(
        &mut self,
        resource: &str,
        cp: &Map<String, Value>,
    ) -> std::result::Result<bool, Stop> {
        let mut cp = cp.clone();
        loop {
            if self.out_of_time() {
                return Err(Stop::Budget);
            }
            let bulk_id = cp.get("bulk_id").and_then(Value::as_str).map(str::to_owned);
            let url = cp
                .get("bulk_url")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (bulk_id, url) {
                (None, _) => {
                    let attempts = cp.get("bulk_attempts").and_then(Value::as_u64).unwrap_or(0);
                    if attempts >= 3 {
                        return Err(Stop::Failed(format!(
                            "{resource}: the bulk operation failed 3 times"
                        )));
                    }
                    // A full read has no mark; a bulk read of changes only (none today) would.
                    let since = cp.get("since").and_then(Value::as_str);
                    let data = self
                        .query(RUN_BULK, &json!({"query": bulk_query(resource, since)}))
                        .await?;
                    let run = &data["bulkOperationRunQuery"];
                    let errors = run["userErrors"].as_array().cloned().unwrap_or_default();
                    if !errors.is_empty() {
                        // Too many operations at once on this store: try later.
                        return Err(Stop::Transient(format!(
                            "{resource}: bulk operation refused: {}",
                            Value::Array(errors)
                        )));
                    }
                    let id = run["bulkOperation"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if id.is_empty() {
                        return Err(Stop::Transient(format!("{resource}: no bulk operation id")));
                    }
                    let mut next = Map::new();
                    next.insert("bulk_id".into(), json!(id));
                    next.insert(
                        "bulk_created_at".into(),
                        run["bulkOperation"]["createdAt"].clone(),
                    );
                    next.insert("bulk_attempts".into(), json!(attempts + 1));
                    self.step(resource, vec![], next.clone()).await?;
                    cp.extend(next);
                }
                (Some(id), None) => {
                    let data = self.query(POLL_BULK, &json!({"id": id})).await?;
                    let op = &data["node"];
                    let status = op["status"].as_str().unwrap_or_default();
                    match status {
                        "COMPLETED" if op["url"].is_string() || op["objectCount"] == json!("0") => {
                            let mut next = Map::new();
                            next.insert("bulk_url".into(), op["url"].clone());
                            next.insert("line".into(), json!(0));
                            next.insert("objects".into(), op["objectCount"].clone());
                            if !op["createdAt"].is_null() {
                                next.insert("bulk_created_at".into(), op["createdAt"].clone());
                            }
                            if op["url"].is_null() {
                                // Nothing to read: done.
                                next.insert("done".into(), json!(true));
                                next.insert(
                                    "high_water".into(),
                                    cp.get("bulk_created_at").cloned().unwrap_or(Value::Null),
                                );
                                self.step(resource, vec![], next).await?;
                                return Ok(true);
                            }
                            self.step(resource, vec![], next.clone()).await?;
                            cp.extend(next);
                        }
                        "CREATED" | "RUNNING" => {
                            // Keep the lease while waiting.
                            self.step(resource, vec![], Map::new()).await?;
                            self.clock.sleep(Duration::from_millis(500)).await;
                        }
                        _ => {
                            // Failed, canceled, expired, or completed with partial data only: run it again.
                            let mut next = Map::new();
                            next.insert("bulk_id".into(), Value::Null);
                            next.insert(
                                "bulk_error".into(),
                                json!(format!("{status} {}", op["errorCode"])),
                            );
                            self.step(resource, vec![], next.clone()).await?;
                            cp.extend(next);
                        }
                    }
                }
                (Some(_), Some(url)) => {
                    self.touch().await?;
                    let body = match self.app.download(&url, self.clock).await {
                        Ok(b) => b,
                        Err(e) if e.is_permanent() => {
                            // The file's URL expired: run the operation again.
                            let mut next = Map::new();
                            next.insert("bulk_id".into(), Value::Null);
                            next.insert("bulk_url".into(), Value::Null);
                            next.insert("line".into(), json!(0));
                            self.step(resource, vec![], next.clone()).await?;
                            cp.extend(next);
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let lines: Vec<&str> = body.lines().collect();
                    let mut line = cp.get("line").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let high = cp.get("bulk_created_at").cloned().unwrap_or(Value::Null);
                    let chunk =
                        var_secs(self.config, "SYNC_BULK_CHUNK", BULK_CHUNK as u64) as usize;
                    loop {
                        let (records, next_line) = bulk_chunk(resource, &lines, line, chunk)
                            .map_err(|e| Stop::Failed(format!("{resource}: {e}")))?;
                        let done = next_line >= lines.len();
                        let mut next = Map::new();
                        next.insert("line".into(), json!(next_line));
                        next.insert("done".into(), json!(done));
                        if done {
                            next.insert("high_water".into(), high.clone());
                            // The file's signed URL is not kept once read.
                            next.insert("bulk_url".into(), Value::Null);
                        }
                        self.step(resource, records, next).await?;
                        line = next_line;
                        if done {
                            return Ok(true);
                        }
                        if self.out_of_time() {
                            return Err(Stop::Budget);
                        }
                    }
                }
            }
        }
    }
}

/// How far behind the read's start the next mark stays: Shopify's search
/// (the `query:` filter) is eventually consistent, and checkouts are read in
/// creation order, so a record changed just before or during the read may
/// not be met by it. The next read, from no later than this, meets it.
pub const MARK_MARGIN_SECS: i64 = 60;

/// The mark the next incremental read starts from: the newest `updated_at`
/// read, but no later than the read's start less [`MARK_MARGIN_SECS`], and
/// never earlier than where this read started from.
pub fn next_mark(since: Option<&str>, newest: Option<&str>, began: i64) -> Option<String> {
    let cap = rfc3339(began - MARK_MARGIN_SECS);
    let capped = newest.map(|n| {
        if n > cap.as_str() {
            cap.clone()
        } else {
            n.to_owned()
        }
    });
    match (since, capped) {
        (Some(s), Some(c)) if s > c.as_str() => Some(s.to_owned()),
        (s, None) => s.map(str::to_owned),
        (_, c) => c,
    }
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-11-27T10:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn var_secs(config: &Config, name: &str, default: u64) -> u64 {
    config
        .var(name)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// Works on a job for one invocation's budget: claims it, syncs resource by
/// resource from the checkpoints, and hands over or finishes.
pub async fn work(config: &'static Config, clock: &dyn Clock, job_id: Uuid) {
    let Some(service) = config.service_role_key.as_deref() else {
        log("SUPABASE_SERVICE_ROLE_KEY is not set");
        return;
    };
    let budget = var_secs(config, "SYNC_BUDGET_SECONDS", 100);
    let lease = var_secs(config, "SYNC_LEASE_SECONDS", 120);
    let claimed = match config
        .rest
        .rpc(
            "claim_commerce_sync",
            &json!({"job_id": job_id, "lease_seconds": lease}),
            service,
        )
        .await
    {
        Ok(c) if c.is_object() => c,
        Ok(_) => return, // finished, or another invocation holds it
        Err(e) => {
            log(&format!("claim {job_id}: {}", e.message()));
            return;
        }
    };
    let owner = claimed["owner"].as_str().unwrap_or_default().to_owned();
    let integration = &claimed["integration"];
    let shop = integration["store_domain"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let tenant = integration["tenant_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let release = |error: Option<String>, failed: bool| {
        let owner = owner.clone();
        async move {
            let _ = config
                .rest
                .rpc(
                    "release_commerce_sync",
                    &json!({"job_id": job_id, "owner": owner, "error": error, "failed": failed}),
                    service,
                )
                .await;
        }
    };
    if integration["status"] != json!("connected") {
        release(Some("the integration is not connected".into()), true).await;
        return;
    }
    let token = match vault::Keyring::parse(config.var(vault::KEYS_VAR).unwrap_or_default())
        .and_then(|k| {
            k.open(
                integration["token"].as_str().unwrap_or_default(),
                token_context(&tenant, &shop).as_bytes(),
            )
        }) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) => {
            release(
                Some(format!(
                    "the store's token cannot be opened: {}",
                    e.message()
                )),
                true,
            )
            .await;
            return;
        }
    };
    let mut run = Run {
        config,
        clock,
        app: Shopify::from_config(config),
        service,
        job: job_id,
        owner: owner.clone(),
        shop,
        token,
        lease_seconds: lease,
        deadline_ms: clock.monotonic_ms() + budget as f64 * 1000.0,
        throttled: 0,
        last_cost: None,
        current: String::new(),
    };
    let job = &claimed["job"];
    let resources: Vec<String> = job["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    for resource in resources {
        let cp = job["checkpoints"][&resource]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if cp.get("done") == Some(&json!(true)) {
            continue;
        }
        run.current = resource.clone();
        let outcome = if cp.get("mode").and_then(Value::as_str) == Some("bulk") {
            run.bulk(&resource, &cp).await
        } else {
            run.incremental(&resource, &cp).await
        };
        match outcome {
            Ok(_) => {}
            Err(Stop::LeaseLost) => return,
            Err(Stop::Budget) => {
                release(None, false).await;
                hand_over(config, service, job_id).await;
                return;
            }
            Err(Stop::Transient(reason)) => {
                // pg_cron resumes it within a minute.
                release(Some(reason), false).await;
                return;
            }
            Err(Stop::Failed(reason)) => {
                release(Some(reason), true).await;
                return;
            }
        }
    }
}

/// Starts the next invocation at once (pg_cron would within a minute).
async fn hand_over(config: &Config, service: &str, job_id: Uuid) {
    let _ = reqwest_post(
        &format!("{}/{FUNCTION_NAME}", config.functions_url),
        service,
        &json!({ "job_id": job_id }),
    )
    .await;
}

async fn reqwest_post(url: &str, key: &str, body: &Value) -> std::result::Result<(), String> {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    shared::runtime::log_error(&format!("{FUNCTION_NAME}: {message}"));
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{FUNCTION_NAME}: {message}");
}

/// The function.
pub struct SyncPlatform;

impl Endpoint for SyncPlatform {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::UserOrServiceRole;
    type Input = Input;

    fn input(req: &Request, _now: i64) -> Result<Input> {
        // Joining the running sync is what makes a repeat harmless; a header
        // key is still checked like everywhere.
        req.idempotency_key()?;
        read(&req.json_object()?)
    }

    async fn run(input: Input, ctx: &Ctx<'_>) -> Result<Response> {
        let (job_id, answer) = match (input, &ctx.principal) {
            (Input::Resume { job_id }, Principal::Service) => {
                (job_id, json!({"job_id": job_id, "resumed": true}))
            }
            (Input::Resume { .. }, _) => {
                return Err(ApiError::Forbidden {
                    message: "only the service role resumes a sync".into(),
                    details: json!({}),
                })
            }
            (Input::Start { .. }, Principal::Service) => {
                return Err(ApiError::field(
                    "job_id",
                    "is required with the service role",
                ))
            }
            (
                Input::Start {
                    integration_id,
                    resources,
                    full,
                },
                _,
            ) => {
                let caller = ctx.caller()?;
                let job: Value = ctx
                    .config
                    .rest
                    .rpc_counted_as(
                        "start_commerce_sync",
                        &json!({"integration_id": integration_id, "resources": resources, "full_sync": full}),
                        caller,
                        Counted {
                            function_name: FUNCTION_NAME,
                            subject_id: integration_id,
                        },
                        ctx.service_role_key(),
                        ctx.clock,
                    )
                    .await?;
                let id = job["id"]
                    .as_str()
                    .and_then(|s| Uuid::try_parse(s).ok())
                    .ok_or_else(|| {
                        ApiError::Internal("start_commerce_sync returned no job".into())
                    })?;
                (id, job)
            }
        };
        let config = ctx.config;
        #[cfg(target_arch = "wasm32")]
        ctx.after(async move { work(config, &shared::runtime::JsClock, job_id).await });
        #[cfg(not(target_arch = "wasm32"))]
        work(config, ctx.clock, job_id).await;
        Ok(Response::json(202, &answer))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(SyncPlatform);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_an_integration_and_known_resources() {
        let id = "6f1c1c1e-0000-4000-8000-000000000001";
        assert_eq!(
            read(&json!({"integration_id": id})).unwrap(),
            Input::Start {
                integration_id: Uuid::try_parse(id).unwrap(),
                resources: RESOURCES.to_vec(),
                full: false
            }
        );
        assert_eq!(
            read(&json!({"integration_id": id, "resources": ["orders"], "full": true})).unwrap(),
            Input::Start {
                integration_id: Uuid::try_parse(id).unwrap(),
                resources: vec!["orders"],
                full: true
            }
        );
        let d = read(&json!({"resources": ["orders", "orders", "refunds"], "full": "yes", "x": 1}))
            .unwrap_err()
            .details();
        assert_eq!(d["integration_id"], "is required (a UUID)");
        assert!(d["resources"].is_string());
        assert_eq!(d["full"], "must be true or false");
        assert_eq!(d["x"], "is not a field of this request");
        assert!(read(&json!({"integration_id": id, "resources": []})).is_err());
        assert_eq!(
            read(&json!({"job_id": id})).unwrap(),
            Input::Resume {
                job_id: Uuid::try_parse(id).unwrap()
            }
        );
        assert!(read(&json!({"job_id": "nope"})).is_err());
    }

    #[test]
    fn every_page_stays_under_shopifys_cost_limit() {
        // The sandbox, in Shopify's model, asks 2 + node for a page of one:
        // products 52, orders 66, customers 4, checkouts 68.
        let pages: Vec<(u32, u32)> = RESOURCES
            .iter()
            .map(|r| (shape(r).page(), 2 + shape(r).page() * shape(r).node_cost))
            .collect();
        assert_eq!(pages, vec![(19, 952), (15, 962), (250, 502), (15, 992)]);
    }

    #[test]
    fn queries_filter_by_the_mark_and_bulk_queries_have_no_first() {
        assert_eq!(
            since_filter(Some("2026-11-01T00:00:00Z")).unwrap(),
            "updated_at:>='2026-11-01T00:00:00Z'"
        );
        let q = page_query("orders");
        assert!(
            q.contains("orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT)")
        );
        assert!(q.contains("lineItems(first: 10)"));
        let b = bulk_query("products", Some("2026-11-01T00:00:00Z"));
        assert!(b.starts_with(
            "{ products(query: \"updated_at:>='2026-11-01T00:00:00Z'\") { edges { node {"
        ));
        assert!(b.contains("variants { edges { node {"));
        assert!(!b.contains("first:"));
        assert!(!bulk_query("customers", None).contains("query:"));
        assert!(children_query("products")
            .unwrap()
            .contains("... on Product { variants(first: 249, after: $after)"));
        assert!(children_query("customers").is_none());
        assert!(page_query("abandoned_checkouts").contains("sortKey: CREATED_AT"));
        assert!(
            bulk_query("products", None).contains("featuredMedia { preview { image { url } } }")
        );
    }

    #[test]
    fn the_next_mark_stays_behind_the_reads_start_and_never_goes_back() {
        let began = 1_795_773_600; // 2026-11-27T10:00:00Z
                                   // Records read up to 09:30: the mark is 09:30.
        assert_eq!(
            next_mark(
                Some("2026-11-27T09:00:00Z"),
                Some("2026-11-27T09:30:00Z"),
                began
            )
            .unwrap(),
            "2026-11-27T09:30:00Z"
        );
        // A record updated at 09:59:30 (or ahead of our clock): the mark stays at 09:59:00.
        assert_eq!(
            next_mark(
                Some("2026-11-27T09:00:00Z"),
                Some("2026-11-27T10:05:00Z"),
                began
            )
            .unwrap(),
            "2026-11-27T09:59:00Z"
        );
        // Never behind where the read started from, nor lost when nothing changed.
        assert_eq!(
            next_mark(
                Some("2026-11-27T09:59:30Z"),
                Some("2026-11-27T10:05:00Z"),
                began
            )
            .unwrap(),
            "2026-11-27T09:59:30Z"
        );
        assert_eq!(
            next_mark(Some("2026-11-27T09:00:00Z"), None, began).unwrap(),
            "2026-11-27T09:00:00Z"
        );
        assert_eq!(next_mark(None, None, began), None);
    }

    #[test]
    fn marks_are_written_as_the_store_writes_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_773_600), "2026-11-27T10:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
