-- pgsnap bench, wide dataset: audit_events' primary key and its ONE secondary index, after the
-- bulk load (restores rebuild both).
ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id);
CREATE INDEX audit_events_account_id_created_at_idx ON audit_events (account_id, created_at);
