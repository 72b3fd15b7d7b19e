-- pgsnap bench: schema and campaigns of a lead-generation app (generated_domains is filled
-- in chunks by rows.sql; indexes come afterwards in indexes.sql, as a bulk load would).
-- Deterministic: random() is seeded by the caller (SELECT setseed(...)) in the same session.
CREATE TABLE schema_migrations (
    version bigint  NOT NULL PRIMARY KEY,
    dirty   boolean NOT NULL
);
INSERT INTO schema_migrations (version, dirty) VALUES (44, false);

CREATE TABLE campaigns (
    id         serial PRIMARY KEY,
    name       text        NOT NULL,
    settings   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE generated_domains (
    id          bigserial PRIMARY KEY,
    campaign_id int          NOT NULL,  -- FK added after the load (indexes.sql)
    domain      text         NOT NULL,
    score       numeric(4,3),
    meta        jsonb,
    created_at  timestamptz  NOT NULL
);

-- 200 campaigns with settings documents of ~2-3 KB each.
INSERT INTO campaigns (name, settings, created_at)
SELECT format('%s %s - %s #%s',
         (ARRAY['Dental clinics','SaaS founders','Craft breweries','Law firms','Cafés & bakeries','Yoga studios','Roofers','Car dealers'])[1 + c % 8],
         (ARRAY['small','mid-size','enterprise','boutique'])[1 + c % 4],
         (ARRAY['Bavaria','Nordics','US West','UK','Wien','Benelux','Iberia','Québec'])[1 + (c / 8) % 8], c),
       jsonb_build_object(
         'phase', (ARRAY['discovery','enrichment','outreach','paused','done'])[1 + c % 5],
         'tlds', (SELECT jsonb_agg(t) FROM unnest(ARRAY['de','com','io','co.uk','at','se','nl','es','fr','ca']) WITH ORDINALITY u(t, o)
                  WHERE o <= 2 + c % 8),
         'keywords', (SELECT jsonb_agg(w || CASE WHEN k > 12 THEN ' ' || substr(md5(c::text || k::text), 1, 5) ELSE '' END)
                      FROM generate_series(1, 30) k,
                      LATERAL (SELECT (ARRAY['dental','clinic','praxis','cloud','saas','app','brewing','taproom','ipa','legal',
                                             'solicitor','chambers','café','bäckerei','yoga','roof','auto','dealer','repair','studio'])
                                      [1 + (c * 7 + k * 3) % 20] AS w) x),
         'max_domains', 100 + (c * 37) % 900,
         'scoring', jsonb_build_object(
             'min_score', round((0.3 + (c % 7) / 10.0)::numeric, 2),
             'weights', jsonb_build_object('keyword', 0.6, 'age', 0.25, 'traffic', 0.15),
             'penalties', jsonb_build_object('parked', -0.5, 'no_mx', -0.2, 'adult', -1)),
         'schedule', (SELECT jsonb_agg(jsonb_build_object(
                                'day', d, 'from', '08:00',
                                'to', CASE WHEN d IN ('sat','sun') THEN '12:00' ELSE '18:00' END,
                                'max_per_hour', 20 + c % 30))
                      FROM unnest(ARRAY['mon','tue','wed','thu','fri','sat','sun']) d),
         'exclusions', (SELECT jsonb_agg(format('%s.%s', substr(md5('ex' || c || '-' || e), 1, 10), (ARRAY['com','de','net'])[1 + e % 3]))
                        FROM generate_series(1, 25) e),
         'sequence', (SELECT jsonb_agg(jsonb_build_object(
                                'step', s, 'delay_days', s * 3, 'template', format('campaign-%s-step-%s', c, s),
                                'subject', format('Quick question about your %s', (ARRAY['website','domain','practice','shop'])[1 + s % 4])))
                      FROM generate_series(1, 5) s),
         'notify', jsonb_build_object('email', format('ops+%s@example.com', c), 'slack', c % 2 = 0,
                                      'webhook', format('https://hooks.example.com/lead/%s', md5('h' || c)))),
       timestamptz '2023-01-01 00:00:00+00' + c * interval '1 day 3 hours'
FROM generate_series(1, 200) c;
