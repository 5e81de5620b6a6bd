-- Schedules, written the way Supabase documents them: pg_cron runs a job that
-- calls a function with pg_net, reading the project URL and key from Vault.
--
-- On a Supabase project, enable pg_cron and pg_net (Database → Extensions) and
-- store two secrets once:
--   select vault.create_secret('https://<ref>.supabase.co', 'project_url');
--   select vault.create_secret('<service role key>', 'service_role_key');
-- Locally, scripts/dev and scripts/test install pg_cron, provide stand-ins for
-- pg_net and Vault (supabase/local/bootstrap.sql) and store both secrets.

create extension if not exists pg_cron;
do $$
begin
  -- pg_net's objects live in schema net; the local stand-in already made it.
  if not exists (select 1 from pg_namespace where nspname = 'net') then
    create extension pg_net;
  end if;
end
$$;

-- Deliver the notification outbox every minute; orders also trigger delivery
-- at once, so this is the safety net for anything a trigger missed.
select cron.schedule(
  'dispatch-notifications',
  '* * * * *',
  $job$
  select net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url')
           || '/functions/v1/dispatch-notifications',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
    body := '{}'::jsonb,
    timeout_milliseconds := 30000
  )
  $job$
);

-- Idempotency keys are kept 24 h; delete expired ones hourly.
select cron.schedule('purge-idempotency-keys', '17 * * * *', $job$select public.purge_expired_idempotency_keys()$job$);

-- Admissions live 60 s; delete expired ones every 10 minutes.
select cron.schedule('purge-admissions', '*/10 * * * *', $job$select public.purge_expired_admissions()$job$);
