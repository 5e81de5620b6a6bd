// Shopify Admin, emulated for the provider sandbox (scripts/sandbox.ts): the
// OAuth install, the GraphQL Admin API (2026-01 shapes) with cost-based
// throttling, bulk query operations, webhook subscriptions and signed webhook
// deliveries, over stores generated on demand. Paths stand in for
// https://{shop}/…: SHOPIFY_BASE_URL is http://127.0.0.1:<port>/shopify/{shop}.
//
//   GET    /shopify/{shop}/admin/oauth/authorize?client_id&scope&redirect_uri&state
//          302 to redirect_uri?code&hmac&host&shop&state&timestamp. hmac: hex HMAC-SHA256
//          (app secret) of the other parameters sorted by name and form-encoded
//          (k=v&k=v; none of the values needs escaping unless state does); host: unpadded
//          base64 of admin.shopify.com/store/<name>. The code is single use, for 10 minutes.
//   POST   /shopify/{shop}/admin/oauth/access_token   JSON or form {client_id, client_secret, code}
//          200 {"access_token":"shpat_<32 hex>","scope":"<granted, comma-separated>"}; a wrong
//          client, an unknown, used or expired code: 400 {"error","error_description"}
//   POST   /shopify/{shop}/admin/api/{version}/graphql.json  X-Shopify-Access-Token
//          401 {"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}
//   DELETE /shopify/{shop}/admin/api_permissions/current.json  uninstall: 200 {}, every token of
//          the shop revoked, app/uninstalled sent to its subscription, subscriptions removed
//   GET    /shopify/_bulk/{n}.jsonl, /shopify/_bulk/{n}-partial.jsonl   bulk results (no auth,
//          as a signed storage URL)
//
// GraphQL: a small parser (operations, variables, aliases, fragments, @include/@skip) and
// answers that follow the selection set, in GraphQL Admin's names and shapes:
//   query    shop, products, product, orders, order, customers, customer, abandonedCheckouts,
//            node, nodes, productsCount, ordersCount, customersCount, abandonedCheckoutsCount,
//            bulkOperation(id), bulkOperations, currentBulkOperation, webhookSubscriptions,
//            webhookSubscription
//   mutation bulkOperationRunQuery, bulkOperationCancel, webhookSubscriptionCreate,
//            webhookSubscriptionDelete
// Types: Product (id legacyResourceId title handle descriptionHtml vendor productType status
// tags createdAt updatedAt publishedAt totalInventory images media featuredMedia variants),
// ProductVariant (id title sku price compareAtPrice inventoryQuantity selectedOptions image
// inventoryItem{requiresShipping measurement{weight{value unit}}} product), Order (id name
// createdAt updatedAt processedAt cancelledAt email phone note tags customer currencyCode
// totalPriceSet subtotalPriceSet totalTaxSet totalDiscountsSet totalShippingPriceSet
// displayFinancialStatus displayFulfillmentStatus paymentGatewayNames shippingAddress
// billingAddress lineItems{id title name variantTitle sku quantity originalUnitPriceSet
// variant product}), Customer (id firstName lastName displayName email phone
// defaultEmailAddress{emailAddress} defaultPhoneNumber{phoneNumber} createdAt updatedAt tags
// numberOfOrders amountSpent), AbandonedCheckout (id name abandonedCheckoutUrl createdAt
// updatedAt completedAt customer totalPriceSet subtotalPriceSet totalTaxSet
// billingAddress shippingAddress lineItems{id title variantTitle sku quantity
// originalUnitPriceSet image variant product}; it has no email or phone of its own),
// BulkOperation, WebhookSubscription (id topic uri callbackUrl format endpoint).
//   Connections: first (1..250) or last, after/before (opaque base64 of the sort value and
//   id of the edge), reverse, sortKey (default ID; UPDATED_AT sorts by (updatedAt, id), so a
//   record updated while paging moves to the end and is met again), and query: updated_at /
//   created_at with >, >=, <, <= or = and an ISO time (quotes optional), id, status, tag, and a
//   few per resource; unknown terms are ignored and reported under extensions.search. As in
//   Shopify, AbandonedCheckoutSortKeys has no UPDATED_AT (an error here too).
//   Orders created more than 60 days ago are seen only with the read_all_orders scope; each
//   root field needs its read_ scope (write_ implies read_), else ACCESS_DENIED.
//   Cost: a connection asking for N nodes of cost c costs 2 + N*c, a node 1 plus its nested
//   connections and nested objects (1 each), scalars 0, a top-level object 1, a mutation 10. Over 1000:
//   MAX_COST_EXCEEDED. A leaky bucket per shop (2000, 100/s): a request costing more than is
//   available is THROTTLED (HTTP 200) and charged nothing; otherwise it is charged what it
//   asked and refunded the difference with the actual cost (connections counted at the
//   number of nodes returned). Every answer carries extensions.cost.
//   Bulk: the inner query's root connection (products, orders, customers, abandonedCheckouts),
//   its query filter and sortKey, and nested connections (variants, lineItems, media, images)
//   must select edges { node { … } } with id on the parent, as Shopify requires. The data is
//   taken when the operation starts; CREATED, RUNNING, then COMPLETED after max(300 ms, 1 ms per
//   50 objects). JSONL: one line per root object (selected fields, nested objects inline,
//   connections left out), each followed by one line per child with "__parentId". Up to 5
//   operations run at once per shop (API 2026-01); the 6th gets OPERATION_IN_PROGRESS.
//   bulk_operations/finish is delivered to its subscription, if any.
//
// Control (under /_sandbox/shopify):
//   POST   /shops {"shop","products","customers","orders","checkouts","seed"?}  regenerate data
//   POST   /throttle {"maximumAvailable"?,"restoreRate"?,"currentlyAvailable"?,"bulkMsPerObject"?,
//          "objectCost"?}  objectCost 1 charges each nested object field 1, as Shopify documents
//          (the default; 0 charges nested objects nothing)
//   POST   /bulk_fault {"mode":"FAILED"|"partial"}  the next bulk operation fails: FAILED with
//          errorCode INTERNAL_SERVER_ERROR and no url; "partial" also gives a partialDataUrl
//          with the first half of the roots, as Shopify does for a failure with partial data
//   POST   /{shop}/token {"scope"?}  a token without the OAuth dance
//   POST   /{shop}/send {"topic","payload"?,"webhook_id"?,"tamper"?,"uri"?,"customer_id"?,"id"?}
//   POST   /{shop}/mutate {"update_products"?,"update_orders"?,"create_orders"?,
//          "update_customers"?,"update_checkouts"?,"delete_products"?,"remove_variants"?,
//          "grow_variants"?}  grow_variants: products taken to 25 variants
//   GET    /{shop}/ids?resource=products|variants|orders|line_items|customers|checkouts|
//          checkout_line_items
//   GET    /{shop}/stats, GET /{shop}/webhooks
//
// Stores: any valid domain is a store, generated from its name: 25 products (1-3 variants),
// 15 customers, 40 orders, 10 abandoned checkouts, in USD; sandbox-big.myshopify.com has
// 10,000 products (1-4 variants), 2,000 customers, 20,000 orders and 500 checkouts, in INR.
// Timestamps have Shopify's second precision; every change takes the next second on a clock
// per store that never goes back, so updatedAt is strictly increasing (a burst of changes
// runs that clock ahead of the wall clock by one second per change).
//
// Simplified: no schema validation beyond the root fields and connection arguments (an
// unknown nested field answers null and is listed under extensions.sandbox); scope checks on
// root fields only; money amounts always have two decimals; dates without a zone are UTC;
// webhook subscriptions accept loopback addresses, which Shopify refuses; webhooks sent from
// the control route are not retried.

type Rec = Record<string, unknown>;

/** The sandbox's fault hooks for one Shopify call (see nextFault/before/after). */
export interface ShopifyFaults {
  enter(): Promise<{ early?: Response; done(r: Response): Promise<Response> }>;
}

const app = {
  apiKey: Deno.env.get("SANDBOX_SHOPIFY_API_KEY") ?? "shopify_sandbox_api_key",
  secret: Deno.env.get("SANDBOX_SHOPIFY_API_SECRET") ?? "shpss_sandbox_secret",
  apiVersion: "2026-01",
};
const BIG_SHOP = "sandbox-big.myshopify.com";
const SHOP_RE = /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/;
const SECOND = 1000;
const DAY = 86_400_000;
const MAX_QUERY_COST = 1000;
const MAX_BULK_RUNNING = 5;
const INVALID_TOKEN =
  "[API] Invalid API key or access token (unrecognized login or wrong password)";
const RATE_DOCS = "https://shopify.dev/api/usage/rate-limits";

// ---------------------------------------------------------------------------
// Small helpers

const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
/** Shopify's DateTime: UTC, second precision. */
const iso = (ms: number) =>
  new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
/** REST payload times, in the shop's zone: 2026-01-01T07:00:00-05:00. */
function local(ms: number, offsetMin: number): string {
  const s = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 19);
  const a = Math.abs(offsetMin);
  return `${s}${offsetMin < 0 ? "-" : "+"}${pad(Math.floor(a / 60))}:${
    pad(a % 60)
  }`;
}
const money = (cents: number) => (cents / 100).toFixed(2);
const gid = (type: string, id: number | string) =>
  `gid://shopify/${type}/${id}`;
const floorSec = (ms: number) => Math.floor(ms / SECOND) * SECOND;
const hexOf = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const randomHex = (bytes: number) =>
  hexOf(crypto.getRandomValues(new Uint8Array(bytes)));
const b64 = (b: Uint8Array) => {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
};
const utf8 = new TextEncoder();

async function hmacSha256(secret: string, data: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    utf8.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", key, utf8.encode(data)),
  );
}

/** FNV-1a, to seed a store's generator from its domain. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32, with the picks the generator needs. */
class Rand {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  f(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.f() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.f() * xs.length)];
  }
  chance(p: number): boolean {
    return this.f() < p;
  }
  /** Weighted choice: [[value, weight], …]. */
  weighted<T>(xs: readonly (readonly [T, number])[]): T {
    const total = xs.reduce((n, [, w]) => n + w, 0);
    let r = this.f() * total;
    for (const [v, w] of xs) if ((r -= w) < 0) return v;
    return xs[0][0];
  }
  some<T>(xs: readonly T[], max: number): T[] {
    const n = this.int(0, max);
    const out = new Set<T>();
    for (let i = 0; i < n; i++) out.add(this.pick(xs));
    return [...out];
  }
  digits(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
}

// ---------------------------------------------------------------------------
// Store data

type Currency = "USD" | "INR";
type WeightUnit = "KILOGRAMS" | "GRAMS" | "POUNDS" | "OUNCES";

interface Address {
  first: string;
  last: string;
  address1: string;
  address2: string | null;
  city: string;
  province: string;
  provinceCode: string;
  country: string;
  countryCode: string;
  zip: string;
  phone: string | null;
}
interface Variant {
  id: number;
  title: string;
  option: string | null;
  sku: string;
  price: number; // cents
  compareAt: number | null;
  qty: number;
  requiresShipping: boolean;
  weight: number;
  weightUnit: WeightUnit;
  position: number;
  image: string | null;
  barcode: string | null;
}
interface Product {
  id: number;
  title: string;
  handle: string;
  body: string;
  vendor: string;
  type: string;
  status: "ACTIVE" | "DRAFT" | "ARCHIVED";
  tags: string[];
  createdAt: number;
  updatedAt: number;
  images: string[];
  optionName: string | null;
  variants: Variant[];
}
interface Customer {
  id: number;
  first: string;
  last: string;
  email: string;
  phone: string | null;
  createdAt: number;
  updatedAt: number;
  tags: string[];
  note: string | null;
  address: Address;
  verified: boolean;
}
interface LineItem {
  id: number;
  productId: number;
  variantId: number;
  title: string;
  variantTitle: string | null;
  sku: string;
  qty: number;
  price: number;
  vendor: string;
  requiresShipping: boolean;
  grams: number;
}
interface Order {
  id: number;
  number: number;
  token: string;
  createdAt: number;
  updatedAt: number;
  cancelledAt: number | null;
  email: string | null;
  phone: string | null;
  note: string | null;
  tags: string[];
  customerId: number | null;
  items: LineItem[];
  lineTotal: number;
  discount: number;
  shipping: number;
  tax: number;
  financial: string;
  fulfillment: string;
  gateways: string[];
  shippingAddress: Address;
  billingAddress: Address;
}
interface CheckoutItem {
  id: number;
  productId: number;
  variantId: number;
  title: string;
  variantTitle: string | null;
  sku: string;
  qty: number;
  price: number;
  image: string | null;
}
interface Checkout {
  id: number;
  token: string;
  key: string;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  customerId: number | null;
  email: string | null;
  phone: string | null;
  items: CheckoutItem[];
  lineTotal: number;
  tax: number;
  address: Address;
}

interface Sizes {
  products: number;
  customers: number;
  orders: number;
  checkouts: number;
  maxVariants: number;
  seed: number;
}

/** One store's records. Records are replaced, never changed in place, so a
 * bulk operation's snapshot (an array of references) stays as it was. */
interface Data {
  products: Map<number, Product>;
  customers: Map<number, Customer>;
  orders: Map<number, Order>;
  checkouts: Map<number, Checkout>;
  spent: Map<number, { count: number; cents: number }>;
  next: {
    product: number;
    variant: number;
    order: number;
    number: number;
    lineItem: number;
    customer: number;
    checkout: number;
    checkoutItem: number;
  };
  /** The latest updatedAt handed out; the next one is at least a second later. */
  clock: number;
  rand: Rand;
}

/** Words, space-separated; "_" stands for a space inside one. */
const words = (s: string) => s.split(" ").map((w) => w.replaceAll("_", " "));

interface NameSet {
  first: string[];
  last: string[];
  /** City, province, province code, zip, phone area code. */
  cities: string[][];
  streets: string[];
  country: [string, string];
}

const NAMES: Record<Currency, NameSet> = {
  USD: {
    first: words(
      "James Mary Olivia Liam Emma Noah Ava Ethan Sophia Lucas Mia Mason Harper Elijah Amelia Logan Priya Diego",
    ),
    last: words(
      "Smith Johnson Williams Brown Jones Garcia Miller Davis Martinez Lopez Nguyen Clark Patel Okafor",
    ),
    cities: [
      "New_York New_York NY 10001 212",
      "Los_Angeles California CA 90012 213",
      "Chicago Illinois IL 60601 312",
      "Austin Texas TX 73301 512",
      "Seattle Washington WA 98101 206",
      "Denver Colorado CO 80202 303",
      "Miami Florida FL 33101 305",
      "Boston Massachusetts MA 02108 617",
      "Portland Oregon OR 97201 503",
      "Atlanta Georgia GA 30303 404",
    ].map(words),
    streets: words(
      "Main_St Oak_Ave Maple_Dr Park_Rd Cedar_Ln Elm_St Lakeview_Blvd 2nd_Ave",
    ),
    country: ["United States", "US"],
  },
  INR: {
    first: words(
      "Aarav Priya Rohan Ananya Vikram Isha Arjun Kavya Rahul Sneha Aditya Meera Karan Pooja Nikhil Divya Sara Imran",
    ),
    last: words(
      "Sharma Patel Reddy Iyer Gupta Singh Nair Mehta Kumar Das Khan Joshi Menon Bose",
    ),
    cities: [
      "Mumbai Maharashtra MH 400001 -",
      "Delhi Delhi DL 110001 -",
      "Bengaluru Karnataka KA 560001 -",
      "Hyderabad Telangana TG 500001 -",
      "Chennai Tamil_Nadu TN 600001 -",
      "Kolkata West_Bengal WB 700001 -",
      "Pune Maharashtra MH 411001 -",
      "Jaipur Rajasthan RJ 302001 -",
      "Ahmedabad Gujarat GJ 380001 -",
      "Lucknow Uttar_Pradesh UP 226001 -",
    ].map(words),
    streets: words(
      "MG_Road Linking_Road Station_Road Nehru_Nagar Park_Street Brigade_Road Anna_Salai FC_Road",
    ),
    country: ["India", "IN"],
  },
};

const CATALOG: Record<
  string,
  { nouns: string[]; unit: WeightUnit; weight: [number, number] }
> = {
  Apparel: {
    nouns: words("Tee Hoodie Jacket Joggers Cap Socks Kurta"),
    unit: "GRAMS",
    weight: [150, 900],
  },
  Home: {
    nouns: words("Mug Candle Throw_Pillow Blanket Planter Lamp"),
    unit: "KILOGRAMS",
    weight: [0.3, 2.5],
  },
  Beauty: {
    nouns: words("Face_Serum Lip_Balm Body_Lotion Shampoo_Bar"),
    unit: "OUNCES",
    weight: [2, 16],
  },
  Accessories: {
    nouns: words("Tote_Bag Wallet Sunglasses Watch_Strap Backpack"),
    unit: "POUNDS",
    weight: [0.2, 3],
  },
  Food: {
    nouns: words("Coffee_Beans Green_Tea Dark_Chocolate Granola"),
    unit: "GRAMS",
    weight: [100, 1000],
  },
  Digital: {
    nouns: words("E-Gift_Card Recipe_eBook"),
    unit: "KILOGRAMS",
    weight: [0, 0],
  },
};
const ADJECTIVES = words(
  "Classic Organic Vintage Everyday Premium Lightweight Handmade Eco Urban Cozy Rugged Minimal",
);
const VENDORS = words(
  "Northwind Acme_Goods Blue_Harbor Studio_Lark Kiran_Crafts Saffron_&_Co Evergreen_Supply",
);
const OPTIONS: Record<string, string[]> = {
  Size: words("XS S M L XL XXL"),
  Color: words("Black White Navy Olive Red Sand"),
  Pack: words("Single Pack_of_2 Pack_of_3 Pack_of_6"),
};
const PRODUCT_TAGS = words(
  "new sale bestseller summer winter eco gift limited",
);
const CUSTOMER_TAGS = words("vip wholesale newsletter repeat local");
const ORDER_TAGS = words("gift priority cod-verified wholesale promo");
const NOTES = [
  "Please leave at the front desk.",
  "Gift wrap, please.",
  "Call before delivery.",
  "Deliver after 6 pm.",
];
const PRICES: Record<Currency, number[]> = {
  USD: [999, 1499, 1999, 2499, 2999, 3499, 4999, 7999, 12999],
  INR: [29900, 49900, 79900, 99900, 149900, 249900, 399900],
};
const COD = "Cash on Delivery (COD)";

