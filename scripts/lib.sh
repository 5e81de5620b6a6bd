# shellcheck shell=bash
# Shared by scripts/dev, scripts/test, scripts/build and scripts/bench: install
# what is missing, build, and run the local stack. Source it; do not run it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/scripts/tools/node_modules/.bin"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
POSTRUST_VERSION="3.1.0"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  command -v apt-get >/dev/null || die "apt-get is not available; install ${missing[*]} by hand"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wasm_bindgen_version() {
  # The CLI must equal the wasm-bindgen crate in Cargo.lock exactly.
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_tools() {
  command -v cargo >/dev/null || die "cargo is required (rustup)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >/dev/null
  fi
  local want
  want="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (cargo; a few minutes, once)"
    cargo install -q wasm-bindgen-cli --version "$want" --force
  fi
  if ! cargo install --list | grep -qx "postrust-server v$POSTRUST_VERSION:"; then
    log "installing postrust-server $POSTRUST_VERSION, the PostgREST-compatible server (cargo; several minutes, once)"
    # not --locked: its lock file pins a webpki-roots version the registry lacks
    cargo install -q postrust-server --version "$POSTRUST_VERSION" --force
  fi
  command -v curl >/dev/null || apt_install curl
  [ -x "$PG_BIN/initdb" ] || apt_install postgresql-15
  # plpgsql_check: what `supabase db lint` runs over every SQL function
  apt_install postgresql-15-pgtap postgresql-15-cron libtap-parser-sourcehandler-pgtap-perl \
    postgresql-15-plpgsql-check
  # pdfinfo, pdftotext and pdftoppm: the tests read the PDFs the functions write
  command -v pdftoppm >/dev/null || apt_install poppler-utils
  # openpyxl: the tests open the XLSX files the functions write with a real reader
  python3 -c 'import openpyxl' 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore openpyxl 2>/dev/null \
    || apt_install python3-openpyxl
  if [ ! -x "$TOOLS/deno" ] || [ ! -x "$TOOLS/wasm-opt" ] \
    || [ "$ROOT/scripts/tools/package-lock.json" -nt "$ROOT/scripts/tools/node_modules/.package-lock.json" ]; then
    log "installing Deno, binaryen and the Supabase CLI (npm)"
    (cd "$ROOT/scripts/tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  export PATH="$TOOLS:$PATH"
}

# --- build ------------------------------------------------------------------

function_names() {
  local dir
  for dir in "$ROOT"/functions/*/; do
    [ -f "$dir/Cargo.toml" ] && basename "$dir"
  done
}

# Where cargo writes: CARGO_TARGET_DIR when set (relative to the checkout, as
# cargo reads it when run there), else target/.
cargo_target_dir() {
  case "${CARGO_TARGET_DIR:-}" in
    "") echo "$ROOT/target" ;;
    /*) echo "$CARGO_TARGET_DIR" ;;
    *) echo "$ROOT/$CARGO_TARGET_DIR" ;;
  esac
}

# Every functions/<name>/ crate gets its loader, generated here, and must have
# its [functions.<name>] block in supabase/config.toml; a missing or stray
# block stops the build, so no function is ever left out of a deploy.
# Rewrites the region between `begin` and `end` marker lines of `file` with
# stdin, if it differs. The markers must already be in the file.
replace_region() { # replace_region <file> <begin> <end>
  local file="$1" begin="$2" end="$3" body
  body="$(cat)"
  grep -qxF "$begin" "$file" && grep -qxF "$end" "$file" \
    || die "$file lacks the marker lines '$begin' and '$end'"
  BODY="$body" awk -v b="$begin" -v e="$end" '
    $0 == b { print; print ENVIRON["BODY"]; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$file" >"$file.new"
  if cmp -s "$file.new" "$file"; then rm "$file.new"; else mv "$file.new" "$file"; fi
}

# What a function folder implies elsewhere, generated so a new function edits
# nothing outside its folder: its index.ts loader, its [functions.<name>]
# block in supabase/config.toml and its row in the README's function table
# (the first sentence of functions/<name>/README.md after the title).
wire_functions() {
  local name crate config="$ROOT/supabase/config.toml" readme
  for name in $(function_names); do
    crate="${name//-/_}"
    [ -f "$ROOT/functions/$name/README.md" ] \
      || die "functions/$name has no README.md (request, response, curl, rules, errors)"
    printf '%s\n' \
      "// Loader for $name: the logic is in src/lib.rs, compiled to pkg/. Generated by scripts/build." \
      "import * as wasm from \"./pkg/$crate.js\";" \
      'import { makeHandler } from "../_shared/loader.ts";' \
      '' \
      'export const handler = makeHandler(wasm);' \
      '' \
      'if (import.meta.main) Deno.serve(handler);' >"$ROOT/functions/$name/index.ts.new"
    if cmp -s "$ROOT/functions/$name/index.ts.new" "$ROOT/functions/$name/index.ts"; then
      rm "$ROOT/functions/$name/index.ts.new"
    else
      mv "$ROOT/functions/$name/index.ts.new" "$ROOT/functions/$name/index.ts"
    fi
  done
  for name in $(function_names); do
    printf '\n[functions.%s]\nverify_jwt = false\nentrypoint = "../functions/%s/index.ts"\nstatic_files = ["../functions/%s/pkg/*"]\n' \
      "$name" "$name" "$name"
  done | replace_region "$config" "# functions: generated by scripts/build from functions/*/" "# functions: end"
  readme="$ROOT/README.md"
  {
    echo "| function | what it does |"
    echo "| --- | --- |"
    for name in $(function_names); do
      # The first sentence of the first paragraph after the title.
      awk 'NR > 1 && NF { p = p (p ? " " : "") $0; next } p { exit } END { print p }' \
        "$ROOT/functions/$name/README.md" \
        | sed -E 's/([.!?])( .*)?$/\1/; s/\|/\\|/g' \
        | { read -r what; printf '| [`%s`](functions/%s/README.md) | %s |\n' "$name" "$name" "$what"; }
    done
  } | replace_region "$readme" "<!-- functions: generated by scripts/build from functions/*/README.md -->" "<!-- functions: end -->"
  # deno fmt pads the table; format it here so the generated text is stable.
  (cd "$ROOT" && deno fmt -q README.md)
}

# wasm-bindgen and wasm-opt for one built function, into functions/<name>/pkg.
# Skipped when the crate's wasm, the tools and their flags are what made the
# pkg already (a stamp in the target directory): wasm-opt (binaryen from npm)
# takes about 20 s of one core per module.
WASM_OPT_FLAGS=(-Oz --enable-reference-types --enable-bulk-memory --enable-sign-ext
  --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue)
package_function() { # package_function <name>
  local name="$1" crate="${1//-/_}"
  local out="$ROOT/functions/$name/pkg"
  local wasm
  wasm="$(cargo_target_dir)/wasm32-unknown-unknown/release/$crate.wasm"
  local stamps
  stamps="$(cargo_target_dir)/pkg-stamps"
  local stamp
  stamp="$(
    sha256sum "$wasm" | cut -d' ' -f1
    wasm-bindgen --version
    wasm-opt --version
    echo "${WASM_OPT_FLAGS[*]}"
  )"
  if [ -f "$out/${crate}_bg.wasm" ] && [ "$(cat "$stamps/$name" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$out" && mkdir -p "$out" "$stamps"
  wasm-bindgen --target deno --out-dir "$out" "$wasm"
  # binaryen from npm; Debian's is too old for wasm-bindgen's externref table.
  # Explicit features: --all-features makes Deno reject the module.
  # Once more if it dies: binaryen's npm build has been seen to trap, rarely,
  # on a busy machine, and the same input then optimises fine.
  local attempt
  for attempt in 1 2; do
    wasm-opt "${WASM_OPT_FLAGS[@]}" "$out/${crate}_bg.wasm" -o "$out/${crate}_bg.wasm.opt" && break
    [ "$attempt" = 2 ] && return 1
    log "wasm-opt failed on $name; once more"
  done
  mv "$out/${crate}_bg.wasm.opt" "$out/${crate}_bg.wasm"
  printf '%s\n' "$stamp" >"$stamps/$name"
}

build_functions() {
  wire_functions
  log "building every function for wasm32 (release)"
  (cd "$ROOT" && cargo build -q --release --target wasm32-unknown-unknown $(function_names | sed 's/^/-p /'))
  # Two at a time: wasm-opt uses one core, and the machine has two.
  local name pids=() failed=0
  for name in $(function_names); do
    package_function "$name" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge 2 ]; then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for name in "${pids[@]}"; do wait "$name" || failed=1; done
  [ "$failed" = 0 ] || die "packaging a function failed (see above)"
  local crate
  printf '%-28s %12s %12s\n' function "wasm bytes" "gzip bytes" >&2
  for name in $(function_names); do
    crate="${name//-/_}"
    printf '%-28s %12s %12s\n' "$name" "$(stat -c %s "$ROOT/functions/$name/pkg/${crate}_bg.wasm")" \
      "$(gzip -9c "$ROOT/functions/$name/pkg/${crate}_bg.wasm" | wc -c)" >&2
  done
}

# --- the local stack ----------------------------------------------------------
# STACK_DIR holds everything a stack owns: pids, logs, keys, env, and the
# Postgres data (or a pointer to it). API_PORT, DB_PORT, REST_PORT and
# SANDBOX_PORT choose the ports, so a test stack runs beside a dev stack.

# A port is in use if anything listens on it, or if any socket is bound to it
# locally: an outgoing connection whose ephemeral source port it is also
# stops a server from binding it.
port_in_use() {
  if command -v ss >/dev/null; then
    # TIME-WAIT leftovers never stop a server from binding; everything else may.
    [ -n "$(ss -Htan exclude time-wait "( sport = :$1 )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

check_ports_free() {
  local port
  for port in "$@"; do
    if port_in_use "$port"; then
      die "port $port is already in use. Stop what is listening there, or choose other ports (API_PORT, DB_PORT, REST_PORT, SANDBOX_PORT)."
    fi
  done
}

wait_for() { # wait_for <seconds> <what> <command…>
  local seconds="$1" what="$2"
  shift 2
  local i
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not come up within ${seconds}s; see $STACK_DIR/*.log"
}

pg_data_dir() {
  # initdb refuses root, so the cluster runs as `postgres`, which must be able to
  # reach the data directory. If it cannot reach the checkout, use a temp dir.
  if [ -f "$STACK_DIR/pgdata-path" ]; then
    cat "$STACK_DIR/pgdata-path"
  elif [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$STACK_DIR"; then
    echo "$STACK_DIR/pgdata"
  else
    local dir
    dir="$(mktemp -d /tmp/commerce-edge-pg.XXXXXX)"
    chown postgres "$dir"
    echo "$dir/pgdata" | tee "$STACK_DIR/pgdata-path"
  fi
}

as_pg() {
  # from /, which `postgres` can always enter, whatever the caller's directory
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

psql_super() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 \
    "postgres://postgres@127.0.0.1:$DB_PORT/postgres" "$@"
}

# What the schema is made of; a reused database made from other files is
# made anew (see start_postgres).
schema_hash() {
  cat "$ROOT/supabase/local/bootstrap.sql" "$ROOT"/supabase/migrations/*.sql | sha256sum | cut -d' ' -f1
}

start_postgres() {
  local data
  data="$(pg_data_dir)"
  # scripts/dev keeps its database between runs. Migrations are written to be
  # re-applied, but one edited in place (or an older schema) could leave a
  # kept database unlike a fresh one, so a database made from other schema
  # files is made anew, from the seed. Tests and the bench always start fresh.
  if [ -f "$data/PG_VERSION" ] && [ "$(cat "$STACK_DIR/schema.sha" 2>/dev/null)" != "$(schema_hash)" ]; then
    log "the schema files changed since this local database was made: making it anew from the seed"
    rm -rf "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a Postgres 15 cluster"
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$data" "$STACK_DIR"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$STACK_DIR/initdb.log"
  fi
  [ "$(id -u)" -eq 0 ] && chown postgres "$STACK_DIR"
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$(dirname "$data")/postgres.log" -w -t 60 \
    -o "-p $DB_PORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off \
        -c shared_preload_libraries=pg_cron -c cron.database_name=postgres \
        -c cron.use_background_workers=on -c max_worker_processes=40" start >/dev/null
  wait_for 30 Postgres psql_super -c 'select 1'
}

stop_postgres() {
  local data
  data="$(pg_data_dir 2>/dev/null)" || return 0
  [ -f "$data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# The database as the Supabase CLI reaches it (`--db-url`). Without
# sslmode=disable the CLI insists on TLS, which the local cluster has not.
cli_db_url() {
  echo "postgres://postgres@127.0.0.1:$DB_PORT/postgres?sslmode=disable"
}

# What a Supabase project already has comes from the local bootstrap; the
# migrations and the seed go in exactly as on a project, with the real CLI's
# `supabase db push`, which records them in supabase_migrations.
apply_sql() {
  log "applying the platform bootstrap, then the migrations and seed with supabase db push"
  psql_super -f "$ROOT/supabase/local/bootstrap.sql" >/dev/null
  psql_super -c 'create extension if not exists pgtap schema extensions' >/dev/null
  (cd "$ROOT" && supabase db push --db-url "$(cli_db_url)" --include-seed --yes \
    >"$STACK_DIR/db-push.log" 2>&1) || { tail -n 30 "$STACK_DIR/db-push.log" >&2; die "supabase db push failed"; }
  schema_hash >"$STACK_DIR/schema.sha"
}

# The two Vault secrets scheduled jobs read, as a project stores them once.
store_vault_secrets() {
  set -a
  # shellcheck disable=SC1091
  source "$STACK_DIR/env"
  set +a
  psql_super -v url="$SUPABASE_URL" -v key="$SUPABASE_SERVICE_ROLE_KEY" >/dev/null <<'SQL'
delete from vault.secrets where name in ('project_url', 'service_role_key');
select vault.create_secret(:'url', 'project_url');
select vault.create_secret(:'key', 'service_role_key');
SQL
}

# The REST server's pool: REST_POOL connections (20). Each tenant may hold at
# most its max_concurrent (1 by default) of them in business work, so one
# tenant can never take the pool. postrust does not read per-role settings
# from the database as PostgREST does, so the API roles' statement timeouts
# are given to it here (PGRST_ROLE_SETTINGS), with the values the migrations
# and Supabase set; lock_timeout is on the authenticator role (bootstrap.sql).
REST_POOL="${REST_POOL:-20}"
start_rest() {
  log "starting postrust (PostgREST) on 127.0.0.1:$REST_PORT, pool $REST_POOL"
  DATABASE_URL="postgres://authenticator@127.0.0.1:$DB_PORT/postgres" \
    PGRST_DB_POOL="$REST_POOL" \
    PGRST_ROLE_SETTINGS='{"anon":{"statement_timeout":3000},"authenticated":{"statement_timeout":8000}}' \
    PGRST_DB_ANON_ROLE=anon PGRST_DB_SCHEMAS=public PGRST_COMPAT_MODE=true \
    PGRST_SERVER_HOST=127.0.0.1 PGRST_SERVER_PORT="$REST_PORT" \
    PGRST_JWT_SECRET="$(cat "$STACK_DIR/rest-jwt-secret.json")" \
    RUST_LOG=warn \
    postrust >"$STACK_DIR/rest.log" 2>&1 &
  echo $! >"$STACK_DIR/rest.pid"
  wait_for 30 "the REST server" curl -sf "http://127.0.0.1:$REST_PORT/"
}

start_sandbox() {
  log "starting the provider sandbox on 127.0.0.1:$SANDBOX_PORT"
  SANDBOX_PORT="$SANDBOX_PORT" SANDBOX_HANG_MS="${SANDBOX_HANG_MS:-15000}" SANDBOX_STACK_ENV="$STACK_DIR/env" \
    deno run --quiet --allow-net --allow-env --allow-read="$STACK_DIR/env" "$ROOT/scripts/sandbox.ts" \
    >"$STACK_DIR/sandbox.log" 2>&1 &
  echo $! >"$STACK_DIR/sandbox.pid"
  wait_for 30 "the provider sandbox" curl -sf "http://127.0.0.1:$SANDBOX_PORT/health"
}

start_gateway() {
  log "starting the gateway on http://127.0.0.1:$API_PORT"
  mkdir -p "$STACK_DIR/storage"
  API_PORT="$API_PORT" REST_PORT="$REST_PORT" STACK_DIR="$STACK_DIR" \
    deno run --quiet --allow-net --allow-read --allow-env --allow-write="$STACK_DIR/storage" \
    --config "$ROOT/deno.json" "$ROOT/scripts/gateway.ts" \
    >"$STACK_DIR/gateway.log" 2>&1 &
  echo $! >"$STACK_DIR/gateway.pid"
  wait_for 60 "the gateway" curl -sf "http://127.0.0.1:$API_PORT/health"
}

# Callers check the ports first, and only then trap EXIT to stack_down, so a
# refused start never stops a stack that someone else started.
stack_up() {
  mkdir -p "$STACK_DIR"
  start_postgres
  apply_sql
  deno run --quiet --allow-read --allow-write --allow-env "$ROOT/scripts/keys.ts" \
    "$STACK_DIR" "$API_PORT" "$DB_PORT" "$SANDBOX_PORT"
  store_vault_secrets
  start_sandbox
  start_rest
  start_gateway
}

stop_pid_file() {
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -f "$file"
}

stack_down() {
  stop_pid_file "$STACK_DIR/gateway.pid"
  stop_pid_file "$STACK_DIR/sandbox.pid"
  stop_pid_file "$STACK_DIR/rest.pid"
  stop_postgres
}

# For throwaway stacks (tests, bench): stop, show the logs if the run failed,
# and delete a database kept outside the checkout.
stack_discard() {
  local status=$?
  stack_down
  if [ "$status" -ne 0 ]; then
    local f
    for f in "$STACK_DIR"/*.log; do
      [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 40 "$f" >&2; }
    done
  fi
  if [ -f "$STACK_DIR/pgdata-path" ]; then
    rm -rf "$(dirname "$(cat "$STACK_DIR/pgdata-path")")"
    rm -f "$STACK_DIR/pgdata-path"
  fi
  return "$status"
}

# Starts a throwaway stack with a fresh database.
stack_fresh() {
  if [ -f "$STACK_DIR/pgdata-path" ]; then rm -rf "$(dirname "$(cat "$STACK_DIR/pgdata-path")")"; fi
  rm -rf "$STACK_DIR"
  trap stack_discard EXIT
  stack_up
}
