-- Storage: the nine buckets of seed 000, and object access by tenant prefix.
--
-- Objects live under `<tenant_id>/…` in every bucket. Members of that tenant
-- may read them, and write them unless they are viewers (see the roles in the
-- tenancy migration); in a public bucket anyone may read. The bucket's
-- file_size_limit and allowed_mime_types are enforced by the Storage API.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
  ('product-images', 'product-images', true, 5 * 1024 * 1024, array['image/jpeg', 'image/png', 'image/webp']),
  ('invoices', 'invoices', false, 10 * 1024 * 1024, array['application/pdf']),
  ('purchase-orders', 'purchase-orders', false, 10 * 1024 * 1024, array['application/pdf']),
  ('quality-control', 'quality-control', false, 20 * 1024 * 1024, array['application/pdf']),
  ('compliance-documents', 'compliance-documents', false, 20 * 1024 * 1024,
    array['application/pdf', 'image/jpeg', 'image/png']),
  ('recall-reports', 'recall-reports', false, 10 * 1024 * 1024, array['application/pdf']),
  ('reports', 'reports', false, 50 * 1024 * 1024,
    array['application/pdf', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet']),
  ('support-attachments', 'support-attachments', false, 10 * 1024 * 1024,
    array['application/pdf', 'image/*', 'text/*']),
  ('branding', 'branding', true, 2 * 1024 * 1024, array['image/jpeg', 'image/png', 'image/svg+xml'])
on conflict (id) do update
set public = excluded.public,
    file_size_limit = excluded.file_size_limit,
    allowed_mime_types = excluded.allowed_mime_types;

/*
 * private.object_tenant(name): the tenant an object belongs to, from the
 * first folder of its path; null when that folder is not a UUID.
 * Locks nothing; raises nothing.
 */
create or replace function private.object_tenant(name text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when split_part(name, '/', 1) ~ '^[0-9a-fA-F-]{36}$'
              then split_part(name, '/', 1)::uuid end
$$;
revoke all on function private.object_tenant(text) from public;
grant execute on function private.object_tenant(text) to authenticated, service_role;

drop policy if exists "Members can read their tenant's files" on storage.objects;
create policy "Members can read their tenant's files" on storage.objects
  for select to authenticated
  using (private.object_tenant(name) in (select private.current_tenant_ids()));

drop policy if exists "Anyone can read files in public buckets" on storage.objects;
create policy "Anyone can read files in public buckets" on storage.objects
  for select to anon, authenticated
  using (bucket_id in ('product-images', 'branding'));

drop policy if exists "Members can upload their tenant's files" on storage.objects;
create policy "Members can upload their tenant's files" on storage.objects
  for insert to authenticated
  with check (private.object_tenant(name) in (select private.tenant_ids_with_role('member')));

drop policy if exists "Members can replace their tenant's files" on storage.objects;
create policy "Members can replace their tenant's files" on storage.objects
  for update to authenticated
  using (private.object_tenant(name) in (select private.tenant_ids_with_role('member')))
  with check (private.object_tenant(name) in (select private.tenant_ids_with_role('member')));

drop policy if exists "Members can delete their tenant's files" on storage.objects;
create policy "Members can delete their tenant's files" on storage.objects
  for delete to authenticated
  using (private.object_tenant(name) in (select private.tenant_ids_with_role('member')));