const slug = (s: string) =>
  s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

function phoneFor(r: Rand, cur: Currency, area: string): string {
  return cur === "USD"
    ? `+1${area && area !== "-" ? area : "415"}555${r.digits(4)}`
    : `+91${r.pick(["98", "97", "99", "88", "70"])}${r.digits(8)}`;
}

function address(
  r: Rand,
  cur: Currency,
  first: string,
  last: string,
  phone: string | null,
): Address {
  const n = NAMES[cur];
  const [city, province, code, zip] = r.pick(n.cities);
  return {
    first,
    last,
    address1: `${r.int(1, 999)} ${r.pick(n.streets)}`,
    address2: r.chance(0.2) ? `Apt ${r.int(1, 40)}` : null,
    city,
    province,
    provinceCode: code,
    country: n.country[0],
    countryCode: n.country[1],
    zip,
    phone,
  };
}

function makeProduct(
  d: Data,
  r: Rand,
  cur: Currency,
  shopNo: number,
  createdAt: number,
  updatedAt: number,
  maxVariants: number,
): Product {
  const id = d.next.product++;
  const type = r.weighted(
    [
      ["Apparel", 5],
      ["Home", 3],
      ["Beauty", 2],
      ["Accessories", 2],
      ["Food", 2],
      ["Digital", 0.4],
    ] as const,
  );
  const cat = CATALOG[type];
  const title = `${r.pick(ADJECTIVES)} ${r.pick(cat.nouns)}`;
  const handle = `${slug(title)}-${id % 100000}`;
  const nImages = r.int(0, 3);
  const images = Array.from(
    { length: nImages },
    (_, i) =>
      `https://cdn.shopify.com/s/files/1/0${shopNo % 1000}/${
        shopNo % 10000
      }/files/${handle}-${i + 1}.jpg?v=${Math.floor(createdAt / 1000)}`,
  );
  const nVariants = type === "Digital" ? 1 : r.int(1, maxVariants);
  const optionName = nVariants > 1
    ? r.pick(type === "Apparel" ? ["Size", "Color"] : ["Color", "Pack"])
    : null;
  const values = optionName
    ? pickSome(r, OPTIONS[optionName], nVariants).sort((a, b) =>
      OPTIONS[optionName].indexOf(a) - OPTIONS[optionName].indexOf(b)
    )
    : ["Default Title"];
  const base = r.pick(PRICES[cur]);
  const code = type.slice(0, 3).toUpperCase();
  const variants: Variant[] = values.map((value, i) => {
    const price = base + (optionName === "Pack" ? base * i : 0);
    const w = cat.weight[0] + r.f() * (cat.weight[1] - cat.weight[0]);
    return {
      id: d.next.variant++,
      title: value,
      option: optionName ? value : null,
      sku: r.chance(0.03)
        ? ""
        : `${code}-${String(id % 100000).padStart(5, "0")}${
          optionName ? `-${slug(value).toUpperCase()}` : ""
        }`,
      price,
      compareAt: r.chance(0.3)
        ? Math.round(price * 1.25 / 100) * 100 - 1
        : null,
      qty: r.chance(0.08) ? 0 : r.int(1, 250),
      requiresShipping: type !== "Digital",
      weight: cat.unit === "GRAMS" ? Math.round(w) : Math.round(w * 100) / 100,
      weightUnit: cat.unit,
      position: i + 1,
      image: images.length ? images[i % images.length] : null,
      barcode: r.chance(0.5) ? r.digits(12) : null,
    };
  });
  return {
    id,
    title,
    handle,
    body: `<p>${title} from our ${type.toLowerCase()} range.</p>`,
    vendor: r.pick(VENDORS),
    type,
    status: r.weighted(
      [["ACTIVE", 80], ["DRAFT", 12], ["ARCHIVED", 8]] as const,
    ),
    tags: r.some(PRODUCT_TAGS, 3).sort(),
    createdAt,
    updatedAt,
    images,
    optionName,
    variants,
  };
}

function makeCustomer(
  d: Data,
  r: Rand,
  cur: Currency,
  createdAt: number,
  updatedAt: number,
): Customer {
  const id = d.next.customer++;
  const n = NAMES[cur];
  const first = r.pick(n.first);
  const last = r.pick(n.last);
  const city = r.pick(n.cities);
  const phone = r.chance(0.2) ? null : phoneFor(r, cur, city[4]);
  return {
    id,
    first,
    last,
    email: `${first}.${last}${id % 100000}@${
      r.pick(["example.com", "example.net", "example.org"])
    }`.toLowerCase(),
    phone,
    createdAt,
    updatedAt,
    tags: r.some(CUSTOMER_TAGS, 2).sort(),
    note: r.chance(0.1) ? "Prefers email contact." : null,
    address: address(r, cur, first, last, phone),
    verified: r.chance(0.85),
  };
}

/** Order statuses as they go together: COD orders are paid on delivery. */
function orderStatus(r: Rand, cod: boolean): [string, string] {
  if (cod) {
    const f = r.weighted(
      [
        ["UNFULFILLED", 40],
        ["FULFILLED", 50],
        ["PARTIALLY_FULFILLED", 5],
        ["RESTOCKED", 5],
      ] as const,
    );
    const fin = f === "FULFILLED"
      ? (r.chance(0.8) ? "PAID" : "PENDING")
      : f === "RESTOCKED"
      ? "VOIDED"
      : "PENDING";
    return [fin, f];
  }
  const fin = r.weighted(
    [
      ["PAID", 74],
      ["PARTIALLY_REFUNDED", 6],
      ["REFUNDED", 6],
      ["AUTHORIZED", 8],
      ["PENDING", 2],
      ["PARTIALLY_PAID", 2],
      ["VOIDED", 2],
    ] as const,
  );
  const f = fin === "REFUNDED"
    ? r.pick(["RESTOCKED", "FULFILLED"])
    : fin === "PAID" || fin === "PARTIALLY_REFUNDED"
    ? r.weighted(
      [
        ["FULFILLED", 60],
        ["UNFULFILLED", 30],
        ["PARTIALLY_FULFILLED", 10],
      ] as const,
    )
    : "UNFULFILLED";
  return [fin, f];
}

function makeOrder(
  d: Data,
  r: Rand,
  cur: Currency,
  createdAt: number,
  updatedAt: number,
  customers: Customer[],
  variants: [Product, Variant][],
): Order {
  const id = d.next.order++;
  const number = d.next.number++;
  const customer = customers.length && r.chance(0.9) ? r.pick(customers) : null;
  const n = NAMES[cur];
  const first = customer?.first ?? r.pick(n.first);
  const last = customer?.last ?? r.pick(n.last);
  const email = customer?.email ??
    `${first}.${last}.guest${id % 10000}@example.com`.toLowerCase();
  const phone = customer
    ? customer.phone
    : (r.chance(0.2) ? null : phoneFor(r, cur, ""));
  const items: LineItem[] = [];
  const count = variants.length ? r.int(1, 3) : 0;
  for (let i = 0; i < count; i++) {
    const [p, v] = r.pick(variants);
    items.push({
      id: d.next.lineItem++,
      productId: p.id,
      variantId: v.id,
      title: p.title,
      variantTitle: v.option,
      sku: v.sku,
      qty: r.weighted([[1, 70], [2, 20], [3, 10]] as const),
      price: v.price,
      vendor: p.vendor,
      requiresShipping: v.requiresShipping,
      grams: Math.round(
        v.weight *
          { KILOGRAMS: 1000, GRAMS: 1, POUNDS: 453.6, OUNCES: 28.35 }[
            v.weightUnit
          ],
      ),
    });
  }
  const lineTotal = items.reduce((s, li) => s + li.price * li.qty, 0);
  const discount = r.chance(0.2) ? Math.round(lineTotal * 0.1) : 0;
  const free = cur === "USD" ? 5000 : 99900;
  const shipping = lineTotal - discount >= free
    ? 0
    : (cur === "USD" ? 599 : 4900);
  const tax = Math.round(
    (lineTotal - discount) * (cur === "USD" ? 0.08 : 0.18),
  );
  const cod = r.chance(cur === "INR" ? 0.45 : 0.15);
  const [financial, fulfillment] = orderStatus(r, cod);
  const ship = customer && r.chance(0.8)
    ? { ...customer.address }
    : address(r, cur, first, last, phone);
  return {
    id,
    number,
    token: randomHexFrom(r, 16),
    createdAt,
    updatedAt,
    cancelledAt: financial === "VOIDED"
      ? Math.min(updatedAt, createdAt + r.int(1, 48) * 3600 * SECOND)
      : null,
    email,
    phone,
    note: r.chance(0.15) ? r.pick(NOTES) : null,
    tags: r.some(ORDER_TAGS, 2).sort(),
    customerId: customer?.id ?? null,
    items,
    lineTotal,
    discount,
    shipping,
    tax,
    financial,
    fulfillment,
    gateways: cod ? [COD] : ["shopify_payments"],
    shippingAddress: ship,
    billingAddress: r.chance(0.85)
      ? { ...ship }
      : address(r, cur, first, last, phone),
  };
}

function randomHexFrom(r: Rand, bytes: number): string {
  let s = "";
  for (let i = 0; i < bytes; i++) {
    s += r.int(0, 255).toString(16).padStart(2, "0");
  }
  return s;
}

function makeCheckout(
  d: Data,
  r: Rand,
  cur: Currency,
  createdAt: number,
  updatedAt: number,
  customers: Customer[],
  variants: [Product, Variant][],
): Checkout {
  const id = d.next.checkout++;
  const customer = customers.length && r.chance(0.8) ? r.pick(customers) : null;
  const n = NAMES[cur];
  const first = customer?.first ?? r.pick(n.first);
  const last = customer?.last ?? r.pick(n.last);
  const phone = customer
    ? customer.phone
    : (r.chance(0.2) ? null : phoneFor(r, cur, ""));
  const items: CheckoutItem[] = [];
  const count = variants.length ? r.int(1, 3) : 0;
  for (let i = 0; i < count; i++) {
    const [p, v] = r.pick(variants);
    items.push({
      id: d.next.checkoutItem++,
      productId: p.id,
      variantId: v.id,
      title: p.title,
      variantTitle: v.option,
      sku: v.sku,
      qty: r.int(1, 2),
      price: v.price,
      image: v.image ?? p.images[0] ?? null,
    });
  }
  const lineTotal = items.reduce((s, li) => s + li.price * li.qty, 0);
  const completed = r.chance(0.25);
  return {
    id,
    token: randomHexFrom(r, 16),
    key: randomHexFrom(r, 16),
    createdAt,
    updatedAt,
    completedAt: completed
      ? Math.min(updatedAt, createdAt + r.int(5, 600) * 60 * SECOND)
      : null,
    customerId: customer?.id ?? null,
    email: customer?.email ??
      (r.chance(0.9)
        ? `${first}.${last}.cart${id % 10000}@example.com`.toLowerCase()
        : null),
    phone,
    items,
    lineTotal,
    tax: Math.round(lineTotal * (cur === "USD" ? 0.08 : 0.18)),
    address: address(r, cur, first, last, phone),
  };
}

/** A time between from and to (ms), whole seconds. */
const between = (r: Rand, from: number, to: number) =>
  floorSec(from + r.f() * Math.max(0, to - from));

function generate(domain: string, currency: Currency, sizes: Sizes): Data {
  const r = new Rand(hash(domain) ^ sizes.seed);
  const shopNo = hash(domain) % 100000;
  const now = floorSec(Date.now());
  const d: Data = {
    products: new Map(),
    customers: new Map(),
    orders: new Map(),
    checkouts: new Map(),
    spent: new Map(),
    next: {
      product: 7000000000001,
      variant: 41000000000001,
      order: 5000000000001,
      number: 1001,
      lineItem: 13000000000001,
      customer: 6000000000001,
      checkout: 30000000000001,
      checkoutItem: 31000000000001,
    },
    clock: now,
    rand: new Rand(hash(domain) ^ sizes.seed ^ 0x5bd1e995),
  };
  for (let i = 0; i < sizes.products; i++) {
    const created = between(r, now - 730 * DAY, now - DAY);
    const p = makeProduct(
      d,
      r,
      currency,
      shopNo,
      created,
      between(r, created, now),
      sizes.maxVariants,
    );
    d.products.set(p.id, p);
  }
  for (let i = 0; i < sizes.customers; i++) {
    const created = between(r, now - 1095 * DAY, now - DAY);
    const c = makeCustomer(d, r, currency, created, between(r, created, now));
    d.customers.set(c.id, c);
  }
  const customers = [...d.customers.values()];
  const sellable = sellableVariants(d);
  // Orders in creation order, so ids and numbers grow with createdAt.
  const times = Array.from(
    { length: sizes.orders },
    () => between(r, now - 365 * DAY, now),
  ).sort((a, b) => a - b);
  for (const created of times) {
    const updated = between(r, created, Math.min(now, created + 45 * DAY));
    const o = makeOrder(
      d,
      r,
      currency,
      created,
      updated,
      customers,
      sellable,
    );
    d.orders.set(o.id, o);
    countOrder(d, o);
  }
  const ctimes = Array.from(
    { length: sizes.checkouts },
    () => between(r, now - 90 * DAY, now - 3600 * SECOND),
  ).sort((a, b) => a - b);
  for (const created of ctimes) {
    const updated = between(r, created, Math.min(now, created + 2 * DAY));
    const c = makeCheckout(
      d,
      r,
      currency,
      created,
      updated,
      customers,
      sellable,
    );
    d.checkouts.set(c.id, c);
  }
  return d;
}

function sellableVariants(d: Data): [Product, Variant][] {
  const out: [Product, Variant][] = [];
  for (const p of d.products.values()) {
    if (p.status !== "ACTIVE") continue;
    for (const v of p.variants) out.push([p, v]);
  }
  if (!out.length) {
    for (const p of d.products.values()) {
      for (const v of p.variants) out.push([p, v]);
    }
  }
  return out;
}

function countOrder(d: Data, o: Order) {
  if (o.customerId === null) return;
  const s = d.spent.get(o.customerId) ?? { count: 0, cents: 0 };
  s.count++;
  s.cents += orderTotal(o);
  d.spent.set(o.customerId, s);
}

const orderSubtotal = (o: Order) => o.lineTotal - o.discount;
const orderTotal = (o: Order) => orderSubtotal(o) + o.shipping + o.tax;

/** The next updatedAt: now, or a second after the last one handed out. */
function tick(d: Data): number {
  d.clock = Math.max(floorSec(Date.now()), d.clock + SECOND);
  return d.clock;
}

// ---------------------------------------------------------------------------
// Shops, tokens, settings

interface Subscription {
  id: number;
  topic: string; // the enum form, ORDERS_CREATE
  uri: string;
  format: string;
  createdAt: number;
  updatedAt: number;
}

interface BulkOp {
  n: number;
  shop: string;
  query: string;
  createdAt: number;
  startedAt: number;
  doneAt: number;
  outcome: "COMPLETED" | "FAILED" | "PARTIAL" | "ACCESS_DENIED";
  jsonl: string;
  partial: string;
  roots: number;
  objects: number;
  canceledAt?: number;
  timer?: ReturnType<typeof setTimeout>;
}

interface Shop {
  domain: string;
  id: number;
  name: string;
  currency: Currency;
  offsetMin: number;
  iana: string;
  createdAt: number;
  sizes: Sizes;
  dataCache?: Data;
  codes: Map<string, { scopes: string[]; expires: number; used: boolean }>;
  subs: Subscription[];
  bulk: BulkOp[];
  bucket: { available: number; at: number };
  uninstalled: boolean;
  stats: {
    graphql_calls: number;
    throttled: number;
    max_cost_exceeded: number;
    points_spent: number;
    bulk_started: number;
    tokens_issued: number;
    revoked: number;
    webhooks_sent: number;
  };
}

interface Token {
  shop: string;
  scopes: string[];
  revoked: boolean;
}

const defaultSettings = () => ({
  maximumAvailable: 2000,
  restoreRate: 100,
  bulkMsPerObject: 1 / 50,
  /** What a nested object field costs: 1, as Shopify documents it
   * (POST /_sandbox/shopify/throttle {"objectCost": 0} for a cheaper model). */
  objectCost: 1,
});
/** Fields that are part of a connection's own cost, never charged as objects. */
const CONNECTION_PARTS = new Set(["edges", "node", "nodes", "pageInfo"]);
let settings = defaultSettings();
let shops = new Map<string, Shop>();
let tokens = new Map<string, Token>();
let bulkOps = new Map<number, BulkOp>();
let nextBulk = 4000000000001;
let nextSub = 1300000000001;
let bulkFault: "FAILED" | "partial" | undefined;

let customApp: { shop: string; token: string } | undefined;
/**
 * A custom app's Admin API token on one store (the stack's
 * SHOPIFY_ADMIN_ACCESS_TOKEN for SHOPIFY_ADMIN_SHOP): made in the store's
 * admin rather than by OAuth, valid from the start and again after a reset.
 */
export function shopifyCustomApp(shop: string, token: string) {
  customApp = { shop, token };
  installCustomApp();
}
function installCustomApp() {
  if (!customApp) return;
  tokens.set(customApp.token, {
    shop: customApp.shop,
    scopes: [
      "read_products",
      "read_orders",
      "read_all_orders",
      "read_customers",
      "read_checkouts",
    ],
    revoked: false,
  });
}

/** Forgets every store, token and setting (DELETE /_sandbox). */
export function shopifyReset() {
  for (const op of bulkOps.values()) clearTimeout(op.timer);
  settings = defaultSettings();
  shops = new Map();
  tokens = new Map();
  bulkOps = new Map();
  nextBulk = 4000000000001;
  nextSub = 1300000000001;
  bulkFault = undefined;
  installCustomApp();
}

