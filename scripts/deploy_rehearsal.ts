// Rehearses `supabase functions deploy`, the README's deploy command, with no
// network: the real CLI (pinned in scripts/tools) bundles every function that
// supabase/config.toml declares and uploads each to the Management API of its
// `supabase-local` profile, http://localhost:8080, then activates them all in
// one bulk update. This script answers in the API's place and keeps what was
// sent; every function named on the command line must have been deployed.
// Each upload is then unpacked on its own and its entrypoint imported in a
// fresh Deno process, which must answer a CORS preflight (204) and a method
// no function serves (405 in the error envelope, so the wasm module loaded and
// handled it, whatever the function's auth mode). A function that would not
// deploy, or whose bundle is not self-contained, fails the run.
//
// Usage: deno run --allow-all scripts/deploy_rehearsal.ts <every function's name>…

const PORT = 8080; // fixed by the CLI's supabase-local profile
const REF = "rehearsalrehearsalre"; // any 20 lowercase letters
const TOKEN = `sbp_${"0".repeat(40)}`; // the CLI only checks the shape
const root = new URL("..", import.meta.url).pathname;
const names = Deno.args;
if (names.length === 0) throw new Error("name the functions to rehearse");

type Upload = {
  metadata: Record<string, unknown>;
  files: string[];
  dir: string;
};
const uploads = new Map<string, Upload>();
let activated: string[] = [];
const work = await Deno.makeTempDir({ prefix: "deploy-rehearsal-" });

const server = Deno.serve(
  { hostname: "127.0.0.1", port: PORT, onListen: () => {} },
  async (req) => {
    const url = new URL(req.url);
    if (req.method === "GET" && url.pathname === `/v1/projects/${REF}`) {
      return Response.json({
        id: REF,
        ref: REF,
        name: "rehearsal",
        organization_id: "local",
        region: "local",
        status: "ACTIVE_HEALTHY",
        created_at: new Date().toISOString(),
      });
    }
    if (
      req.method === "POST" &&
      url.pathname === `/v1/projects/${REF}/functions/deploy`
    ) {
      const slug = url.searchParams.get("slug") ?? "";
      const dir = `${work}/${slug}`;
      const form = await req.formData();
      const upload: Upload = { metadata: {}, files: [], dir };
      for (const [field, value] of form.entries()) {
        if (typeof value === "string") {
          if (field === "metadata") upload.metadata = JSON.parse(value);
          continue;
        }
        const name = value.name.replace(/^\/+/, "");
        if (name.split("/").includes("..")) {
          return Response.json({ message: `bad path ${name}` }, {
            status: 400,
          });
        }
        upload.files.push(name);
        const path = `${dir}/${name}`;
        await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), {
          recursive: true,
        });
        await Deno.writeFile(path, new Uint8Array(await value.arrayBuffer()));
      }
      uploads.set(slug, upload);
      return Response.json(
        { id: slug, slug, name: slug, status: "ACTIVE", version: 1 },
        { status: 201 },
      );
    }
    if (
      req.method === "PUT" && url.pathname === `/v1/projects/${REF}/functions`
    ) {
      // The bulk update that activates the bundles uploaded with bundleOnly.
      const list: { slug: string }[] = await req.json();
      activated = list.map((f) => f.slug);
      return Response.json({
        functions: list.map((f) => ({ ...f, status: "ACTIVE", version: 1 })),
      });
    }
    return Response.json({ message: "not part of the rehearsal" }, {
      status: 404,
    });
  },
);

const problems: string[] = [];
try {
  const deploy = await new Deno.Command("supabase", {
    args: [
      "functions",
      "deploy",
      "--use-api",
      "--profile",
      "supabase-local",
      "--project-ref",
      REF,
    ],
    cwd: root,
    env: { SUPABASE_ACCESS_TOKEN: TOKEN },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!deploy.success) {
    problems.push(
      `supabase functions deploy failed:\n${
        new TextDecoder().decode(deploy.stderr)
      }`,
    );
  }
  const strays = [...uploads.keys()].filter((n) => !names.includes(n));
  if (strays.length) {
    problems.push(`deployed but not a function crate: ${strays}`);
  }
  for (const name of names) {
    const upload = uploads.get(name);
    if (!upload || !activated.includes(name)) {
      problems.push(`${name}: the deploy command did not deploy it`);
      continue;
    }
    const crate = name.replaceAll("-", "_");
    const entry = String(upload.metadata.entrypoint_path ?? "");
    const want = [
      entry,
      "functions/_shared/loader.ts",
      `functions/${name}/pkg/${crate}.js`,
      `functions/${name}/pkg/${crate}_bg.wasm`,
    ];
    const missing = want.filter((f) => !upload.files.includes(f));
    if (entry !== `functions/${name}/index.ts`) {
      problems.push(`${name}: entrypoint_path is ${JSON.stringify(entry)}`);
    }
    if (upload.metadata.verify_jwt !== false) {
      problems.push(
        `${name}: verify_jwt must be false (the function checks tokens)`,
      );
    }
    if (missing.length) {
      problems.push(`${name}: the bundle lacks ${missing.join(", ")}`);
      continue;
    }
    // The bundle alone, in a fresh process, with made-up settings.
    const probe = `
      const { handler } = await import(${
      JSON.stringify(`${upload.dir}/${entry}`)
    });
      const pre = await handler(new Request("http://x/", { method: "OPTIONS" }));
      const post = await handler(new Request("http://x/", { method: "PROPFIND" }));
      const body = await post.json();
      console.log(JSON.stringify({ pre: pre.status, post: post.status, code: body?.error?.code }));
    `;
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", probe],
      cwd: work,
      env: {
        SUPABASE_URL: "http://127.0.0.1:9",
        SUPABASE_ANON_KEY: "anon",
        JWT_SECRET: "a-secret-for-the-rehearsal-only-0123456789",
        SUPABASE_SERVICE_ROLE_KEY: "service",
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(run.stdout).trim();
    const expected = JSON.stringify({
      pre: 204,
      post: 405,
      code: "METHOD_NOT_ALLOWED",
    });
    if (!run.success || said !== expected) {
      problems.push(
        `${name}: the unpacked bundle answered ${said || "nothing"}:\n${
          new TextDecoder().decode(run.stderr)
        }`,
      );
      continue;
    }
    console.log(
      `  ${name.padEnd(26)} ${upload.files.length} files, loads on its own`,
    );
  }
} finally {
  await server.shutdown();
  await Deno.remove(work, { recursive: true });
}
if (problems.length) {
  console.error(problems.join("\n"));
  Deno.exit(1);
}
