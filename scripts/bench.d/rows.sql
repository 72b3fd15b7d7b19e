-- pgsnap bench: rows :lo .. :hi of generated_domains (~255 bytes of COPY text each, gzip -6 ~5x).
-- Deterministic given the caller's setseed() in the same session.
INSERT INTO generated_domains (id, campaign_id, domain, score, meta, created_at)
SELECT g,
       1 + ((g::bigint * 7919) % 200)::int,
       format('%s%s-%s.%s',
              (ARRAY['smile','cloudy','hoppy','counsel','kipferl','zen','roofy','motor',
                     'bright','green','alpha','nordic','urban','happy','prime','blue'])[1 + floor(random() * 16)::int],
              (ARRAY['dental','apps','brew','law','cafe','yoga','roofing','cars',
                     'clinic','labs','works','studio','shop','group','point','hub'])[1 + floor(random() * 16)::int],
              g, (ARRAY['de','com','io','co.uk','at','se','nl','es','fr','com'])[1 + g % 10]),
       CASE WHEN g % 17 = 0 THEN NULL ELSE round(random()::numeric, 3) END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE jsonb_build_object(
           'source', (ARRAY['whois','crawler','manual','import'])[1 + g % 4],
           'mx', g % 4 <> 0,
           'http_status', (ARRAY[200,200,200,301,302,404,500])[1 + floor(random() * 7)::int],
           'lang', (ARRAY['de','en','en','sv','nl','es','fr'])[1 + g % 7],
           'tags', to_jsonb(ARRAY['gen', 'batch-' || (g / 5000)]),
           'whois', jsonb_build_object(
               'registrar', (ARRAY['GoDaddy','Namecheap','IONOS','OVH','Gandi','Strato'])[1 + floor(random() * 6)::int],
               'created', (date '2005-01-01' + floor(random() * 6500)::int)::text),
           'ip', format('%s.%s.%s.%s', 1 + floor(random() * 223)::int, floor(random() * 256)::int,
                        floor(random() * 256)::int, 1 + floor(random() * 254)::int),
           'fingerprint', substr(md5(g::text), 1, 12)) END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '7 seconds' + random() * interval '3 seconds'
FROM generate_series(:lo, :hi) g;
