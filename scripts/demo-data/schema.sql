-- Sample schema of a small lead-generation app, as it stands at migration 44.
-- Used by the demo and tests as "the database before a risky migration".
-- Run with: psql -X -v ON_ERROR_STOP=1 -f scripts/demo-data/schema.sql
BEGIN;

-- golang-migrate's bookkeeping table: one row, current version + dirty flag.
CREATE TABLE schema_migrations (
    version bigint  NOT NULL PRIMARY KEY,
    dirty   boolean NOT NULL
);
INSERT INTO schema_migrations (version, dirty) VALUES (44, false);

CREATE TABLE campaigns (
    id         serial PRIMARY KEY,
    name       text        NOT NULL,
    settings   jsonb       NOT NULL,
    created_at timestamptz DEFAULT now()
);

INSERT INTO campaigns (name, settings, created_at) VALUES
  ('Dental clinics - Bavaria',
   '{"phase": "discovery", "tlds": ["de", "com"], "keywords": ["zahnarzt", "dental", "praxis"],
     "max_domains": 500, "scoring": {"min_score": 0.6, "weights": {"keyword": 0.7, "age": 0.3}},
     "notify": {"email": "ops@example.com", "slack": false}}',
   '2024-01-15 09:30:00+01'),
  ('SaaS founders - Nordics',
   '{"phase": "enrichment", "tlds": ["io", "se", "no", "dk", "fi"], "keywords": ["saas", "cloud", "app"],
     "max_domains": 800, "scoring": {"min_score": 0.5, "weights": {"keyword": 0.5, "age": 0.5}},
     "notify": {"email": "growth@example.com", "slack": true}}',
   '2024-02-03 14:05:00+01'),
  ('Craft breweries - US West',
   '{"phase": "outreach", "tlds": ["com", "beer", "us"], "keywords": ["brewing", "taproom", "ipa"],
     "max_domains": 300, "scoring": {"min_score": 0.4, "weights": {"keyword": 0.8, "age": 0.2}},
     "notify": {"email": null, "slack": true}, "sequence": {"steps": 3, "delay_days": 4}}',
   '2024-03-21 18:45:00+01'),
  ('Law firms - UK',
   '{"phase": "paused", "tlds": ["co.uk", "uk", "law"], "keywords": ["solicitors", "legal", "chambers"],
     "max_domains": 250, "scoring": {"min_score": 0.7, "weights": {"keyword": 0.6, "age": 0.4}},
     "notify": {"email": "legal-leads@example.com", "slack": false}}',
   '2024-04-10 08:00:00+01'),
  ('Café & bakery - Wien ☕',
   '{"phase": "discovery", "tlds": ["at"], "keywords": ["café", "bäckerei", "konditorei"],
     "max_domains": 150, "scoring": {"min_score": 0.55, "weights": {"keyword": 0.9, "age": 0.1}},
     "notify": {"email": "wien@example.com", "slack": false}}',
   '2024-05-02 11:11:00+01');

CREATE TABLE generated_domains (
    id          bigserial PRIMARY KEY,
    campaign_id int     NOT NULL REFERENCES campaigns(id),
    domain      text    NOT NULL UNIQUE,
    score       numeric,
    meta        jsonb
);
CREATE INDEX generated_domains_campaign_id_idx ON generated_domains (campaign_id);

-- 2000 deterministic rows (no random()): dumps of the demo DB are comparable
-- byte for byte across runs.
INSERT INTO generated_domains (campaign_id, domain, score, meta)
SELECT (g % 5) + 1,
       format('%s-%s.%s',
              (ARRAY['smile', 'cloudy', 'hoppy', 'counsel', 'kipferl'])[(g % 5) + 1],
              g,
              (ARRAY['de', 'io', 'com', 'co.uk', 'at'])[(g % 5) + 1]),
       CASE WHEN g % 17 = 0 THEN NULL              -- not scored yet
            ELSE round(((g * 7919) % 1000) / 1000.0, 3) END,
       CASE WHEN g % 10 = 0 THEN NULL
            ELSE jsonb_build_object(
                   'source', (ARRAY['whois', 'crawler', 'manual'])[(g % 3) + 1],
                   'mx', g % 4 <> 0,
                   'http_status', (ARRAY[200, 200, 301, 404])[(g % 4) + 1],
                   'tags', to_jsonb(ARRAY['gen', 'batch-' || (g / 250)])) END
FROM generate_series(1, 2000) AS g;

CREATE VIEW campaign_stats AS
SELECT c.id                               AS campaign_id,
       c.name,
       c.settings ->> 'phase'             AS phase,
       count(d.id)                        AS domains,
       count(d.score)                     AS scored,
       round(avg(d.score), 3)             AS avg_score,
       count(*) FILTER (WHERE d.score >= (c.settings #>> '{scoring,min_score}')::numeric)
                                          AS qualified
FROM campaigns c
LEFT JOIN generated_domains d ON d.campaign_id = c.id
GROUP BY c.id, c.name, c.settings;

COMMIT;
