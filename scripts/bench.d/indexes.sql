-- pgsnap bench: indexes, sequence and view after the bulk load (restores rebuild all of them).
SELECT setval('generated_domains_id_seq', (SELECT coalesce(max(id), 1) FROM generated_domains));
ALTER TABLE generated_domains ADD CONSTRAINT generated_domains_domain_key UNIQUE (domain);
ALTER TABLE generated_domains ADD CONSTRAINT generated_domains_campaign_id_fkey
    FOREIGN KEY (campaign_id) REFERENCES campaigns(id);
CREATE INDEX generated_domains_campaign_id_idx ON generated_domains (campaign_id);
CREATE INDEX generated_domains_created_at_idx ON generated_domains (created_at);

CREATE VIEW campaign_stats AS
SELECT c.id                   AS campaign_id,
       c.name,
       c.settings ->> 'phase' AS phase,
       count(d.id)            AS domains,
       count(d.score)         AS scored,
       round(avg(d.score), 3) AS avg_score
FROM campaigns c
LEFT JOIN generated_domains d ON d.campaign_id = c.id
GROUP BY c.id, c.name, c.settings;
