-- A deliberately BAD migration for the demo: it destroys data that only a
-- backup can bring back. Written the way golang-migrate runs things:
--
-- 1. migrate marks the version dirty and commits that before running the
--    migration body, so a failed/aborted run leaves "45, dirty" behind;
UPDATE schema_migrations SET version = 45, dirty = true;

-- 2. the body runs in its own transaction and commits: the damage is durable.
--    (migrate would set dirty=false after success; we leave it dirty, as if
--    the process was killed right after the commit, which is the situation
--    pgsnap's restore is for.)
BEGIN;

DROP VIEW campaign_stats;

-- "Domains are regenerated per phase now" -- 2000 rows gone.
DROP TABLE generated_domains;

CREATE TABLE phases (
    id          serial PRIMARY KEY,
    campaign_id int    NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    name        text   NOT NULL,
    position    int    NOT NULL,
    config      jsonb  NOT NULL DEFAULT '{}',
    started_at  timestamptz,
    UNIQUE (campaign_id, position)
);

-- Settings were supposed to be copied into phases first; nobody did.
ALTER TABLE campaigns DROP COLUMN settings;

-- Missing WHERE clause: every campaign loses its name.
UPDATE campaigns SET name = 'x';

COMMIT;