function defaultSizes(domain: string): Sizes {
  return domain === BIG_SHOP
    ? {
      products: 10000,
      customers: 2000,
      orders: 20000,
      checkouts: 500,
      maxVariants: 4,
      seed: 0,
    }
    : {
      products: 25,
      customers: 15,
      orders: 40,
      checkouts: 10,
      maxVariants: 3,
      seed: 0,
    };
}

function shopFor(domain: string): Shop {
  let s = shops.get(domain);
  if (s) return s;
  const name = domain.replace(/\.myshopify\.com$/, "");
  const inr = domain === BIG_SHOP;
  s = {
    domain,
    id: 50000000 + hash(domain) % 900000000,
    name: name.split("-").map((w) => w.slice(0, 1).toUpperCase() + w.slice(1))
      .join(" "),
    currency: inr ? "INR" : "USD",
    offsetMin: inr ? 330 : -300,
    iana: inr ? "Asia/Kolkata" : "America/New_York",
    createdAt: floorSec(Date.now()) - 1200 * DAY,
    sizes: defaultSizes(domain),
    codes: new Map(),
    subs: [],
    bulk: [],
    bucket: { available: settings.maximumAvailable, at: performance.now() },
    uninstalled: false,
    stats: {
      graphql_calls: 0,
      throttled: 0,
      max_cost_exceeded: 0,
      points_spent: 0,
      bulk_started: 0,
      tokens_issued: 0,
      revoked: 0,
      webhooks_sent: 0,
    },
  };
  shops.set(domain, s);
  return s;
}

/** The store's records, generated on first use. */
function data(s: Shop): Data {
  if (!s.dataCache) s.dataCache = generate(s.domain, s.currency, s.sizes);
  return s.dataCache;
}

function issueToken(s: Shop, scopes: string[]): string {
  const token = `shpat_${randomHex(16)}`;
  tokens.set(token, { shop: s.domain, scopes, revoked: false });
  s.stats.tokens_issued++;
  s.uninstalled = false;
  return token;
}

function tokenFor(req: Request, domain: string): Token | undefined {
  const t = tokens.get(req.headers.get("x-shopify-access-token") ?? "");
  return t && !t.revoked && t.shop === domain ? t : undefined;
}

const scopeList = (
  s: string,
) => [...new Set(s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean))];

function hasScope(scopes: string[], scope: string): boolean {
  return scopes.includes(scope) ||
    (scope.startsWith("read_") &&
      scopes.includes(`write_${scope.slice(5)}`));
}

// ---------------------------------------------------------------------------
// GraphQL: lexer and parser

interface Loc {
  line: number;
  column: number;
}

/** An error for the whole request: answered as {"errors": […]} with no data. */
class GqlError extends Error {
  constructor(
    message: string,
    readonly extensions: Rec = {},
    readonly locations?: Loc[],
    readonly path?: (string | number)[],
  ) {
    super(message);
  }
  toJSON(): Rec {
    return {
      message: this.message,
      ...(this.locations ? { locations: this.locations } : {}),
      ...(this.path ? { path: this.path } : {}),
      ...(Object.keys(this.extensions).length
        ? { extensions: this.extensions }
        : {}),
    };
  }
}
/** An error for one field: it answers null and the rest goes on. */
class FieldError extends GqlError {}

interface Tok {
  k: "punct" | "name" | "int" | "float" | "string" | "eof";
  v: string;
  line: number;
  col: number;
}

function blockString(raw: string): string {
  const lines = raw.split(/\r\n|\n|\r/);
  let common: number | undefined;
  for (const l of lines.slice(1)) {
    const indent = l.length - l.trimStart().length;
    if (indent < l.length && (common === undefined || indent < common)) {
      common = indent;
    }
  }
  if (common) {
    for (let i = 1; i < lines.length; i++) lines[i] = lines[i].slice(common);
  }
  while (lines.length && !lines[0].trim()) lines.shift();
  while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
  return lines.join("\n");
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
};

function lex(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0, line = 1, lineStart = 0;
  const fail = (what: string) => {
    throw new GqlError(
      `Parse error on ${JSON.stringify(what)} at [${line}, ${
        i - lineStart + 1
      }]`,
      {},
      [{ line, column: i - lineStart + 1 }],
    );
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (" \t\r,\uFEFF".includes(c)) {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const col = i - lineStart + 1;
    if (src.startsWith("...", i)) {
      toks.push({ k: "punct", v: "...", line, col });
      i += 3;
      continue;
    }
    if ("!$&():=@[]{}|".includes(c)) {
      toks.push({ k: "punct", v: c, line, col });
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j])) j++;
      toks.push({ k: "name", v: src.slice(i, j), line, col });
      i = j;
      continue;
    }
    if (c === "-" || /[0-9]/.test(c)) {
      const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
      m.lastIndex = i;
      const hit = m.exec(src);
      if (!hit) fail(c);
      const v = hit![0];
      toks.push({
        k: hit![1] || hit![2] ? "float" : "int",
        v,
        line,
        col,
      });
      i += v.length;
      continue;
    }
    if (src.startsWith('"""', i)) {
      let j = i + 3;
      while (j < src.length) {
        if (src.startsWith('\\"""', j)) j += 4;
        else if (src.startsWith('"""', j)) break;
        else j++;
      }
      if (j >= src.length) fail('"""');
      const raw = src.slice(i + 3, j).replaceAll('\\"""', '"""');
      toks.push({ k: "string", v: blockString(raw), line, col });
      for (let k = i; k < j; k++) {
        if (src[k] === "\n") {
          line++;
          lineStart = k + 1;
        }
      }
      i = j + 3;
      continue;
    }
    if (c === '"') {
      let j = i + 1, v = "";
      while (j < src.length && src[j] !== '"') {
        if (src[j] === "\n") fail(src.slice(i, j));
        if (src[j] === "\\") {
          const e = src[j + 1];
          if (e === "u") {
            v += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          v += ESCAPES[e] ?? e;
          j += 2;
          continue;
        }
        v += src[j++];
      }
      if (j >= src.length) fail(src.slice(i));
      toks.push({ k: "string", v, line, col });
      i = j + 1;
      continue;
    }
    fail(c);
  }
  toks.push({ k: "eof", v: "", line, col: i - lineStart + 1 });
  return toks;
}

type Val =
  | { k: "var"; name: string }
  | { k: "enum"; v: string }
  | { k: "list"; items: Val[] }
  | { k: "obj"; fields: Record<string, Val> }
  | { k: "lit"; v: unknown };
interface Dir {
  name: string;
  args: Record<string, Val>;
}
interface Field {
  kind: "field";
  alias?: string;
  name: string;
  args: Record<string, Val>;
  dirs: Dir[];
  sel?: Sel[];
  line: number;
  col: number;
}
interface Inline {
  kind: "inline";
  on?: string;
  dirs: Dir[];
  sel: Sel[];
}
interface Spread {
  kind: "spread";
  name: string;
  dirs: Dir[];
}
type Sel = Field | Inline | Spread;
interface Op {
  type: string;
  name?: string;
  vars: { name: string; def?: Val }[];
  sel: Sel[];
}
interface Doc {
  ops: Op[];
  frags: Map<string, { on: string; sel: Sel[] }>;
}

function parse(src: string): Doc {
  const t = lex(src);
  let p = 0;
  const peek = () => t[p];
  const fail = (): never => {
    const tok = t[p];
    throw new GqlError(
      tok.k === "eof"
        ? "syntax error, unexpected end of file"
        : `Parse error on ${
          JSON.stringify(tok.v)
        } (${tok.k.toUpperCase()}) at [${tok.line}, ${tok.col}]`,
      {},
      [{ line: tok.line, column: tok.col }],
    );
  };
  const isP = (v: string) => peek().k === "punct" && peek().v === v;
  const expectP = (v: string) => (isP(v) ? t[p++] : fail());
  const name = () => (peek().k === "name" ? t[p++].v : fail());
  function value(): Val {
    const tok = peek();
    if (isP("$")) {
      p++;
      return { k: "var", name: name() };
    }
    if (isP("[")) {
      p++;
      const items: Val[] = [];
      while (!isP("]")) items.push(value());
      p++;
      return { k: "list", items };
    }
    if (isP("{")) {
      p++;
      const fields: Record<string, Val> = {};
      while (!isP("}")) {
        const n = name();
        expectP(":");
        fields[n] = value();
      }
      p++;
      return { k: "obj", fields };
    }
    p++;
    if (tok.k === "int" || tok.k === "float") {
      return { k: "lit", v: Number(tok.v) };
    }
    if (tok.k === "string") return { k: "lit", v: tok.v };
    if (tok.k === "name") {
      if (tok.v === "true" || tok.v === "false") {
        return { k: "lit", v: tok.v === "true" };
      }
      if (tok.v === "null") return { k: "lit", v: null };
      return { k: "enum", v: tok.v };
    }
    p--;
    return fail();
  }
  function args(): Record<string, Val> {
    const out: Record<string, Val> = {};
    if (!isP("(")) return out;
    p++;
    while (!isP(")")) {
      const n = name();
      expectP(":");
      out[n] = value();
    }
    p++;
    return out;
  }
  function dirs(): Dir[] {
    const out: Dir[] = [];
    while (isP("@")) {
      p++;
      out.push({ name: name(), args: args() });
    }
    return out;
  }
  function selSet(): Sel[] {
    expectP("{");
    const out: Sel[] = [];
    while (!isP("}")) out.push(selection());
    p++;
    if (!out.length) fail();
    return out;
  }
  function selection(): Sel {
    if (isP("...")) {
      p++;
      if (peek().k === "name" && peek().v !== "on") {
        return { kind: "spread", name: name(), dirs: dirs() };
      }
      let on: string | undefined;
      if (peek().k === "name" && peek().v === "on") {
        p++;
        on = name();
      }
      return { kind: "inline", on, dirs: dirs(), sel: selSet() };
    }
    const tok = peek();
    let n = name();
    let alias: string | undefined;
    if (isP(":")) {
      p++;
      alias = n;
      n = name();
    }
    const a = args();
    const d = dirs();
    return {
      kind: "field",
      alias,
      name: n,
      args: a,
      dirs: d,
      sel: isP("{") ? selSet() : undefined,
      line: tok.line,
      col: tok.col,
    };
  }
  function type() {
    if (isP("[")) {
      p++;
      type();
      expectP("]");
    } else name();
    if (isP("!")) p++;
  }
  const doc: Doc = { ops: [], frags: new Map() };
  while (peek().k !== "eof") {
    if (isP("{")) {
      doc.ops.push({ type: "query", vars: [], sel: selSet() });
      continue;
    }
    const kw = name();
    if (kw === "fragment") {
      const n = name();
      if (name() !== "on") {
        p--;
        fail();
      }
      const on = name();
      dirs();
      doc.frags.set(n, { on, sel: selSet() });
      continue;
    }
    if (!["query", "mutation", "subscription"].includes(kw)) {
      p--;
      fail();
    }
    const op: Op = { type: kw, vars: [], sel: [] };
    if (peek().k === "name") op.name = name();
    if (isP("(")) {
      p++;
      while (!isP(")")) {
        expectP("$");
        const n = name();
        expectP(":");
        type();
        let def: Val | undefined;
        if (isP("=")) {
          p++;
          def = value();
        }
        dirs();
        op.vars.push({ name: n, def });
      }
      p++;
    }
    dirs();
    op.sel = selSet();
    doc.ops.push(op);
  }
  if (!doc.ops.length) fail();
  return doc;
}

function resolveVal(v: Val, vars: Rec): unknown {
  switch (v.k) {
    case "var":
      return vars[v.name] ?? null;
    case "enum":
      return v.v;
    case "lit":
      return v.v;
    case "list":
      return v.items.map((x) => resolveVal(x, vars));
    case "obj":
      return Object.fromEntries(
        Object.entries(v.fields).map(([k, x]) => [k, resolveVal(x, vars)]),
      );
  }
}
const resolveArgs = (args: Record<string, Val>, vars: Rec): Rec =>
  Object.fromEntries(
    Object.entries(args).map(([k, v]) => [k, resolveVal(v, vars)]),
  );

// ---------------------------------------------------------------------------
// GraphQL: execution over views

/** A nested connection inside a view (variants, lineItems, …): paged by the
 * arguments of the field that selects it. */
class Conn {
  constructor(readonly typename: string, readonly items: Rec[]) {}
}

interface Ctx {
  shop: Shop;
  scopes: string[];
  vars: Rec;
  frags: Doc["frags"];
  origin: string;
  errors: Rec[];
  cost: number;
  counted: WeakSet<object>;
  unknown: Set<string>;
  search: Rec[];
}

/** Concrete types: a fragment on one of these applies only to it; a fragment
 * on anything else (Node, Media, …) applies to every object. */
const CONCRETE = new Set([
  "Shop",
  "Product",
  "ProductVariant",
  "Order",
  "LineItem",
  "Customer",
  "AbandonedCheckout",
  "AbandonedCheckoutLineItem",
  "BulkOperation",
  "WebhookSubscription",
  "MediaImage",
  "Video",
  "ExternalVideo",
  "Model3d",
  "Image",
  "WebhookHttpEndpoint",
  "WebhookEventBridgeEndpoint",
  "WebhookPubSubEndpoint",
  "MailingAddress",
  "MoneyBag",
  "MoneyV2",
]);

function included(dirs: Dir[], vars: Rec): boolean {
  for (const d of dirs) {
    const cond = d.args.if ? resolveVal(d.args.if, vars) : undefined;
    if (d.name === "skip" && cond === true) return false;
    if (d.name === "include" && cond === false) return false;
  }
  return true;
}

/** The fields a selection asks of an object of this type, fragments merged. */
function collect(
  sel: Sel[],
  typename: string,
  vars: Rec,
  frags: Doc["frags"],
  out = new Map<string, Field>(),
): Field[] {
  const applies = (on?: string) =>
    !on || on === typename || typename === "*" || !CONCRETE.has(on);
  for (const s of sel) {
    if (!included(s.dirs, vars)) continue;
    if (s.kind === "field") {
      const key = s.alias ?? s.name;
      const seen = out.get(key);
      out.set(
        key,
        seen ? { ...seen, sel: [...(seen.sel ?? []), ...(s.sel ?? [])] } : s,
      );
    } else if (s.kind === "inline") {
      if (applies(s.on)) collect(s.sel, typename, vars, frags, out);
    } else {
      const f = frags.get(s.name);
      if (f && applies(f.on)) collect(f.sel, typename, vars, frags, out);
    }
  }
  return [...out.values()];
}

const loc = (f: Field): Loc[] => [{ line: f.line, column: f.col }];

