// Usage: deno run scripts/token.ts <stack dir> <email> [ttl-seconds]
import postgres from "postgres";
import { readEnvFile, readKeys, userToken } from "./jwt.ts";

const [stackDir, email, ttl] = Deno.args;
const env = readEnvFile(`${stackDir}/env`);
const sql = postgres(env.SUPABASE_DB_URL, { max: 1, onnotice: () => {} });
try {
  const rows =
    await sql`select id::text from auth.users where email = ${email}`;
  if (rows.length === 0) {
    console.error(`no user with email ${email} in auth.users`);
    Deno.exit(1);
  }
  console.log(
    await userToken(
      readKeys(stackDir),
      { id: rows[0].id, email },
      env.SUPABASE_URL,
      ttl ? Number(ttl) : 3600,
    ),
  );
} finally {
  await sql.end();
}
