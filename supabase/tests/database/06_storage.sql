-- Storage: the nine buckets of seed 000, and object access by tenant prefix.
begin;
select no_plan();
select tests.make_fixture();

select is(
  array(select id || ':' || public || ':' || file_size_limit || ':' || array_to_string(allowed_mime_types, ',')
        from storage.buckets order by id),
  array[
    'branding:true:2097152:image/jpeg,image/png,image/svg+xml',
    'compliance-documents:false:20971520:application/pdf,image/jpeg,image/png',
    'invoices:false:10485760:application/pdf',
    'product-images:true:5242880:image/jpeg,image/png,image/webp',
    'purchase-orders:false:10485760:application/pdf',
    'quality-control:false:20971520:application/pdf',
    'recall-reports:false:10485760:application/pdf,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'reports:false:52428800:application/pdf,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'support-attachments:false:10485760:application/pdf,image/*,text/*'],
  'the nine buckets, with their public flag, size limit and MIME types');

insert into storage.objects (bucket_id, name) values
  ('purchase-orders', '1a000000-0000-4000-8000-000000000001/po-1.pdf'),
  ('purchase-orders', '1b000000-0000-4000-8000-000000000001/po-1.pdf'),
  ('product-images', '1a000000-0000-4000-8000-000000000001/oat.png');

select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(array(select bucket_id || '/' || name from storage.objects order by 1),
  array['product-images/1a000000-0000-4000-8000-000000000001/oat.png',
        'purchase-orders/1a000000-0000-4000-8000-000000000001/po-1.pdf'],
  'a member sees only their tenant''s files');
select lives_ok($$insert into storage.objects (bucket_id, name) values ('invoices', '1a000000-0000-4000-8000-000000000001/inv-1.pdf')$$,
  'a member may upload under their tenant''s prefix');
select throws_ok($$insert into storage.objects (bucket_id, name) values ('invoices', '1b000000-0000-4000-8000-000000000001/inv-1.pdf')$$,
  '42501', null, 'but not under another tenant''s');
select throws_ok($$insert into storage.objects (bucket_id, name) values ('invoices', 'loose.pdf')$$,
  '42501', null, 'nor outside any tenant''s prefix');
delete from storage.objects where name like '1b000000%';
update storage.objects set metadata = '{"x":1}' where name like '1b000000%';
select tests.act_as_owner();
select is((select count(*) from storage.objects where name like '1b000000%' and metadata is null), 1::bigint,
  'nor change or delete another tenant''s files');

select tests.act_as(null);
select is(array(select bucket_id || '/' || name from storage.objects),
  array['product-images/1a000000-0000-4000-8000-000000000001/oat.png'],
  'anon sees files in public buckets only');
select throws_ok($$insert into storage.objects (bucket_id, name) values ('product-images', '1a000000-0000-4000-8000-000000000001/x.png')$$,
  '42501', null, 'anon cannot upload');

select * from finish();
rollback;