function cursorOf(key: string, value: unknown, id: unknown): string {
  return btoa(JSON.stringify({ k: key, v: value, id }));
}
function decodeCursor(c: unknown): { k: string; v: unknown; id: unknown } {
  try {
    const d = JSON.parse(atob(String(c)));
    if (d && typeof d === "object" && "k" in d) return d;
  } catch {
    // falls through
  }
  throw new GqlError("Invalid cursor for current pagination sort.", {
    code: "BAD_REQUEST",
  });
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

/** A page of a sorted list: first/after, last/before, as Relay has it. The
 * list is in (key, id) order, ascending (dir 1) or descending (dir -1). */
function slicePage<T>(
  items: T[],
  args: Rec,
  key: (t: T) => [unknown, unknown],
  cursorKey: string,
  dir = 1,
): { slice: T[]; cursors: string[]; hasNext: boolean; hasPrev: boolean } {
  const cursorAt = (raw: unknown) => {
    const c = decodeCursor(raw);
    if (c.k !== cursorKey) {
      throw new GqlError("Invalid cursor for current pagination sort.", {
        code: "BAD_REQUEST",
      });
    }
    return c;
  };
  const order = (t: T, c: { v: unknown; id: unknown }) => {
    const [v, id] = key(t);
    return dir * (compare(v, c.v) || compare(id, c.id));
  };
  /** The first index in [lo, hi) whose item is past the cursor (or at it). */
  const search = (c: { v: unknown; id: unknown }, strict: boolean) => {
    let lo = 0, hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const o = order(items[mid], c);
      if (strict ? o <= 0 : o < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let from = 0, to = items.length;
  if (args.after != null) from = search(cursorAt(args.after), true);
  if (args.before != null) {
    to = Math.max(from, search(cursorAt(args.before), false));
  }
  let start = from, end = to;
  if (typeof args.first === "number") end = Math.min(to, start + args.first);
  if (typeof args.last === "number") start = Math.max(start, end - args.last);
  const slice = items.slice(start, end);
  return {
    slice,
    cursors: slice.map((t) => cursorOf(cursorKey, ...key(t))),
    hasNext: end < items.length,
    hasPrev: start > 0,
  };
}

function connectionValue(
  typename: string,
  nodes: Rec[],
  cursors: string[],
  hasNext: boolean,
  hasPrev: boolean,
): Rec {
  const edge = typename.replace(/Connection$/, "Edge");
  return {
    __typename: typename,
    nodes,
    edges: nodes.map((node, i) => ({
      __typename: edge,
      cursor: cursors[i],
      node,
    })),
    pageInfo: {
      __typename: "PageInfo",
      hasNextPage: hasNext,
      hasPreviousPage: hasPrev,
      startCursor: cursors[0] ?? null,
      endCursor: cursors[cursors.length - 1] ?? null,
    },
  };
}

/** A nested connection, paged by index; counted once toward the actual cost. */
function projectConn(c: Conn, f: Field, ctx: Ctx): unknown {
  const args = resolveArgs(f.args, ctx.vars);
  const items = args.reverse === true ? [...c.items].reverse() : c.items;
  const indexed = items.map((node, i) => ({ node, i }));
  const page = slicePage(indexed, args, (x) => [x.i, 0], "i");
  if (!ctx.counted.has(c)) {
    ctx.counted.add(c);
    ctx.cost += 2 + page.slice.length;
  }
  return project(
    connectionValue(
      c.typename,
      page.slice.map((x) => x.node),
      page.cursors,
      page.hasNext,
      page.hasPrev,
    ),
    f.sel,
    ctx,
  );
}

/** Answers a selection from a view: plain values, lazy fields (functions of
 * the field's arguments), nested connections. */
function project(v: unknown, sel: Sel[] | undefined, ctx: Ctx): unknown {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map((x) => project(x, sel, ctx));
  if (typeof v !== "object") return v;
  const o = v as Rec;
  const typename = String(o.__typename ?? "");
  if (!sel) return o.__typename ? null : v;
  const out: Rec = {};
  for (const f of collect(sel, typename, ctx.vars, ctx.frags)) {
    const key = f.alias ?? f.name;
    if (f.name === "__typename") {
      out[key] = typename;
      continue;
    }
    let raw = o[f.name];
    if (raw === undefined) {
      ctx.unknown.add(`${typename}.${f.name}`);
      out[key] = null;
      continue;
    }
    if (typeof raw === "function") raw = raw(resolveArgs(f.args, ctx.vars));
    if (
      raw && typeof raw === "object" && !Array.isArray(raw) &&
      !(raw instanceof Conn) && !CONNECTION_PARTS.has(f.name)
    ) ctx.cost += settings.objectCost;
    out[key] = raw instanceof Conn
      ? projectConn(raw, f, ctx)
      : project(raw, f.sel, ctx);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Views: records in GraphQL Admin's shapes

const moneyV2 = (cents: number, cur: Currency) => ({
  __typename: "MoneyV2",
  amount: money(cents),
  currencyCode: cur,
});
const moneyBag = (cents: number, cur: Currency) => ({
  __typename: "MoneyBag",
  shopMoney: moneyV2(cents, cur),
  presentmentMoney: moneyV2(cents, cur),
});

function addressView(a: Address | null): Rec | null {
  if (!a) return null;
  return {
    __typename: "MailingAddress",
    name: `${a.first} ${a.last}`,
    firstName: a.first,
    lastName: a.last,
    company: null,
    address1: a.address1,
    address2: a.address2,
    city: a.city,
    province: a.province,
    provinceCode: a.provinceCode,
    country: a.country,
    countryCodeV2: a.countryCode,
    zip: a.zip,
    phone: a.phone,
    formattedArea: `${a.city} ${a.provinceCode}, ${a.country}`,
  };
}

function imageView(url: string | null, n = 1): Rec | null {
  if (!url) return null;
  const id = hash(url) % 100000000 + 30000000000000;
  return {
    __typename: "Image",
    id: gid("ProductImage", id + n),
    url,
    src: url,
    originalSrc: url,
    transformedSrc: url,
    altText: null,
    width: 1200,
    height: 1200,
  };
}

function shopView(s: Shop): Rec {
  return {
    __typename: "Shop",
    id: gid("Shop", s.id),
    name: s.name,
    email: `owner@${s.domain.replace(".myshopify.com", "")}.example.com`,
    contactEmail: `support@${
      s.domain.replace(".myshopify.com", "")
    }.example.com`,
    myshopifyDomain: s.domain,
    url: `https://${s.domain}`,
    currencyCode: s.currency,
    ianaTimezone: s.iana,
    timezoneOffsetMinutes: s.offsetMin,
    weightUnit: s.currency === "INR" ? "KILOGRAMS" : "POUNDS",
    createdAt: iso(s.createdAt),
    primaryDomain: {
      __typename: "Domain",
      host: s.domain,
      url: `https://${s.domain}`,
    },
    plan: {
      __typename: "ShopPlan",
      displayName: s.domain === BIG_SHOP ? "Shopify Plus" : "Basic",
      partnerDevelopment: false,
      shopifyPlus: s.domain === BIG_SHOP,
    },
  };
}

function variantView(s: Shop, p: Product, v: Variant): Rec {
  return {
    __typename: "ProductVariant",
    id: gid("ProductVariant", v.id),
    legacyResourceId: String(v.id),
    title: v.title,
    displayName: `${p.title} - ${v.title}`,
    sku: v.sku,
    barcode: v.barcode,
    price: money(v.price),
    compareAtPrice: v.compareAt === null ? null : money(v.compareAt),
    inventoryQuantity: v.qty,
    position: v.position,
    taxable: true,
    availableForSale: p.status === "ACTIVE" && v.qty > 0,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
    selectedOptions: [{
      __typename: "SelectedOption",
      name: p.optionName ?? "Title",
      value: v.title,
    }],
    image: imageView(v.image),
    inventoryItem: {
      __typename: "InventoryItem",
      id: gid("InventoryItem", v.id + 2000000000000),
      sku: v.sku,
      tracked: v.requiresShipping,
      requiresShipping: v.requiresShipping,
      measurement: {
        __typename: "InventoryItemMeasurement",
        weight: {
          __typename: "Weight",
          value: v.weight,
          unit: v.weightUnit,
        },
      },
    },
    product: () => productView(s, p),
  };
}

function productView(s: Shop, p: Product): Rec {
  const images = p.images.map((u, i) => imageView(u, i)!);
  const media = p.images.map((u, i) => ({
    __typename: "MediaImage",
    id: gid("MediaImage", hash(u) % 100000000 + 20000000000000 + i),
    alt: "",
    mediaContentType: "IMAGE",
    status: "READY",
    image: imageView(u, i),
    preview: {
      __typename: "MediaPreviewImage",
      image: imageView(u, i),
      status: "READY",
    },
  }));
  return {
    __typename: "Product",
    id: gid("Product", p.id),
    legacyResourceId: String(p.id),
    title: p.title,
    handle: p.handle,
    descriptionHtml: p.body,
    description: p.body.replace(/<[^>]+>/g, ""),
    vendor: p.vendor,
    productType: p.type,
    status: p.status,
    tags: p.tags,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
    publishedAt: p.status === "ACTIVE" ? iso(p.createdAt) : null,
    onlineStoreUrl: p.status === "ACTIVE"
      ? `https://${s.domain}/products/${p.handle}`
      : null,
    totalInventory: p.variants.reduce((n, v) => n + v.qty, 0),
    hasOnlyDefaultVariant: p.optionName === null,
    featuredImage: images[0] ?? null,
    featuredMedia: media[0] ?? null,
    images: new Conn("ImageConnection", images),
    media: new Conn("MediaConnection", media),
    options: [{
      __typename: "ProductOption",
      id: gid("ProductOption", p.id + 9000000000000),
      name: p.optionName ?? "Title",
      position: 1,
      values: p.variants.map((v) => v.title),
    }],
    variantsCount: {
      __typename: "Count",
      count: p.variants.length,
      precision: "EXACT",
    },
    variants: new Conn(
      "ProductVariantConnection",
      p.variants.map((v) => variantView(s, p, v)),
    ),
  };
}

function customerView(s: Shop, c: Customer): Rec {
  const spent = data(s).spent.get(c.id) ?? { count: 0, cents: 0 };
  return {
    __typename: "Customer",
    id: gid("Customer", c.id),
    legacyResourceId: String(c.id),
    firstName: c.first,
    lastName: c.last,
    displayName: `${c.first} ${c.last}`,
    email: c.email,
    phone: c.phone,
    defaultEmailAddress: {
      __typename: "CustomerEmailAddress",
      emailAddress: c.email,
      marketingState: c.tags.includes("newsletter")
        ? "SUBSCRIBED"
        : "NOT_SUBSCRIBED",
    },
    defaultPhoneNumber: c.phone
      ? {
        __typename: "CustomerPhoneNumber",
        phoneNumber: c.phone,
        marketingState: "NOT_SUBSCRIBED",
      }
      : null,
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
    tags: c.tags,
    note: c.note,
    state: c.verified ? "ENABLED" : "DISABLED",
    verifiedEmail: c.verified,
    numberOfOrders: String(spent.count),
    amountSpent: moneyV2(spent.cents, s.currency),
    defaultAddress: addressView(c.address),
    addresses: [addressView(c.address)],
  };
}

/** An order older than 60 days is hidden without read_all_orders. */
function orderVisible(o: Order, scopes: string[]): boolean {
  return scopes.includes("read_all_orders") ||
    o.createdAt >= Date.now() - 60 * DAY;
}

function orderView(s: Shop, o: Order): Rec {
  const d = data(s);
  const cur = s.currency;
  return {
    __typename: "Order",
    id: gid("Order", o.id),
    legacyResourceId: String(o.id),
    name: `#${o.number}`,
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
    processedAt: iso(o.createdAt),
    cancelledAt: o.cancelledAt === null ? null : iso(o.cancelledAt),
    cancelReason: o.cancelledAt === null ? null : "CUSTOMER",
    closed: o.fulfillment === "FULFILLED" || o.cancelledAt !== null,
    confirmed: true,
    test: false,
    email: o.email,
    phone: o.phone,
    note: o.note,
    tags: o.tags,
    sourceName: "web",
    customer: () => {
      const c = o.customerId === null
        ? undefined
        : d.customers.get(o.customerId);
      return c ? customerView(s, c) : null;
    },
    currencyCode: cur,
    presentmentCurrencyCode: cur,
    subtotalPriceSet: moneyBag(orderSubtotal(o), cur),
    totalPriceSet: moneyBag(orderTotal(o), cur),
    currentTotalPriceSet: moneyBag(
      o.financial === "REFUNDED" ? 0 : orderTotal(o),
      cur,
    ),
    totalTaxSet: moneyBag(o.tax, cur),
    totalDiscountsSet: moneyBag(o.discount, cur),
    totalShippingPriceSet: moneyBag(o.shipping, cur),
    displayFinancialStatus: o.financial,
    displayFulfillmentStatus: o.fulfillment,
    paymentGatewayNames: o.gateways,
    shippingAddress: addressView(o.shippingAddress),
    billingAddress: addressView(o.billingAddress),
    lineItems: new Conn(
      "LineItemConnection",
      o.items.map((li) => lineItemView(s, li)),
    ),
  };
}

function lineItemView(s: Shop, li: LineItem): Rec {
  const d = data(s);
  const cur = s.currency;
  return {
    __typename: "LineItem",
    id: gid("LineItem", li.id),
    title: li.title,
    name: li.variantTitle ? `${li.title} - ${li.variantTitle}` : li.title,
    variantTitle: li.variantTitle,
    sku: li.sku,
    vendor: li.vendor,
    quantity: li.qty,
    currentQuantity: li.qty,
    requiresShipping: li.requiresShipping,
    taxable: true,
    originalUnitPriceSet: moneyBag(li.price, cur),
    discountedUnitPriceSet: moneyBag(li.price, cur),
    originalTotalSet: moneyBag(li.price * li.qty, cur),
    variant: () => {
      const p = d.products.get(li.productId);
      const v = p?.variants.find((x) => x.id === li.variantId);
      return p && v ? variantView(s, p, v) : null;
    },
    product: () => {
      const p = d.products.get(li.productId);
      return p ? productView(s, p) : null;
    },
  };
}

function checkoutUrl(s: Shop, c: Checkout): string {
  return `https://${s.domain}/${s.id}/checkouts/ac/${c.token}/recover?key=${c.key}`;
}

function checkoutView(s: Shop, c: Checkout): Rec {
  const d = data(s);
  const cur = s.currency;
  return {
    __typename: "AbandonedCheckout",
    id: gid("AbandonedCheckout", c.id),
    name: `#${c.id}`,
    abandonedCheckoutUrl: checkoutUrl(s, c),
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
    completedAt: c.completedAt === null ? null : iso(c.completedAt),
    note: null,
    discountCodes: [],
    taxesIncluded: false,
    customer: () => {
      const x = c.customerId === null
        ? undefined
        : d.customers.get(c.customerId);
      return x ? customerView(s, x) : null;
    },
    billingAddress: addressView(c.address),
    shippingAddress: addressView(c.address),
    subtotalPriceSet: moneyBag(c.lineTotal, cur),
    totalLineItemsPriceSet: moneyBag(c.lineTotal, cur),
    totalTaxSet: moneyBag(c.tax, cur),
    totalDiscountSet: moneyBag(0, cur),
    totalDutiesSet: null,
    totalPriceSet: moneyBag(c.lineTotal + c.tax, cur),
    lineItems: new Conn(
      "AbandonedCheckoutLineItemConnection",
      c.items.map((li) => ({
        __typename: "AbandonedCheckoutLineItem",
        id: gid("AbandonedCheckoutLineItem", li.id),
        title: li.title,
        variantTitle: li.variantTitle,
        sku: li.sku,
        quantity: li.qty,
        image: imageView(li.image),
        originalUnitPriceSet: moneyBag(li.price, cur),
        originalTotalPriceSet: moneyBag(li.price * li.qty, cur),
        discountedUnitPriceSet: moneyBag(li.price, cur),
        discountedTotalPriceSet: moneyBag(li.price * li.qty, cur),
        variant: () => {
          const p = d.products.get(li.productId);
          const v = p?.variants.find((x) => x.id === li.variantId);
          return p && v ? variantView(s, p, v) : null;
        },
        product: () => {
          const p = d.products.get(li.productId);
          return p ? productView(s, p) : null;
        },
      })),
    ),
  };
}

function subscriptionView(sub: Subscription): Rec {
  return {
    __typename: "WebhookSubscription",
    id: gid("WebhookSubscription", sub.id),
    legacyResourceId: String(sub.id),
    topic: sub.topic,
    uri: sub.uri,
    callbackUrl: sub.uri,
    format: sub.format,
    includeFields: [],
    metafieldNamespaces: [],
    filter: null,
    createdAt: iso(sub.createdAt),
    updatedAt: iso(sub.updatedAt),
    apiVersion: {
      __typename: "ApiVersion",
      handle: app.apiVersion,
      displayName: app.apiVersion,
      supported: true,
    },
    endpoint: {
      __typename: "WebhookHttpEndpoint",
      callbackUrl: sub.uri,
    },
  };
}

// ---------------------------------------------------------------------------
// Search syntax (the query argument) and sorting

type Resource = "products" | "orders" | "customers" | "checkouts";

interface Term {
  neg: boolean;
  field: string;
  op: string;
  value: string;
}

function parseSearch(q: string): { terms: Term[]; free: string[] } {
  const terms: Term[] = [];
  const free: string[] = [];
  const re =
    /(-|NOT\s+)?([A-Za-z_]+):\s*(>=|<=|>|<|=)?\s*('[^']*'|"[^"]*"|[^\s)]+)|("[^"]*"|'[^']*'|\S+)/g;
  for (const m of q.matchAll(re)) {
    if (m[2]) {
      terms.push({
        neg: Boolean(m[1]),
        field: m[2].toLowerCase(),
        op: m[3] ?? "=",
        value: m[4].replace(/^['"]|['"]$/g, ""),
      });
    } else if (!/^(AND|OR|NOT|\(|\))$/.test(m[5])) {
      free.push(m[5].replace(/^['"]|['"]$/g, "").toLowerCase());
    }
  }
  return { terms, free };
}

const FINANCIAL: Record<string, string> = {
  pending: "PENDING",
  authorized: "AUTHORIZED",
  paid: "PAID",
  partially_paid: "PARTIALLY_PAID",
  partially_refunded: "PARTIALLY_REFUNDED",
  refunded: "REFUNDED",
  voided: "VOIDED",
};
const FULFILLMENT: Record<string, string[]> = {
  unshipped: ["UNFULFILLED"],
  unfulfilled: ["UNFULFILLED"],
  shipped: ["FULFILLED"],
  fulfilled: ["FULFILLED"],
  partial: ["PARTIALLY_FULFILLED"],
  restocked: ["RESTOCKED"],
};

type AnyRec = Product | Order | Customer | Checkout;

/** Whether a record matches one term; undefined when the field is unknown. */
function matchTerm(res: Resource, r: AnyRec, t: Term): boolean | undefined {
  const cmp = (a: number, b: number) =>
    t.op === ">"
      ? a > b
      : t.op === ">="
      ? a >= b
      : t.op === "<"
      ? a < b
      : t.op === "<="
      ? a <= b
      : a === b;
  const date = (ms: number) => {
    const when = Date.parse(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?$/.test(t.value)
        ? `${t.value}Z`
        : t.value,
    );
    if (Number.isNaN(when)) return undefined;
    // A bare date is the whole day for "=".
    if (t.op === "=" && /^\d{4}-\d{2}-\d{2}$/.test(t.value)) {
      return ms >= when && ms < when + DAY;
    }
    return cmp(ms, when);
  };
  const v = t.value.toLowerCase();
  const tags = (xs: string[]) => xs.some((x) => x.toLowerCase() === v);
  switch (t.field) {
    case "updated_at":
      return date(r.updatedAt);
    case "created_at":
      return date(r.createdAt);
    case "processed_at":
      return res === "orders" ? date(r.createdAt) : undefined;
    case "id":
      return cmp(r.id, Number(t.value.replace(/^gid:\/\/shopify\/\w+\//, "")));
    case "tag":
      return "tags" in r ? tags(r.tags) : undefined;
  }
  if (res === "products") {
    const p = r as Product;
    switch (t.field) {
      case "status":
        return v.split(",").includes(p.status.toLowerCase());
      case "title":
        return p.title.toLowerCase().includes(v.replace(/\*/g, ""));
      case "vendor":
        return p.vendor.toLowerCase() === v;
      case "product_type":
        return p.type.toLowerCase() === v;
      case "handle":
        return p.handle === v;
      case "sku":
        return p.variants.some((x) => x.sku.toLowerCase() === v);
    }
  }
  if (res === "orders") {
    const o = r as Order;
    switch (t.field) {
      case "financial_status":
        return o.financial === FINANCIAL[v];
      case "fulfillment_status":
        return (FULFILLMENT[v] ?? []).includes(o.fulfillment);
      case "status":
        return v === "any" ||
          (v === "cancelled"
            ? o.cancelledAt !== null
            : v === "closed"
            ? o.fulfillment === "FULFILLED" || o.cancelledAt !== null
            : v === "open"
            ? o.fulfillment !== "FULFILLED" && o.cancelledAt === null
            : false);
      case "email":
        return (o.email ?? "").toLowerCase() === v;
      case "name":
        return `#${o.number}` === t.value || String(o.number) === t.value;
      case "customer_id":
        return String(o.customerId) === t.value;
      case "gateway":
        return o.gateways.some((g) => g.toLowerCase().includes(v));
    }
  }
  if (res === "customers") {
    const c = r as Customer;
    switch (t.field) {
      case "email":
        return c.email === v;
      case "phone":
        return (c.phone ?? "") === t.value;
      case "first_name":
        return c.first.toLowerCase() === v;
      case "last_name":
        return c.last.toLowerCase() === v;
      case "state":
        return (c.verified ? "enabled" : "disabled") === v;
    }
  }
  if (res === "checkouts") {
    const c = r as Checkout;
    switch (t.field) {
      case "status":
        return (c.completedAt === null ? "open" : "closed") === v;
      case "recovery_state":
        return (c.completedAt === null ? "not_recovered" : "recovered") === v;
      case "email":
        return (c.email ?? "").toLowerCase() === v;
    }
  }
  return undefined;
}

function freeText(res: Resource, r: AnyRec): string {
  switch (res) {
    case "products": {
      const p = r as Product;
      return `${p.title} ${p.vendor} ${p.type} ${p.tags.join(" ")}`;
    }
    case "orders": {
      const o = r as Order;
      return `#${o.number} ${
        o.email ?? ""
      } ${o.shippingAddress.first} ${o.shippingAddress.last}`;
    }
    case "customers": {
      const c = r as Customer;
      return `${c.first} ${c.last} ${c.email} ${c.phone ?? ""}`;
    }
    case "checkouts": {
      const c = r as Checkout;
      return `${c.email ?? ""} ${c.address.first} ${c.address.last}`;
    }
  }
}

/** The records a query string selects; unknown fields are reported as
 * Shopify reports them, under extensions.search. */
function applySearch<T extends AnyRec>(
  res: Resource,
  items: T[],
  q: unknown,
  ctx: Ctx | undefined,
  field: string,
): T[] {
  if (typeof q !== "string" || !q.trim()) return items;
  const { terms, free } = parseSearch(q);
  const unknown = terms.filter((t) =>
    items.length && matchTerm(res, items[0], t) === undefined
  );
  if (unknown.length && ctx) {
    ctx.search.push({
      path: [field],
      query: q,
      warnings: unknown.map((t) => ({
        field: t.field,
        message: "Invalid search field for this query.",
      })),
    });
  }
  const active = terms.filter((t) => !unknown.includes(t));
  return items.filter((r) =>
    active.every((t) => (matchTerm(res, r, t) ?? true) !== t.neg) &&
    free.every((w) => freeText(res, r).toLowerCase().includes(w))
  );
}

/** Each connection's sort keys as Shopify's enums have them, and how each
 * sorts here (a key not emulated sorts by id). */
const SORT_KEYS: Record<Resource, { enumName: string; keys: string[] }> = {
  products: {
    enumName: "ProductSortKeys",
    keys: [
      "CREATED_AT",
      "ID",
      "INVENTORY_TOTAL",
      "PRODUCT_TYPE",
      "PUBLISHED_AT",
      "RELEVANCE",
      "TITLE",
      "UPDATED_AT",
      "VENDOR",
    ],
  },
  orders: {
    enumName: "OrderSortKeys",
    keys: [
      "CREATED_AT",
      "CUSTOMER_NAME",
      "DESTINATION",
      "FINANCIAL_STATUS",
      "FULFILLMENT_STATUS",
      "ID",
      "ORDER_NUMBER",
      "PO_NUMBER",
      "PROCESSED_AT",
      "RELEVANCE",
      "TOTAL_ITEMS_QUANTITY",
      "TOTAL_PRICE",
      "UPDATED_AT",
    ],
  },
  customers: {
    enumName: "CustomerSortKeys",
    keys: ["CREATED_AT", "ID", "LOCATION", "NAME", "RELEVANCE", "UPDATED_AT"],
  },
  checkouts: {
    enumName: "AbandonedCheckoutSortKeys",
    keys: [
      "CHECKOUT_ID",
      "CREATED_AT",
      "CUSTOMER_NAME",
      "ID",
      "RELEVANCE",
      "TOTAL_PRICE",
    ],
  },
};

function sortValue(res: Resource, key: string, r: AnyRec): unknown {
  switch (key) {
    case "UPDATED_AT":
      return r.updatedAt;
    case "CREATED_AT":
    case "PROCESSED_AT":
    case "PUBLISHED_AT":
      return r.createdAt;
    case "TITLE":
      return (r as Product).title;
    case "VENDOR":
      return (r as Product).vendor;
    case "PRODUCT_TYPE":
      return (r as Product).type;
    case "INVENTORY_TOTAL":
      return (r as Product).variants.reduce((n, v) => n + v.qty, 0);
    case "ORDER_NUMBER":
      return (r as Order).number;
    case "TOTAL_PRICE":
      return res === "orders"
        ? orderTotal(r as Order)
        : (r as Checkout).lineTotal + (r as Checkout).tax;
    case "NAME":
      return `${(r as Customer).first} ${(r as Customer).last}`;
    default:
      return r.id;
  }
}

/** Checks a sortKey against its enum, as GraphQL validation words it. */
function checkSortKey(res: Resource, f: Field, ctx: Ctx): string {
  const raw = f.args.sortKey;
  const key = raw ? resolveVal(raw, ctx.vars) : "ID";
  const { enumName, keys } = SORT_KEYS[res];
  if (key === null || key === undefined) return "ID";
  if (!keys.includes(String(key))) {
    if (raw?.k === "var") {
      throw new GqlError(
        `Variable $${raw.name} of type ${enumName} was provided invalid value`,
        {
          code: "INVALID_VARIABLE",
          value: key,
          problems: [{
            path: [],
            explanation: `Expected "${key}" to be one of: ${keys.join(", ")}`,
          }],
        },
        loc(f),
      );
    }
    throw new GqlError(
      `Argument 'sortKey' on Field '${f.name}' has an invalid value (${key}). Expected type '${enumName}'.`,
      {
        code: "argumentLiteralsIncompatible",
        typeName: "Field",
        argumentName: "sortKey",
      },
      loc(f),
      [f.alias ?? f.name, "sortKey"],
    );
  }
  return String(key);
}

function recordsOf(s: Shop, res: Resource, scopes: string[]): AnyRec[] {
  const d = data(s);
  switch (res) {
    case "products":
      return [...d.products.values()];
    case "customers":
      return [...d.customers.values()];
    case "checkouts":
      return [...d.checkouts.values()];
    case "orders":
      return [...d.orders.values()].filter((o) => orderVisible(o, scopes));
  }
}

function viewOf(s: Shop, res: Resource, r: AnyRec): Rec {
  switch (res) {
    case "products":
      return productView(s, r as Product);
    case "orders":
      return orderView(s, r as Order);
    case "customers":
      return customerView(s, r as Customer);
    case "checkouts":
      return checkoutView(s, r as Checkout);
  }
}

/** Filtered and sorted records, as a connection or a bulk export sees them. */
function selectRecords(
  s: Shop,
  res: Resource,
  args: Rec,
  scopes: string[],
  sortKey: string,
  ctx: Ctx | undefined,
  field: string,
): { items: AnyRec[]; key: (r: AnyRec) => [unknown, unknown]; dir: number } {
  const found = applySearch(
    res,
    recordsOf(s, res, scopes),
    args.query,
    ctx,
    field,
  );
  const keyed = found.map((r) => ({ r, v: sortValue(res, sortKey, r) }));
  const dir = args.reverse === true ? -1 : 1;
  keyed.sort((a, b) => dir * (compare(a.v, b.v) || compare(a.r.id, b.r.id)));
  return {
    items: keyed.map((x) => x.r),
    key: (r) => [sortValue(res, sortKey, r), r.id],
    dir,
  };
}

const CONNECTION_TYPES: Record<Resource, string> = {
  products: "ProductConnection",
  orders: "OrderConnection",
  customers: "CustomerConnection",
  checkouts: "AbandonedCheckoutConnection",
};

function rootConnection(
  res: Resource,
  ctx: Ctx,
  args: Rec,
  f: Field,
): Rec {
  const sortKey = checkSortKey(res, f, ctx);
  const { items, key, dir } = selectRecords(
    ctx.shop,
    res,
    args,
    ctx.scopes,
    sortKey,
    ctx,
    f.alias ?? f.name,
  );
  const page = slicePage(items, args, key, sortKey, dir);
  ctx.cost += 2 + page.slice.length;
  return connectionValue(
    CONNECTION_TYPES[res],
    page.slice.map((r) => viewOf(ctx.shop, res, r)),
    page.cursors,
    page.hasNext,
    page.hasPrev,
  );
}

// ---------------------------------------------------------------------------
// Root fields

const SCOPES: Record<string, string> = {
  products: "read_products",
  product: "read_products",
  productsCount: "read_products",
  productVariant: "read_products",
  orders: "read_orders",
  order: "read_orders",
  ordersCount: "read_orders",
  customers: "read_customers",
  customer: "read_customers",
  customersCount: "read_customers",
  abandonedCheckouts: "read_orders",
  abandonedCheckoutsCount: "read_orders",
};

/** Root connection fields: they need first or last. */
const ROOT_CONNECTIONS: Record<string, Resource | undefined> = {
  products: "products",
  orders: "orders",
  customers: "customers",
  abandonedCheckouts: "checkouts",
  webhookSubscriptions: undefined,
  bulkOperations: undefined,
};
/** Nested connection fields that need first or last too. */
const NESTED_CONNECTIONS = new Set([
  "variants",
  "lineItems",
  "images",
  "media",
]);

function parseGid(id: unknown): { type: string; n: number } | undefined {
  const m = String(id ?? "").match(/^gid:\/\/shopify\/(\w+)\/(\d+)/);
  return m ? { type: m[1], n: Number(m[2]) } : undefined;
}

/** Any object by its GID, within what the token may see. */
function nodeById(ctx: Ctx, id: unknown): Rec | null {
  const g = parseGid(id);
  if (!g) return null;
  const s = ctx.shop;
  const d = data(s);
  const can = (scope: string) => hasScope(ctx.scopes, scope);
  switch (g.type) {
    case "Product": {
      const p = d.products.get(g.n);
      return p && can("read_products") ? productView(s, p) : null;
    }
    case "ProductVariant": {
      if (!can("read_products")) return null;
      for (const p of d.products.values()) {
        const v = p.variants.find((x) => x.id === g.n);
        if (v) return variantView(s, p, v);
      }
      return null;
    }
    case "Order": {
      const o = d.orders.get(g.n);
      return o && can("read_orders") && orderVisible(o, ctx.scopes)
        ? orderView(s, o)
        : null;
    }
    case "Customer": {
      const c = d.customers.get(g.n);
      return c && can("read_customers") ? customerView(s, c) : null;
    }
    case "AbandonedCheckout": {
      const c = d.checkouts.get(g.n);
      return c && can("read_orders") ? checkoutView(s, c) : null;
    }
    case "BulkOperation": {
      const op = bulkOps.get(g.n);
      return op && op.shop === s.domain ? bulkView(op, ctx.origin) : null;
    }
    case "WebhookSubscription": {
      const sub = s.subs.find((x) => x.id === g.n);
      return sub ? subscriptionView(sub) : null;
    }
    case "Shop":
      return g.n === s.id ? shopView(s) : null;
  }
  return null;
}

function countOf(res: Resource, ctx: Ctx, args: Rec, f: Field): Rec {
  const items = applySearch(
    res,
    recordsOf(ctx.shop, res, ctx.scopes),
    args.query,
    ctx,
    f.alias ?? f.name,
  );
  const limit = args.limit === null
    ? Infinity
    : typeof args.limit === "number"
    ? args.limit
    : 10000;
  return {
    __typename: "Count",
    count: Math.min(items.length, limit),
    precision: items.length > limit ? "AT_LEAST" : "EXACT",
  };
}

type Resolver = (ctx: Ctx, args: Rec, f: Field) => unknown;

const QUERIES: Record<string, Resolver> = {
  shop: (ctx) => shopView(ctx.shop),
  products: (ctx, a, f) => rootConnection("products", ctx, a, f),
  orders: (ctx, a, f) => rootConnection("orders", ctx, a, f),
  customers: (ctx, a, f) => rootConnection("customers", ctx, a, f),
  abandonedCheckouts: (ctx, a, f) => rootConnection("checkouts", ctx, a, f),
  product: (ctx, a) =>
    parseGid(a.id)?.type === "Product" ? nodeById(ctx, a.id) : null,
  productVariant: (ctx, a) =>
    parseGid(a.id)?.type === "ProductVariant" ? nodeById(ctx, a.id) : null,
  order: (ctx, a) =>
    parseGid(a.id)?.type === "Order" ? nodeById(ctx, a.id) : null,
  customer: (ctx, a) =>
    parseGid(a.id)?.type === "Customer" ? nodeById(ctx, a.id) : null,
  abandonedCheckout: (ctx, a) =>
    parseGid(a.id)?.type === "AbandonedCheckout" ? nodeById(ctx, a.id) : null,
  node: (ctx, a) => nodeById(ctx, a.id),
  nodes: (ctx, a) =>
    (Array.isArray(a.ids) ? a.ids : []).map((id) => nodeById(ctx, id)),
  productsCount: (ctx, a, f) => countOf("products", ctx, a, f),
  ordersCount: (ctx, a, f) => countOf("orders", ctx, a, f),
  customersCount: (ctx, a, f) => countOf("customers", ctx, a, f),
  abandonedCheckoutsCount: (ctx, a, f) => countOf("checkouts", ctx, a, f),
  bulkOperation: (ctx, a) =>
    parseGid(a.id)?.type === "BulkOperation" ? nodeById(ctx, a.id) : null,
  currentBulkOperation: (ctx, a) => {
    if (a.type === "MUTATION") return null;
    const op = ctx.shop.bulk[ctx.shop.bulk.length - 1];
    return op ? bulkView(op, ctx.origin) : null;
  },
  bulkOperations: (ctx) =>
    new Conn(
      "BulkOperationConnection",
      [...ctx.shop.bulk].reverse().map((op) => bulkView(op, ctx.origin)),
    ),
  webhookSubscriptions: (ctx, a) => {
    const topics = Array.isArray(a.topics) ? a.topics.map(String) : undefined;
    const uri = a.uri ?? a.callbackUrl;
    return new Conn(
      "WebhookSubscriptionConnection",
      ctx.shop.subs.filter((s) =>
        (!topics || topics.includes(s.topic)) && (!uri || s.uri === uri)
      ).map(subscriptionView),
    );
  },
  webhookSubscription: (ctx, a) =>
    parseGid(a.id)?.type === "WebhookSubscription" ? nodeById(ctx, a.id) : null,
};

const MUTATIONS: Record<string, Resolver> = {
  bulkOperationRunQuery: (ctx, a) => runBulk(ctx, a),
  bulkOperationCancel: (ctx, a) => cancelBulk(ctx, a),
  webhookSubscriptionCreate: (ctx, a, f) => createSubscription(ctx, a, f),
  webhookSubscriptionDelete: (ctx, a) => {
    const g = parseGid(a.id);
    const i = ctx.shop.subs.findIndex((s) =>
      g?.type === "WebhookSubscription" && s.id === g.n
    );
    if (i < 0) {
      return {
        __typename: "WebhookSubscriptionDeletePayload",
        deletedWebhookSubscriptionId: null,
        userErrors: [userError(["id"], "Webhook subscription does not exist")],
      };
    }
    ctx.shop.subs.splice(i, 1);
    return {
      __typename: "WebhookSubscriptionDeletePayload",
      deletedWebhookSubscriptionId: a.id,
      userErrors: [],
    };
  },
};

const userError = (field: string[] | null, message: string, code?: string) => ({
  __typename: "UserError",
  field,
  message,
  ...(code ? { code } : {}),
});

// ---------------------------------------------------------------------------
// Cost

/** The requested cost of a selection's nested connections (objects and
 * scalars cost nothing by themselves). */
function selectionCost(sel: Sel[] | undefined, ctx: Ctx): number {
  if (!sel) return 0;
  let total = 0;
  for (const f of collect(sel, "*", ctx.vars, ctx.frags)) {
    if (isConnection(f)) total += connectionCost(f, ctx);
    else {
      const object = f.sel && !CONNECTION_PARTS.has(f.name);
      total += (object ? settings.objectCost : 0) + selectionCost(f.sel, ctx);
    }
  }
  return total;
}

const isConnection = (f: Field) =>
  NESTED_CONNECTIONS.has(f.name) || f.name in ROOT_CONNECTIONS ||
  "first" in f.args || "last" in f.args;

/** 2 + N × (1 + the node's nested connections), N from first or last. */
function connectionCost(f: Field, ctx: Ctx): number {
  const a = resolveArgs(f.args, ctx.vars);
  const n = a.first ?? a.last;
  if (n === null || n === undefined) {
    throw new GqlError(
      "you must provide one of first or last",
      { code: "BAD_REQUEST" },
      loc(f),
      [f.alias ?? f.name],
    );
  }
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 250) {
    const which = a.first != null ? "first" : "last";
    throw new GqlError(
      `Argument '${which}' on Field '${f.name}' must be between 1 and 250 (got ${
        JSON.stringify(n)
      }).`,
      { code: "BAD_REQUEST", argumentName: which },
      loc(f),
      [f.alias ?? f.name],
    );
  }
  if (a.last != null && a.before == null && a.first == null) {
    throw new GqlError(
      "using last without before is not supported",
      { code: "BAD_REQUEST" },
      loc(f),
      [f.alias ?? f.name],
    );
  }
  const inner = collect(f.sel ?? [], "*", ctx.vars, ctx.frags);
  let node = 0;
  for (const x of inner) {
    if (x.name === "nodes") node = Math.max(node, selectionCost(x.sel, ctx));
    if (x.name === "edges") {
      for (const e of collect(x.sel ?? [], "*", ctx.vars, ctx.frags)) {
        if (e.name === "node") {
          node = Math.max(node, selectionCost(e.sel, ctx));
        }
      }
    }
  }
  return 2 + n * (1 + node);
}

/** Checks the root fields and computes the requested cost. */
function requestedCost(op: Op, ctx: Ctx): number {
  const rootType = op.type === "mutation" ? "Mutation" : "QueryRoot";
  const table = op.type === "mutation" ? MUTATIONS : QUERIES;
  let total = 0;
  for (const f of collect(op.sel, rootType, ctx.vars, ctx.frags)) {
    if (f.name === "__typename") continue;
    if (!(f.name in table)) {
      throw new GqlError(
        `Field '${f.name}' doesn't exist on type '${rootType}'`,
        { code: "undefinedField", typeName: rootType, fieldName: f.name },
        loc(f),
        [op.type, f.name],
      );
    }
    if (op.type === "mutation") total += 10;
    else if (isConnection(f)) {
      const res = ROOT_CONNECTIONS[f.name];
      if (res) checkSortKey(res, f, ctx);
      total += connectionCost(f, ctx);
    } else total += 1 + selectionCost(f.sel, ctx);
  }
  return total;
}

function refill(s: Shop): number {
  const now = performance.now();
  s.bucket.available = Math.min(
    settings.maximumAvailable,
    s.bucket.available + ((now - s.bucket.at) / 1000) * settings.restoreRate,
  );
  s.bucket.at = now;
  return s.bucket.available;
}

const throttleStatus = (s: Shop) => ({
  maximumAvailable: settings.maximumAvailable,
  currentlyAvailable: Math.floor(s.bucket.available),
  restoreRate: settings.restoreRate,
});

// ---------------------------------------------------------------------------
// The GraphQL endpoint

async function graphql(
  req: Request,
  s: Shop,
  token: Token,
  origin: string,
): Promise<Response> {
  s.stats.graphql_calls++;
  let body: Rec;
  try {
    const raw = await req.text();
    const type = req.headers.get("content-type") ?? "";
    body = type.includes("application/graphql")
      ? { query: raw }
      : JSON.parse(raw);
  } catch {
    body = {};
  }
  if (typeof body?.query !== "string" || !body.query.trim()) {
    return json(400, {
      errors: { query: "Required parameter missing or invalid" },
    });
  }
  const vars =
    (body.variables && typeof body.variables === "object"
      ? body.variables
      : {}) as Rec;
  const ctx: Ctx = {
    shop: s,
    scopes: token.scopes,
    vars,
    frags: new Map(),
    origin,
    errors: [],
    cost: 0,
    counted: new WeakSet(),
    unknown: new Set(),
    search: [],
  };
  const answer = (b: Rec) =>
    json(200, b, { "x-shopify-api-version": app.apiVersion });
  let op: Op;
  let requested: number;
  try {
    const doc = parse(body.query);
    ctx.frags = doc.frags;
    const named = typeof body.operationName === "string" &&
      body.operationName;
    const found = named
      ? doc.ops.find((o) => o.name === body.operationName)
      : doc.ops.length === 1
      ? doc.ops[0]
      : undefined;
    if (!found) {
      throw new GqlError(
        named
          ? `No operation named "${body.operationName}"`
          : "An operation name is required",
      );
    }
    op = found;
    if (op.type === "subscription") {
      throw new GqlError("Subscriptions are not supported.");
    }
    for (const v of op.vars) {
      if (!(v.name in vars) && v.def) vars[v.name] = resolveVal(v.def, {});
    }
    requested = requestedCost(op, ctx);
  } catch (e) {
    if (!(e instanceof GqlError)) throw e;
    refill(s);
    return answer({
      errors: [e.toJSON()],
      extensions: {
        cost: {
          requestedQueryCost: null,
          actualQueryCost: null,
          throttleStatus: throttleStatus(s),
        },
      },
    });
  }
  const available = refill(s);
  if (requested > MAX_QUERY_COST) {
    s.stats.max_cost_exceeded++;
    return answer({
      errors: [{
        message:
          `Query cost is ${requested}, which exceeds the single query max cost limit (${MAX_QUERY_COST}).\n\n` +
          "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n" +
          "cost of a query is calculated.\n\n" +
          "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n" +
          "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
        extensions: {
          code: "MAX_COST_EXCEEDED",
          cost: requested,
          maxCost: MAX_QUERY_COST,
        },
      }],
      extensions: {
        cost: {
          requestedQueryCost: requested,
          actualQueryCost: null,
          throttleStatus: throttleStatus(s),
        },
      },
    });
  }
  if (requested > available) {
    s.stats.throttled++;
    return answer({
      errors: [{
        message: "Throttled",
        extensions: { code: "THROTTLED", documentation: RATE_DOCS },
      }],
      extensions: {
        cost: {
          requestedQueryCost: requested,
          actualQueryCost: null,
          throttleStatus: throttleStatus(s),
        },
      },
    });
  }
  s.bucket.available -= requested;
  const out: Rec = {};
  let actual: number;
  try {
    out.data = execute(op, ctx);
    actual = op.type === "mutation" ? requested : Math.min(ctx.cost, requested);
  } catch (e) {
    if (!(e instanceof GqlError)) throw e;
    s.bucket.available += requested;
    return answer({ errors: [e.toJSON()] });
  }
  s.bucket.available += requested - actual;
  s.stats.points_spent += actual;
  if (ctx.errors.length) out.errors = ctx.errors;
  out.extensions = {
    cost: {
      requestedQueryCost: requested,
      actualQueryCost: actual,
      throttleStatus: throttleStatus(s),
    },
    ...(ctx.search.length ? { search: ctx.search } : {}),
    ...(ctx.unknown.size
      ? { sandbox: { unknownFields: [...ctx.unknown].sort() } }
      : {}),
  };
  // Shopify puts errors before data.
  return answer(
    out.errors
      ? { errors: out.errors, data: out.data, extensions: out.extensions }
      : out,
  );
}

function execute(op: Op, ctx: Ctx): Rec {
  const rootType = op.type === "mutation" ? "Mutation" : "QueryRoot";
  const table = op.type === "mutation" ? MUTATIONS : QUERIES;
  const out: Rec = {};
  for (const f of collect(op.sel, rootType, ctx.vars, ctx.frags)) {
    const key = f.alias ?? f.name;
    if (f.name === "__typename") {
      out[key] = rootType;
      continue;
    }
    try {
      const scope = SCOPES[f.name];
      if (scope && !hasScope(ctx.scopes, scope)) {
        throw new FieldError(
          `Access denied for ${f.name} field. Required access: \`${scope}\` access scope.`,
          {
            code: "ACCESS_DENIED",
            documentation: "https://shopify.dev/api/usage/access-scopes",
            requiredAccess: `\`${scope}\` access scope.`,
          },
          loc(f),
          [key],
        );
      }
      const raw = table[f.name](ctx, resolveArgs(f.args, ctx.vars), f);
      if (op.type === "query" && !(f.name in ROOT_CONNECTIONS)) ctx.cost += 1;
      out[key] = raw instanceof Conn
        ? projectConn(raw, f, ctx)
        : project(raw, f.sel, ctx);
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      ctx.errors.push(e.toJSON());
      out[key] = null;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Bulk operations

function bulkStatus(op: BulkOp, now: number): string {
  if (op.canceledAt !== undefined) {
    return now < op.canceledAt + 100 ? "CANCELING" : "CANCELED";
  }
  if (now < op.startedAt) return "CREATED";
  if (now < op.doneAt) return "RUNNING";
  return op.outcome === "COMPLETED" ? "COMPLETED" : "FAILED";
}

const storageQuery = (n: number) =>
  `?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=604800&X-Goog-Signature=${
    hexOf(utf8.encode(String(n * 7919))).slice(0, 32)
  }`;

function bulkView(op: BulkOp, origin: string): Rec {
  const now = Date.now();
  const status = bulkStatus(op, now);
  const at = op.canceledAt ?? now;
  const progress = at >= op.doneAt
    ? 1
    : at <= op.startedAt
    ? 0
    : (at - op.startedAt) / (op.doneAt - op.startedAt);
  const denied = op.outcome === "ACCESS_DENIED";
  const objects = denied ? 0 : Math.floor(op.objects * progress);
  const roots = denied ? 0 : Math.floor(op.roots * progress);
  const completed = status === "COMPLETED";
  const partial = status === "FAILED" && op.outcome === "PARTIAL";
  return {
    __typename: "BulkOperation",
    id: gid("BulkOperation", op.n),
    type: "QUERY",
    status,
    errorCode: status === "FAILED"
      ? (denied ? "ACCESS_DENIED" : "INTERNAL_SERVER_ERROR")
      : null,
    query: op.query,
    createdAt: iso(op.createdAt),
    completedAt: completed || status === "FAILED" ? iso(op.doneAt) : null,
    objectCount: String(completed ? op.objects : objects),
    rootObjectCount: String(completed ? op.roots : roots),
    fileSize: completed && op.objects
      ? String(utf8.encode(op.jsonl).length)
      : partial
      ? String(utf8.encode(op.partial).length)
      : null,
    url: completed && op.objects
      ? `${origin}/shopify/_bulk/${op.n}.jsonl${storageQuery(op.n)}`
      : null,
    partialDataUrl: partial
      ? `${origin}/shopify/_bulk/${op.n}-partial.jsonl${storageQuery(op.n)}`
      : null,
  };
}

const BULK_ROOTS: Record<string, Resource> = {
  products: "products",
  orders: "orders",
  customers: "customers",
  abandonedCheckouts: "checkouts",
};
const BULK_SCOPES: Record<Resource, string> = {
  products: "read_products",
  orders: "read_orders",
  customers: "read_customers",
  checkouts: "read_orders",
};

function bulkPayload(op: Rec | null, errors: Rec[]): Rec {
  return {
    __typename: "BulkOperationRunQueryPayload",
    bulkOperation: op,
    userErrors: errors,
  };
}

function runBulk(ctx: Ctx, a: Rec): Rec {
  const s = ctx.shop;
  const invalid = (message: string) =>
    bulkPayload(null, [userError(["query"], message, "INVALID")]);
  const query = typeof a.query === "string" ? a.query : "";
  let doc: Doc;
  try {
    doc = parse(query);
  } catch (e) {
    if (!(e instanceof GqlError)) throw e;
    return invalid(`Invalid bulk query: ${e.message}`);
  }
  const op = doc.ops[0];
  const roots = collect(op.sel, "QueryRoot", {}, doc.frags).filter((f) =>
    f.name !== "__typename"
  );
  const root = roots.find((f) =>
    f.sel?.some((x) =>
      x.kind === "field" && ["edges", "nodes"].includes(x.name)
    )
  );
  if (!root) {
    return invalid("Bulk queries must contain at least one connection.");
  }
  const res = BULK_ROOTS[root.name];
  if (!res) {
    return invalid(
      `Bulk queries on '${root.name}' are not emulated by the sandbox (products, orders, customers and abandonedCheckouts are).`,
    );
  }
  // Every connection must go through edges > node; nested ones need the parent's id.
  const viaNodes: string[] = [];
  const withoutId: string[] = [];
  const nodeSel = (f: Field): Sel[] | undefined => {
    const inner = collect(f.sel ?? [], "*", {}, doc.frags);
    if (inner.some((x) => x.name === "nodes")) viaNodes.push(f.name);
    const edges = inner.find((x) => x.name === "edges");
    return edges
      ? collect(edges.sel ?? [], "*", {}, doc.frags).find((x) =>
        x.name === "node"
      )?.sel
      : undefined;
  };
  const rootNode = nodeSel(root) ?? [];
  const rootFields = collect(rootNode, "*", {}, doc.frags);
  const nested = rootFields.filter((f) => NESTED_CONNECTIONS.has(f.name));
  const nestedSel = nested.map((f) => ({ f, sel: nodeSel(f) ?? [] }));
  if (nested.length && !rootFields.some((f) => f.name === "id" && !f.alias)) {
    withoutId.push(root.name);
  }
  if (viaNodes.length) {
    return invalid(
      `All connection fields in a bulk query must select their contents using 'edges' > 'node', e.g: '${root.name} { edges { node {'. Selecting via 'nodes' is not supported. Invalid connection fields: '${
        viaNodes.join("', '")
      }'.`,
    );
  }
  if (withoutId.length) {
    return invalid(
      `The parent 'node' field for a nested connection must select the 'id' field without an alias and must be of 'ID' return type. Connection fields without 'id': ${
        withoutId.join(", ")
      }.`,
    );
  }
  const running = s.bulk.filter((b) =>
    ["CREATED", "RUNNING", "CANCELING"].includes(bulkStatus(b, Date.now()))
  );
  if (running.length >= MAX_BULK_RUNNING) {
    return bulkPayload(null, [
      userError(
        null,
        `A bulk query operation for this app and shop is already in progress: ${
          gid("BulkOperation", running[0].n)
        }.`,
        "OPERATION_IN_PROGRESS",
      ),
    ]);
  }

  // The snapshot, taken now: one line per root, then its children.
  const rootArgs = resolveArgs(root.args, {});
  const sortKey = typeof rootArgs.sortKey === "string" &&
      SORT_KEYS[res].keys.includes(rootArgs.sortKey)
    ? rootArgs.sortKey
    : "ID";
  const denied = !hasScope(ctx.scopes, BULK_SCOPES[res]);
  const { items } = denied
    ? { items: [] as AnyRec[] }
    : selectRecords(s, res, rootArgs, ctx.scopes, sortKey, undefined, "");
  const plain = rootNode.filter((x) =>
    x.kind !== "field" || !NESTED_CONNECTIONS.has(x.name)
  );
  const lines: string[] = [];
  const rootEnds: number[] = [];
  const sub: Ctx = { ...ctx, vars: {}, frags: doc.frags, cost: 0, errors: [] };
  for (const r of items) {
    const view = viewOf(s, res, r);
    lines.push(JSON.stringify(project(view, plain, sub)));
    for (const { f, sel } of nestedSel) {
      const conn = view[f.name];
      if (!(conn instanceof Conn)) continue;
      for (const child of conn.items) {
        lines.push(
          JSON.stringify({
            ...(project(child, sel, sub) as Rec),
            __parentId: view.id,
          }),
        );
      }
    }
    rootEnds.push(lines.length);
  }
  const now = Date.now();
  const fault = bulkFault;
  bulkFault = undefined;
  const bulk: BulkOp = {
    n: nextBulk++,
    shop: s.domain,
    query,
    createdAt: floorSec(now),
    startedAt: now + 50,
    doneAt: now + 50 +
      Math.max(300, Math.round(lines.length * settings.bulkMsPerObject)),
    outcome: denied
      ? "ACCESS_DENIED"
      : fault === "FAILED"
      ? "FAILED"
      : fault === "partial"
      ? "PARTIAL"
      : "COMPLETED",
    jsonl: lines.length ? lines.join("\n") + "\n" : "",
    partial: "",
    roots: items.length,
    objects: lines.length,
  };
  if (bulk.outcome === "PARTIAL") {
    const cut = rootEnds[Math.floor(rootEnds.length / 2)] ?? 0;
    bulk.partial = lines.slice(0, cut).map((l) => l + "\n").join("");
  }
  if (bulk.outcome === "ACCESS_DENIED") bulk.doneAt = now + 100;
  bulk.timer = setTimeout(() => finished(bulk), bulk.doneAt - now + 5);
  s.bulk.push(bulk);
  bulkOps.set(bulk.n, bulk);
  s.stats.bulk_started++;
  return bulkPayload(bulkView(bulk, ctx.origin), []);
}

/** bulk_operations/finish, to the shop's subscription if it has one. */
function finished(op: BulkOp) {
  op.timer = undefined;
  const s = shops.get(op.shop);
  if (!s || s.uninstalled) return;
  const sub = s.subs.find((x) => x.topic === "BULK_OPERATIONS_FINISH");
  if (!sub) return;
  const status = bulkStatus(op, Date.now()).toLowerCase();
  void deliver(s, "bulk_operations/finish", sub.uri, {
    admin_graphql_api_id: gid("BulkOperation", op.n),
    completed_at: local(op.doneAt, s.offsetMin),
    created_at: local(op.createdAt, s.offsetMin),
    error_code: status === "failed"
      ? (op.outcome === "ACCESS_DENIED"
        ? "access_denied"
        : "internal_server_error")
      : null,
    status,
    type: "query",
  }).catch(() => {});
}

function cancelBulk(ctx: Ctx, a: Rec): Rec {
  const g = parseGid(a.id);
  const op = g?.type === "BulkOperation" ? bulkOps.get(g.n) : undefined;
  const payload = (bo: Rec | null, errors: Rec[]) => ({
    __typename: "BulkOperationCancelPayload",
    bulkOperation: bo,
    userErrors: errors,
  });
  if (!op || op.shop !== ctx.shop.domain) {
    return payload(null, [userError(["id"], "Bulk operation does not exist")]);
  }
  const status = bulkStatus(op, Date.now());
  if (!["CREATED", "RUNNING"].includes(status)) {
    return payload(bulkView(op, ctx.origin), [
      userError(
        null,
        `A bulk operation cannot be canceled when it is ${status.toLowerCase()}`,
      ),
    ]);
  }
  op.canceledAt = Date.now();
  clearTimeout(op.timer);
  op.timer = setTimeout(() => finished(op), 110);
  return payload(bulkView(op, ctx.origin), []);
}

// ---------------------------------------------------------------------------
// Webhook subscriptions and deliveries

/** GraphQL's WebhookSubscriptionTopic and the X-Shopify-Topic it sends. */
const TOPICS: Record<string, string> = {
  APP_UNINSTALLED: "app/uninstalled",
  BULK_OPERATIONS_FINISH: "bulk_operations/finish",
  CHECKOUTS_CREATE: "checkouts/create",
  CHECKOUTS_UPDATE: "checkouts/update",
  CHECKOUTS_DELETE: "checkouts/delete",
  CUSTOMERS_CREATE: "customers/create",
  CUSTOMERS_UPDATE: "customers/update",
  CUSTOMERS_DELETE: "customers/delete",
  ORDERS_CREATE: "orders/create",
  ORDERS_UPDATED: "orders/updated",
  ORDERS_PAID: "orders/paid",
  ORDERS_CANCELLED: "orders/cancelled",
  ORDERS_FULFILLED: "orders/fulfilled",
  ORDERS_PARTIALLY_FULFILLED: "orders/partially_fulfilled",
  ORDERS_DELETE: "orders/delete",
  ORDERS_EDITED: "orders/edited",
  PRODUCTS_CREATE: "products/create",
  PRODUCTS_UPDATE: "products/update",
  PRODUCTS_DELETE: "products/delete",
  SHOP_UPDATE: "shop/update",
};
const TOPIC_ENUM = Object.fromEntries(
  Object.entries(TOPICS).map(([k, v]) => [v, k]),
);

function createSubscription(ctx: Ctx, a: Rec, f: Field): Rec {
  const topic = String(a.topic ?? "");
  if (!(topic in TOPICS)) {
    const raw = f.args.topic;
    throw new GqlError(
      raw?.k === "var"
        ? `Variable $${raw.name} of type WebhookSubscriptionTopic! was provided invalid value`
        : `Argument 'topic' on Field 'webhookSubscriptionCreate' has an invalid value (${topic}). Expected type 'WebhookSubscriptionTopic!'.`,
      {
        code: raw?.k === "var"
          ? "INVALID_VARIABLE"
          : "argumentLiteralsIncompatible",
      },
      loc(f),
    );
  }
  const input = (a.webhookSubscription ?? {}) as Rec;
  const uri = String(input.uri ?? input.callbackUrl ?? "").trim();
  const payload = (sub: Rec | null, errors: Rec[]) => ({
    __typename: "WebhookSubscriptionCreatePayload",
    webhookSubscription: sub,
    userErrors: errors,
  });
  const field = ["webhookSubscription", "callbackUrl"];
  if (!uri) return payload(null, [userError(field, "Address can't be blank")]);
  if (!/^https?:\/\/[^\s/]+/.test(uri)) {
    return payload(null, [userError(field, "Address is invalid")]);
  }
  const s = ctx.shop;
  if (s.subs.some((x) => x.topic === topic && x.uri === uri)) {
    return payload(null, [
      userError(field, "Address for this topic has already been taken"),
    ]);
  }
  const now = floorSec(Date.now());
  const sub: Subscription = {
    id: nextSub++,
    topic,
    uri,
    format: String(input.format ?? "JSON"),
    createdAt: now,
    updatedAt: now,
  };
  s.subs.push(sub);
  return payload(subscriptionView(sub), []);
}

interface Delivery {
  status: number;
  body: string;
  webhook_id: string;
  elapsed_ms: number;
  payload: unknown;
  error?: string;
}

/** Posts one webhook as Shopify signs it: base64 HMAC-SHA256 of the exact
 * body with the app's secret. */
async function deliver(
  s: Shop,
  topic: string,
  uri: string,
  payload: unknown,
  opts: { webhookId?: string; tamper?: boolean } = {},
): Promise<Delivery> {
  const body = JSON.stringify(payload);
  let mac = b64(await hmacSha256(app.secret, body));
  if (opts.tamper) {
    mac = b64(await hmacSha256(app.secret, body + " "));
  }
  const webhookId = opts.webhookId ?? crypto.randomUUID();
  const t0 = performance.now();
  s.stats.webhooks_sent++;
  try {
    const r = await fetch(uri, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "Shopify-Captain-Hook",
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": mac,
        "x-shopify-shop-domain": s.domain,
        "x-shopify-api-version": app.apiVersion,
        "x-shopify-webhook-id": webhookId,
        "x-shopify-event-id": crypto.randomUUID(),
        "x-shopify-triggered-at": new Date().toISOString(),
      },
      body,
    });
    return {
      status: r.status,
      body: await r.text(),
      webhook_id: webhookId,
      elapsed_ms: Math.round(performance.now() - t0),
      payload,
    };
  } catch (e) {
    return {
      status: 0,
      body: "",
      webhook_id: webhookId,
      elapsed_ms: Math.round(performance.now() - t0),
      payload,
      error: String(e),
    };
  }
}

// REST payloads, as webhooks carry them.

const restTags = (tags: string[]) => tags.join(", ");
const WEIGHT_UNITS: Record<WeightUnit, string> = {
  KILOGRAMS: "kg",
  GRAMS: "g",
  POUNDS: "lb",
  OUNCES: "oz",
};
const GRAMS: Record<WeightUnit, number> = {
  KILOGRAMS: 1000,
  GRAMS: 1,
  POUNDS: 453.592,
  OUNCES: 28.3495,
};

function addressRest(a: Address): Rec {
  return {
    first_name: a.first,
    last_name: a.last,
    name: `${a.first} ${a.last}`,
    company: null,
    address1: a.address1,
    address2: a.address2,
    city: a.city,
    province: a.province,
    province_code: a.provinceCode,
    country: a.country,
    country_code: a.countryCode,
    zip: a.zip,
    phone: a.phone,
    latitude: null,
    longitude: null,
  };
}

function customerRest(s: Shop, c: Customer, brief = false): Rec {
  const spent = data(s).spent.get(c.id) ?? { count: 0, cents: 0 };
  const base: Rec = {
    id: c.id,
    email: c.email,
    created_at: local(c.createdAt, s.offsetMin),
    updated_at: local(c.updatedAt, s.offsetMin),
    first_name: c.first,
    last_name: c.last,
    phone: c.phone,
  };
  if (brief) {
    return {
      ...base,
      state: c.verified ? "enabled" : "disabled",
      note: c.note,
      verified_email: c.verified,
      tags: restTags(c.tags),
      currency: s.currency,
      admin_graphql_api_id: gid("Customer", c.id),
      default_address: { id: c.id + 1000, ...addressRest(c.address) },
    };
  }
  return {
    ...base,
    orders_count: spent.count,
    state: c.verified ? "enabled" : "disabled",
    total_spent: money(spent.cents),
    note: c.note,
    verified_email: c.verified,
    multipass_identifier: null,
    tax_exempt: false,
    tags: restTags(c.tags),
    currency: s.currency,
    addresses: [{ id: c.id + 1000, ...addressRest(c.address) }],
    admin_graphql_api_id: gid("Customer", c.id),
    default_address: { id: c.id + 1000, ...addressRest(c.address) },
  };
}

const FINANCIAL_REST: Record<string, string> = {
  PENDING: "pending",
  AUTHORIZED: "authorized",
  PAID: "paid",
  PARTIALLY_PAID: "partially_paid",
  PARTIALLY_REFUNDED: "partially_refunded",
  REFUNDED: "refunded",
  VOIDED: "voided",
};
const FULFILLMENT_REST: Record<string, string | null> = {
  UNFULFILLED: null,
  PARTIALLY_FULFILLED: "partial",
  FULFILLED: "fulfilled",
  RESTOCKED: "restocked",
};

function orderRest(s: Shop, o: Order): Rec {
  const d = data(s);
  const c = o.customerId === null ? undefined : d.customers.get(o.customerId);
  const t = (ms: number) => local(ms, s.offsetMin);
  const set = (cents: number) => ({
    shop_money: { amount: money(cents), currency_code: s.currency },
    presentment_money: { amount: money(cents), currency_code: s.currency },
  });
  return {
    id: o.id,
    admin_graphql_api_id: gid("Order", o.id),
    app_id: 580111,
    browser_ip: null,
    buyer_accepts_marketing: false,
    cancel_reason: o.cancelledAt === null ? null : "customer",
    cancelled_at: o.cancelledAt === null ? null : t(o.cancelledAt),
    checkout_token: o.token,
    closed_at: o.fulfillment === "FULFILLED" ? t(o.updatedAt) : null,
    confirmation_number: o.token.slice(0, 9).toUpperCase(),
    confirmed: true,
    contact_email: o.email,
    created_at: t(o.createdAt),
    currency: s.currency,
    current_subtotal_price: money(orderSubtotal(o)),
    current_total_price: money(
      o.financial === "REFUNDED" ? 0 : orderTotal(o),
    ),
    current_total_tax: money(o.tax),
    email: o.email,
    financial_status: FINANCIAL_REST[o.financial],
    fulfillment_status: FULFILLMENT_REST[o.fulfillment],
    name: `#${o.number}`,
    note: o.note,
    note_attributes: [],
    number: o.number - 1000,
    order_number: o.number,
    payment_gateway_names: o.gateways,
    phone: o.phone,
    presentment_currency: s.currency,
    processed_at: t(o.createdAt),
    source_name: "web",
    subtotal_price: money(orderSubtotal(o)),
    subtotal_price_set: set(orderSubtotal(o)),
    tags: restTags(o.tags),
    taxes_included: false,
    test: false,
    token: o.token,
    total_discounts: money(o.discount),
    total_discounts_set: set(o.discount),
    total_line_items_price: money(o.lineTotal),
    total_price: money(orderTotal(o)),
    total_price_set: set(orderTotal(o)),
    total_shipping_price_set: set(o.shipping),
    total_tax: money(o.tax),
    total_tax_set: set(o.tax),
    total_weight: o.items.reduce((n, li) => n + li.grams * li.qty, 0),
    updated_at: t(o.updatedAt),
    billing_address: addressRest(o.billingAddress),
    customer: c ? customerRest(s, c, true) : null,
    line_items: o.items.map((li) => ({
      id: li.id,
      admin_graphql_api_id: gid("LineItem", li.id),
      fulfillable_quantity: o.fulfillment === "FULFILLED" ? 0 : li.qty,
      fulfillment_status: o.fulfillment === "FULFILLED" ? "fulfilled" : null,
      gift_card: false,
      grams: li.grams,
      name: li.variantTitle ? `${li.title} - ${li.variantTitle}` : li.title,
      price: money(li.price),
      price_set: set(li.price),
      product_exists: d.products.has(li.productId),
      product_id: li.productId,
      quantity: li.qty,
      requires_shipping: li.requiresShipping,
      sku: li.sku,
      taxable: true,
      title: li.title,
      total_discount: "0.00",
      variant_id: li.variantId,
      variant_title: li.variantTitle,
      vendor: li.vendor,
    })),
    shipping_address: addressRest(o.shippingAddress),
    shipping_lines: o.shipping
      ? [{
        id: o.id + 100,
        code: "Standard",
        price: money(o.shipping),
        source: "shopify",
        title: "Standard",
      }]
      : [],
    fulfillments: [],
    refunds: [],
  };
}

function productRest(s: Shop, p: Product): Rec {
  const t = (ms: number) => local(ms, s.offsetMin);
  const images = p.images.map((src, i) => ({
    id: hash(src) % 100000000 + 30000000000000 + i,
    admin_graphql_api_id: gid(
      "ProductImage",
      hash(src) % 100000000 + 30000000000000 + i,
    ),
    product_id: p.id,
    position: i + 1,
    created_at: t(p.createdAt),
    updated_at: t(p.updatedAt),
    alt: null,
    width: 1200,
    height: 1200,
    src,
    variant_ids: p.variants.filter((v) => v.image === src).map((v) => v.id),
  }));
  return {
    id: p.id,
    admin_graphql_api_id: gid("Product", p.id),
    title: p.title,
    body_html: p.body,
    vendor: p.vendor,
    product_type: p.type,
    created_at: t(p.createdAt),
    handle: p.handle,
    updated_at: t(p.updatedAt),
    published_at: p.status === "ACTIVE" ? t(p.createdAt) : null,
    template_suffix: null,
    published_scope: "global",
    tags: restTags(p.tags),
    status: p.status.toLowerCase(),
    variants: p.variants.map((v) => ({
      id: v.id,
      admin_graphql_api_id: gid("ProductVariant", v.id),
      product_id: p.id,
      title: v.title,
      price: money(v.price),
      sku: v.sku,
      position: v.position,
      compare_at_price: v.compareAt === null ? null : money(v.compareAt),
      option1: v.title,
      option2: null,
      option3: null,
      created_at: t(p.createdAt),
      updated_at: t(p.updatedAt),
      taxable: true,
      barcode: v.barcode,
      grams: Math.round(v.weight * GRAMS[v.weightUnit]),
      weight: v.weight,
      weight_unit: WEIGHT_UNITS[v.weightUnit],
      inventory_item_id: v.id + 2000000000000,
      inventory_quantity: v.qty,
      requires_shipping: v.requiresShipping,
      image_id: v.image
        ? images.find((i) => i.src === v.image)?.id ?? null
        : null,
    })),
    options: [{
      id: p.id + 9000000000000,
      product_id: p.id,
      name: p.optionName ?? "Title",
      position: 1,
      values: p.variants.map((v) => v.title),
    }],
    images,
    image: images[0] ?? null,
  };
}

function checkoutRest(s: Shop, c: Checkout): Rec {
  const d = data(s);
  const t = (ms: number) => local(ms, s.offsetMin);
  const cust = c.customerId === null
    ? undefined
    : d.customers.get(c.customerId);
  return {
    id: c.id,
    token: c.token,
    cart_token: c.key.slice(0, 24),
    email: c.email,
    gateway: null,
    buyer_accepts_marketing: false,
    created_at: t(c.createdAt),
    updated_at: t(c.updatedAt),
    landing_site: "/",
    note: null,
    note_attributes: [],
    referring_site: "",
    shipping_lines: [],
    taxes_included: false,
    total_weight: 0,
    currency: s.currency,
    presentment_currency: s.currency,
    completed_at: c.completedAt === null ? null : t(c.completedAt),
    closed_at: null,
    name: `#${c.id}`,
    abandoned_checkout_url: checkoutUrl(s, c),
    phone: c.phone,
    source_name: "web",
    subtotal_price: money(c.lineTotal),
    total_discounts: "0.00",
    total_line_items_price: money(c.lineTotal),
    total_price: money(c.lineTotal + c.tax),
    total_tax: money(c.tax),
    line_items: c.items.map((li) => ({
      key: String(li.id),
      product_id: li.productId,
      variant_id: li.variantId,
      title: li.title,
      variant_title: li.variantTitle,
      presentment_title: li.title,
      presentment_variant_title: li.variantTitle,
      sku: li.sku,
      quantity: li.qty,
      price: money(li.price),
      variant_price: money(li.price),
      line_price: money(li.price * li.qty),
      requires_shipping: true,
      taxable: true,
      gift_card: false,
      vendor: d.products.get(li.productId)?.vendor ?? null,
      image_url: li.image,
    })),
    billing_address: addressRest(c.address),
    shipping_address: addressRest(c.address),
    customer: cust ? customerRest(s, cust, true) : null,
  };
}

function shopRest(s: Shop): Rec {
  const t = (ms: number) => local(ms, s.offsetMin);
  const v = shopView(s);
  return {
    id: s.id,
    name: s.name,
    email: v.email,
    domain: s.domain,
    province: s.currency === "INR" ? "Maharashtra" : "New York",
    country: s.currency === "INR" ? "IN" : "US",
    address1: s.currency === "INR" ? "1 MG Road" : "1 Main St",
    zip: s.currency === "INR" ? "400001" : "10001",
    city: s.currency === "INR" ? "Mumbai" : "New York",
    source: null,
    phone: "",
    latitude: null,
    longitude: null,
    primary_locale: "en",
    address2: null,
    created_at: t(s.createdAt),
    updated_at: t(s.createdAt),
    country_code: s.currency === "INR" ? "IN" : "US",
    country_name: s.currency === "INR" ? "India" : "United States",
    currency: s.currency,
    customer_email: v.contactEmail,
    timezone: s.currency === "INR"
      ? "(GMT+05:30) Asia/Kolkata"
      : "(GMT-05:00) America/New_York",
    iana_timezone: s.iana,
    shop_owner: "Store Owner",
    money_format: s.currency === "INR" ? "Rs. {{amount}}" : "${{amount}}",
    weight_unit: s.currency === "INR" ? "kg" : "lb",
    plan_display_name: s.domain === BIG_SHOP ? "Shopify Plus" : "Basic",
    plan_name: s.domain === BIG_SHOP ? "shopify_plus" : "basic",
    myshopify_domain: s.domain,
    password_enabled: false,
    has_storefront: true,
    enabled_presentment_currencies: [s.currency],
  };
}

// ---------------------------------------------------------------------------
// Changes to a store's data (the mutate and send control routes)

function pickSome<T>(r: Rand, xs: T[], n: number): T[] {
  const copy = [...xs];
  const out: T[] = [];
  while (out.length < n && copy.length) {
    out.push(copy.splice(Math.floor(r.f() * copy.length), 1)[0]);
  }
  return out;
}

function createOrder(s: Shop): Order {
  const d = data(s);
  const now = tick(d);
  const o = makeOrder(
    d,
    d.rand,
    s.currency,
    now,
    now,
    [...d.customers.values()],
    sellableVariants(d),
  );
  d.orders.set(o.id, o);
  countOrder(d, o);
  return o;
}

function updateOrder(s: Shop, o: Order): Order {
  const d = data(s);
  const r = d.rand;
  const next: Order = {
    ...o,
    updatedAt: tick(d),
    tags: r.chance(0.5) ? [...new Set([...o.tags, "updated"])].sort() : o.tags,
  };
  if (o.fulfillment === "UNFULFILLED" && o.cancelledAt === null) {
    next.fulfillment = "FULFILLED";
    if (o.financial === "PENDING" || o.financial === "AUTHORIZED") {
      next.financial = "PAID";
    }
  } else if (o.financial === "PAID" && r.chance(0.3)) {
    next.financial = "PARTIALLY_REFUNDED";
  } else next.note = r.pick(NOTES);
  d.orders.set(o.id, next);
  return next;
}

function updateProduct(s: Shop, p: Product): Product {
  const d = data(s);
  const r = d.rand;
  const next: Product = {
    ...p,
    updatedAt: tick(d),
    variants: p.variants.map((v) => ({
      ...v,
      qty: Math.max(0, v.qty + r.int(-5, 20)),
      price: r.chance(0.3) ? v.price + 100 : v.price,
    })),
  };
  d.products.set(p.id, next);
  return next;
}

function updateCustomer(s: Shop, c: Customer): Customer {
  const d = data(s);
  const r = d.rand;
  const next: Customer = {
    ...c,
    updatedAt: tick(d),
    tags: [...new Set([...c.tags, r.pick(CUSTOMER_TAGS)])].sort(),
  };
  if (!c.phone && r.chance(0.5)) {
    next.phone = phoneFor(r, s.currency, "");
  }
  d.customers.set(c.id, next);
  return next;
}

function updateCheckout(s: Shop, c: Checkout): Checkout {
  const d = data(s);
  const now = tick(d);
  const next: Checkout = {
    ...c,
    updatedAt: now,
    completedAt: c.completedAt ?? (d.rand.chance(0.3) ? now : null),
  };
  d.checkouts.set(c.id, next);
  return next;
}

function mutate(s: Shop, m: Rec): Rec {
  const d = data(s);
  const r = d.rand;
  const n = (k: string) => Math.max(0, Math.floor(Number(m[k] ?? 0)));
  const ids = (xs: { id: number }[]) => xs.map((x) => String(x.id));
  const out = {
    products: [] as string[],
    orders: [] as string[],
    customers: [] as string[],
    checkouts: [] as string[],
    deleted_products: [] as string[],
    removed_variants: [] as string[],
    added_variants: [] as string[],
  };
  out.products.push(
    ...ids(
      pickSome(r, [...d.products.values()], n("update_products")).map((p) =>
        updateProduct(s, p)
      ),
    ),
  );
  out.orders.push(
    ...ids(
      pickSome(r, [...d.orders.values()], n("update_orders")).map((o) =>
        updateOrder(s, o)
      ),
    ),
  );
  for (let i = 0; i < n("create_orders"); i++) {
    out.orders.push(String(createOrder(s).id));
  }
  out.customers.push(
    ...ids(
      pickSome(r, [...d.customers.values()], n("update_customers")).map((c) =>
        updateCustomer(s, c)
      ),
    ),
  );
  out.checkouts.push(
    ...ids(
      pickSome(r, [...d.checkouts.values()], n("update_checkouts")).map((c) =>
        updateCheckout(s, c)
      ),
    ),
  );
  for (const p of pickSome(r, [...d.products.values()], n("delete_products"))) {
    d.products.delete(p.id);
    out.deleted_products.push(String(p.id));
  }
  const multi = [...d.products.values()].filter((p) => p.variants.length >= 2);
  for (const p of pickSome(r, multi, n("remove_variants"))) {
    const gone = p.variants[p.variants.length - 1];
    const next: Product = {
      ...p,
      updatedAt: tick(d),
      variants: p.variants.slice(0, -1),
    };
    d.products.set(p.id, next);
    out.removed_variants.push(String(gone.id));
    out.products.push(String(p.id));
  }
  // Products grown to 25 variants: more than a page of them (Shopify allows
  // 2,048 a product), so readers must page through a product's variants.
  for (const p of pickSome(r, [...d.products.values()], n("grow_variants"))) {
    const last = p.variants[p.variants.length - 1];
    const added: Variant[] = [];
    for (let i = p.variants.length; i < 25; i++) {
      added.push({
        ...last,
        id: d.next.variant++,
        title: `Option ${i + 1}`,
        option: `Option ${i + 1}`,
        sku: `${last.sku || "SKU"}-O${i + 1}`,
        position: i + 1,
      });
    }
    d.products.set(p.id, {
      ...p,
      updatedAt: tick(d),
      variants: [...p.variants, ...added],
    });
    out.added_variants.push(...added.map((v) => String(v.id)));
    out.products.push(String(p.id));
  }
  return out;
}

/** The payload for a topic, built from (and changing) the store's data. */
function payloadFor(s: Shop, topic: string, m: Rec): unknown {
  const d = data(s);
  const r = d.rand;
  const byId = <T>(map: Map<number, T>): T | undefined =>
    m.id !== undefined
      ? map.get(Number(String(m.id).replace(/^gid:\/\/shopify\/\w+\//, "")))
      : map.size
      ? r.pick([...map.values()])
      : undefined;
  const [resource, action] = topic.split("/");
  switch (resource) {
    case "orders": {
      if (action === "create") return orderRest(s, createOrder(s));
      const o = byId(d.orders);
      if (!o) return undefined;
      if (action === "delete") {
        d.orders.delete(o.id);
        return { id: o.id };
      }
      return orderRest(s, updateOrder(s, o));
    }
    case "products": {
      if (action === "create") {
        const now = tick(d);
        const p = makeProduct(
          d,
          r,
          s.currency,
          hash(s.domain) % 100000,
          now,
          now,
          s.sizes.maxVariants,
        );
        d.products.set(p.id, p);
        return productRest(s, p);
      }
      const p = byId(d.products);
      if (!p) return undefined;
      if (action === "delete") {
        d.products.delete(p.id);
        return { id: p.id };
      }
      return productRest(s, updateProduct(s, p));
    }
    case "checkouts": {
      const c = byId(d.checkouts);
      if (!c) return undefined;
      if (action === "delete") {
        d.checkouts.delete(c.id);
        return { id: c.id };
      }
      return checkoutRest(s, updateCheckout(s, c));
    }
    case "customers": {
      if (action === "redact" || action === "data_request") {
        const c = m.customer_id !== undefined
          ? d.customers.get(
            Number(
              String(m.customer_id).replace(/^gid:\/\/shopify\/\w+\//, ""),
            ),
          )
          : d.customers.values().next().value;
        if (!c) return undefined;
        const orders = [...d.orders.values()].filter((o) =>
          o.customerId === c.id
        ).map((o) => o.id);
        const customer = { id: c.id, email: c.email, phone: c.phone };
        return action === "redact"
          ? {
            shop_id: s.id,
            shop_domain: s.domain,
            customer,
            orders_to_redact: orders,
          }
          : {
            shop_id: s.id,
            shop_domain: s.domain,
            orders_requested: orders,
            customer,
            data_request: { id: r.int(1000, 999999) },
          };
      }
      const c = byId(d.customers);
      if (!c) return undefined;
      if (action === "delete") {
        d.customers.delete(c.id);
        return { id: c.id };
      }
      return customerRest(s, updateCustomer(s, c));
    }
    case "shop":
      if (action === "redact") return { shop_id: s.id, shop_domain: s.domain };
      return shopRest(s);
    case "app":
      return shopRest(s);
    case "bulk_operations": {
      const op = s.bulk[s.bulk.length - 1];
      if (!op) return undefined;
      const status = bulkStatus(op, Date.now()).toLowerCase();
      return {
        admin_graphql_api_id: gid("BulkOperation", op.n),
        completed_at: local(op.doneAt, s.offsetMin),
        created_at: local(op.createdAt, s.offsetMin),
        error_code: null,
        status,
        type: "query",
      };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// HTTP: the shop's routes

const notFound = () => json(404, { errors: "Not Found" });

function htmlError(status: number, message: string): Response {
  return new Response(
    `<!DOCTYPE html><html><head><title>Oauth error</title></head><body><h1>Oauth error ${message}</h1></body></html>`,
    { status, headers: { "content-type": "text/html; charset=utf-8" } },
  );
}

async function authorize(url: URL, s: Shop): Promise<Response> {
  const q = url.searchParams;
  if (q.get("client_id") !== app.apiKey) {
    return htmlError(
      400,
      "invalid_request: The client_id is missing or does not match an app.",
    );
  }
  const redirect = q.get("redirect_uri");
  if (!redirect) {
    return htmlError(400, "invalid_request: The redirect_uri is missing.");
  }
  let target: URL;
  try {
    target = new URL(redirect);
  } catch {
    return htmlError(400, "invalid_request: The redirect_uri is not valid.");
  }
  const code = randomHex(16);
  s.codes.set(code, {
    scopes: scopeList(q.get("scope") ?? ""),
    expires: Date.now() + 10 * 60 * SECOND,
    used: false,
  });
  const params: Record<string, string> = {
    code,
    host: btoa(`admin.shopify.com/store/${s.domain.split(".")[0]}`).replace(
      /=+$/,
      "",
    ),
    shop: s.domain,
    timestamp: String(Math.floor(Date.now() / 1000)),
  };
  const state = q.get("state");
  if (state !== null) params.state = state;
  const message = new URLSearchParams(
    Object.keys(params).sort().map((k) => [k, params[k]]),
  ).toString();
  const hmac = hexOf(await hmacSha256(app.secret, message));
  for (
    const [k, v] of [
      ["code", code],
      ["hmac", hmac],
      ["host", params.host],
      ["shop", s.domain],
      ...(state !== null ? [["state", state]] : []),
      ["timestamp", params.timestamp],
    ]
  ) target.searchParams.append(k, v);
  return new Response(null, {
    status: 302,
    headers: { location: target.toString() },
  });
}

async function accessToken(req: Request, s: Shop): Promise<Response> {
  const raw = await req.text();
  let p: Rec = {};
  try {
    p = (req.headers.get("content-type") ?? "").includes("json")
      ? JSON.parse(raw)
      : Object.fromEntries(new URLSearchParams(raw));
  } catch {
    p = {};
  }
  const refuse = (error: string, description: string) =>
    json(400, { error, error_description: description });
  if (p.client_id !== app.apiKey || p.client_secret !== app.secret) {
    return refuse(
      "invalid_request",
      "Oauth error invalid_request: client_id or client_secret is invalid",
    );
  }
  const code = s.codes.get(String(p.code ?? ""));
  if (!code || code.used || code.expires < Date.now()) {
    return refuse(
      "invalid_request",
      "The authorization code was not found or was already used",
    );
  }
  code.used = true;
  return json(200, {
    access_token: issueToken(s, code.scopes),
    scope: code.scopes.join(","),
  });
}

async function uninstall(req: Request, s: Shop): Promise<Response> {
  if (!tokenFor(req, s.domain)) return json(401, { errors: INVALID_TOKEN });
  await req.body?.cancel();
  for (const t of tokens.values()) {
    if (t.shop === s.domain && !t.revoked) {
      t.revoked = true;
      s.stats.revoked++;
    }
  }
  s.uninstalled = true;
  const sub = s.subs.find((x) => x.topic === "APP_UNINSTALLED");
  if (sub) {
    void deliver(s, "app/uninstalled", sub.uri, shopRest(s)).catch(() => {});
  }
  s.subs = [];
  return json(200, {});
}

/** /shopify/…: the real shop's routes, and bulk results. */
export async function shopifyHandle(
  req: Request,
  url: URL,
  faults: ShopifyFaults,
): Promise<Response> {
  const path = url.pathname.slice("/shopify/".length);
  const bulk = path.match(/^_bulk\/(\d+)(-partial)?\.jsonl$/);
  if (bulk && req.method === "GET") {
    const op = bulkOps.get(Number(bulk[1]));
    const status = op ? bulkStatus(op, Date.now()) : "";
    const ready = op &&
      (bulk[2]
        ? status === "FAILED" && op.outcome === "PARTIAL"
        : status === "COMPLETED");
    if (!op || !ready) {
      return new Response(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
        { status: 404, headers: { "content-type": "application/xml" } },
      );
    }
    return new Response(bulk[2] ? op.partial : op.jsonl, {
      headers: { "content-type": "application/jsonl" },
    });
  }
  const m = path.match(/^([^/]+)\/(.*)$/);
  if (!m || !SHOP_RE.test(m[1])) return notFound();
  const s = shopFor(m[1]);
  const rest = m[2];
  if (rest === "admin/oauth/authorize" && req.method === "GET") {
    return await authorize(url, s);
  }
  if (rest === "admin/oauth/access_token" && req.method === "POST") {
    const f = await faults.enter();
    if (f.early) return f.early;
    return await f.done(await accessToken(req, s));
  }
  if (
    rest === "admin/api_permissions/current.json" && req.method === "DELETE"
  ) {
    return await uninstall(req, s);
  }
  const gql = rest.match(/^admin\/api\/(\d{4}-\d{2}|unstable)\/graphql\.json$/);
  if (gql && req.method === "POST") {
    const token = tokenFor(req, s.domain);
    if (!token) {
      await req.body?.cancel();
      return json(401, { errors: INVALID_TOKEN });
    }
    const f = await faults.enter();
    if (f.early) return f.early;
    return await f.done(await graphql(req, s, token, url.origin));
  }
  return notFound();
}

// ---------------------------------------------------------------------------
// HTTP: control

const RESOURCES: Record<string, (d: Data) => number[]> = {
  products: (d) => [...d.products.keys()],
  variants: (d) =>
    [...d.products.values()].flatMap((p) => p.variants.map((v) => v.id)),
  orders: (d) => [...d.orders.keys()],
  line_items: (d) =>
    [...d.orders.values()].flatMap((o) => o.items.map((li) => li.id)),
  customers: (d) => [...d.customers.keys()],
  checkouts: (d) => [...d.checkouts.keys()],
  checkout_line_items: (d) =>
    [...d.checkouts.values()].flatMap((c) => c.items.map((li) => li.id)),
};

async function body(req: Request): Promise<Rec> {
  try {
    const b = await req.json();
    return b && typeof b === "object" ? b : {};
  } catch {
    return {};
  }
}

/** /_sandbox/shopify/…: inspection and control. */
export async function shopifyControl(
  req: Request,
  url: URL,
): Promise<Response> {
  const path = url.pathname.slice("/_sandbox/shopify".length);
  if (path === "/shops" && req.method === "POST") {
    const b = await body(req);
    const domain = String(b.shop ?? "");
    if (!SHOP_RE.test(domain)) {
      return json(400, { error: "shop: <name>.myshopify.com" });
    }
    const s = shopFor(domain);
    const base = defaultSizes(domain);
    const size = (k: string, d: number) => {
      const v = Number(b[k] ?? d);
      return Number.isFinite(v) && v >= 0 ? Math.floor(v) : d;
    };
    s.sizes = {
      products: size("products", base.products),
      customers: size("customers", base.customers),
      orders: size("orders", base.orders),
      checkouts: size("checkouts", base.checkouts),
      maxVariants: size("max_variants", base.maxVariants) || 1,
      seed: size("seed", 0),
    };
    for (const op of s.bulk) clearTimeout(op.timer);
    s.bulk = [];
    const t0 = performance.now();
    s.dataCache = undefined;
    const d = data(s);
    return json(200, {
      shop: domain,
      currency: s.currency,
      products: d.products.size,
      variants: RESOURCES.variants(d).length,
      customers: d.customers.size,
      orders: d.orders.size,
      line_items: RESOURCES.line_items(d).length,
      checkouts: d.checkouts.size,
      generated_ms: Math.round(performance.now() - t0),
    });
  }
  if (path === "/throttle" && req.method === "POST") {
    const b = await body(req);
    for (const k of ["maximumAvailable", "restoreRate"] as const) {
      if (b[k] !== undefined) {
        const v = Number(b[k]);
        if (!(v > 0)) return json(400, { error: `${k}: a number above 0` });
        settings[k] = v;
      }
    }
    if (b.objectCost !== undefined) {
      const v = Number(b.objectCost);
      if (!(v >= 0)) return json(400, { error: "objectCost: >= 0" });
      settings.objectCost = v;
    }
    if (b.bulkMsPerObject !== undefined) {
      const v = Number(b.bulkMsPerObject);
      if (!(v >= 0)) return json(400, { error: "bulkMsPerObject: >= 0" });
      settings.bulkMsPerObject = v;
    }
    const level = b.currentlyAvailable === undefined
      ? settings.maximumAvailable
      : Math.min(settings.maximumAvailable, Number(b.currentlyAvailable));
    for (const s of shops.values()) {
      s.bucket = { available: level, at: performance.now() };
    }
    return json(200, { ok: true, ...settings });
  }
  if (path === "/bulk_fault" && req.method === "POST") {
    const b = await body(req);
    if (b.mode !== "FAILED" && b.mode !== "partial" && b.mode !== null) {
      return json(400, { error: 'mode: "FAILED" | "partial" | null' });
    }
    bulkFault = b.mode ?? undefined;
    return json(200, { ok: true });
  }
  const m = path.match(/^\/([^/]+)\/(token|send|mutate|ids|stats|webhooks)$/);
  if (!m) return json(404, { error: "no such sandbox route" });
  if (!SHOP_RE.test(m[1])) return json(404, { error: "not a shop domain" });
  const s = shopFor(m[1]);
  switch (m[2]) {
    case "token": {
      if (req.method !== "POST") break;
      const b = await body(req);
      const scopes = scopeList(
        String(b.scope ?? "read_products,read_orders,read_customers"),
      );
      return json(200, {
        access_token: issueToken(s, scopes),
        scope: scopes.join(","),
      });
    }
    case "send": {
      if (req.method !== "POST") break;
      const b = await body(req);
      const topic = String(b.topic ?? "");
      const sub = s.subs.find((x) => x.topic === TOPIC_ENUM[topic]);
      const uri = typeof b.uri === "string" ? b.uri : sub?.uri;
      if (!uri) {
        return json(409, {
          error: `no subscription for ${topic || "(no topic)"}; pass "uri"`,
        });
      }
      const payload = b.payload ?? payloadFor(s, topic, b);
      if (payload === undefined) {
        return json(400, { error: `cannot build a payload for ${topic}` });
      }
      return json(
        200,
        await deliver(s, topic, uri, payload, {
          webhookId: typeof b.webhook_id === "string"
            ? b.webhook_id
            : undefined,
          tamper: b.tamper === true,
        }),
      );
    }
    case "mutate":
      if (req.method !== "POST") break;
      return json(200, mutate(s, await body(req)));
    case "ids": {
      const list = RESOURCES[url.searchParams.get("resource") ?? ""];
      if (!list) {
        return json(400, {
          error: `resource: ${Object.keys(RESOURCES).join("|")}`,
        });
      }
      return json(200, { ids: list(data(s)).map(String) });
    }
    case "stats":
      refill(s);
      return json(200, {
        ...s.stats,
        subscriptions: s.subs.map((x) => ({
          topic: TOPICS[x.topic],
          uri: x.uri,
        })),
        uninstalled: s.uninstalled,
        throttle: throttleStatus(s),
      });
    case "webhooks":
      return json(
        200,
        s.subs.map((x) => ({
          id: gid("WebhookSubscription", x.id),
          topic: TOPICS[x.topic],
          topic_enum: x.topic,
          uri: x.uri,
          format: x.format,
          created_at: iso(x.createdAt),
        })),
      );
  }
  return json(405, { error: "method not allowed" });
}
