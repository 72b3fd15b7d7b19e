-- pgsnap bench, wide dataset: rows :lo .. :hi of audit_events (~440 bytes of COPY text each:
-- a jsonb payload of ~330 bytes with nested objects and arrays).
-- Deterministic given the caller's setseed() in the same session.
INSERT INTO audit_events (id, account_id, actor_id, event_type, source, status, payload, created_at)
SELECT g,
       1 + ((g::bigint * 7919) % 5000)::int,
       CASE WHEN g % 11 = 0 THEN NULL ELSE 1 + floor(random() * 50000)::int END,
       (ARRAY['user.login','user.logout','invoice.created','invoice.paid','subscription.updated',
              'api_key.rotated','project.deleted','member.invited','export.finished','webhook.failed'])[1 + floor(random() * 10)::int],
       (ARRAY['web','api','worker','admin','mobile'])[1 + g % 5],
       (ARRAY[200,200,200,201,204,400,403,404,409,500])[1 + floor(random() * 10)::int],
       jsonb_build_object(
           'request', jsonb_build_object(
               'id', substr(md5(g::text), 1, 16),
               'method', (ARRAY['GET','POST','PUT','PATCH','DELETE'])[1 + floor(random() * 5)::int],
               'path', format('/api/v2/accounts/%s/%s/%s', 1 + g % 5000,
                              (ARRAY['invoices','members','projects','keys','exports'])[1 + g % 5], g % 100000),
               'duration_ms', floor(random() * 2000)::int),
           'client', jsonb_build_object(
               'ip', format('%s.%s.%s.%s', 1 + floor(random() * 223)::int, floor(random() * 256)::int,
                            floor(random() * 256)::int, 1 + floor(random() * 254)::int),
               'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)',
                               'okhttp/4.12.0','python-requests/2.31.0','curl/8.5.0'])[1 + floor(random() * 5)::int],
               'geo', jsonb_build_object('country', (ARRAY['DE','US','GB','SE','NL','FR','ES','BR'])[1 + g % 8],
                                         'lat', round((random() * 120 - 60)::numeric, 4),
                                         'lon', round((random() * 360 - 180)::numeric, 4))),
           'changes', jsonb_build_array(
               jsonb_build_object('field', (ARRAY['plan','seats','email','role','status'])[1 + g % 5],
                                  'from', substr(md5(random()::text), 1, 8),
                                  'to', substr(md5(random()::text), 1, 8))),
           'tags', to_jsonb(ARRAY['audit', 'shard-' || (g % 16), 'batch-' || (g / 10000)])),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds' + random() * interval '2 seconds'
FROM generate_series(:lo, :hi) g;
