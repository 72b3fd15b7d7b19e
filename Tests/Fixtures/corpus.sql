-- pgsnap fidelity corpus: one database holding at least one of every kind of object a plain
-- pg_dump (PostgreSQL 15) can carry, with awkward names wherever a name can go.
--
-- Loaded by Tests/IntegrationTests/CorpusTestCase.swift with
--     psql -X -q -v ON_ERROR_STOP=1 -d <fresh database> -f corpus.sql
-- Precondition: the tablespace pgsnap_corpus_space exists. It is cluster-wide, CREATE TABLESPACE
-- cannot run in a transaction and needs a directory owned by the server's OS user, so the test
-- creates it (CorpusCluster.prepare). Roles are cluster-wide too: they are created here if missing
-- (DO blocks), with names no other test uses. psql's own :DBNAME variable names the database for
-- the database-level statements.
--
-- Not here, because PostgreSQL 15 with Debian's contrib cannot make them: security labels (no
-- label provider; dummy_seclabel is a test module) and transforms (they need C functions of a
-- language other than plpgsql, e.g. hstore_plperl from postgresql-plperl).
--
-- Everything is deterministic (no random(), no now() in stored data): two loads of this file
-- have equal fingerprints, and so must a backup and its restore.

\set ON_ERROR_STOP 1
\o /dev/null
SET client_min_messages = warning;
-- A 14 server (the version matrix's oldest) gets what needs 15 without its 15 part: \if :corpus_pg15.
SELECT current_setting('server_version_num')::int >= 150000 AS corpus_pg15 \gset

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide; idempotent)
-- ---------------------------------------------------------------------------------------------
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pgsnap_corpus_owner', 'pgsnap_corpus_reader', 'pgsnap_corpus_writer',
                             'pgsnap corpus "odd" rôle']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Database-level properties (kept outside a plain dump; pgsnap must carry them itself)
-- ---------------------------------------------------------------------------------------------
ALTER DATABASE :"DBNAME" SET work_mem = '12MB';
ALTER DATABASE :"DBNAME" SET search_path = "$user", public, "Weird.Schema ""q""";
ALTER DATABASE :"DBNAME" SET statement_timeout = '1h';
ALTER ROLE pgsnap_corpus_reader IN DATABASE :"DBNAME" SET statement_timeout = '5s';
ALTER ROLE pgsnap_corpus_reader IN DATABASE :"DBNAME" SET search_path = reporting, public;
ALTER ROLE "pgsnap corpus ""odd"" rôle" IN DATABASE :"DBNAME" SET work_mem = '3MB';
ALTER DATABASE :"DBNAME" CONNECTION LIMIT 40;
ALTER DATABASE :"DBNAME" OWNER TO pgsnap_corpus_owner;
COMMENT ON DATABASE :"DBNAME" IS 'pgsnap fidelity corpus: ''quoted'', ünïcødé';
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO pgsnap_corpus_reader;
GRANT CREATE ON DATABASE :"DBNAME" TO pgsnap_corpus_owner WITH GRANT OPTION;
GRANT CONNECT ON DATABASE :"DBNAME" TO PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Schemas, extensions
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA "Weird.Schema ""q""" AUTHORIZATION pgsnap_corpus_owner;
CREATE SCHEMA reporting;
CREATE SCHEMA ext;
CREATE SCHEMA "schéma ünïcødé 表";
CREATE SCHEMA "select";  -- a reserved word
COMMENT ON SCHEMA "Weird.Schema ""q""" IS 'schema with a dot, a space and quotes';
COMMENT ON SCHEMA ext IS 'extensions live here';

CREATE EXTENSION pg_trgm SCHEMA ext;
CREATE EXTENSION hstore SCHEMA ext;
CREATE EXTENSION citext;
CREATE EXTENSION "uuid-ossp";
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION btree_gist SCHEMA ext;  -- for the exclusion constraint's "room WITH ="
COMMENT ON EXTENSION hstore IS 'key/value pairs (comment changed by the corpus)';
-- A privilege on an extension's member object: pg_dump carries it through pg_init_privs.
GRANT EXECUTE ON FUNCTION ext.similarity(text, text) TO pgsnap_corpus_reader;
REVOKE EXECUTE ON FUNCTION ext.show_trgm(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Types: enum, composite, range, multirange, domains, arrays of those; collations
-- ---------------------------------------------------------------------------------------------
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
ALTER TYPE public.mood ADD VALUE 'meh' BEFORE 'ok';
CREATE TYPE "Weird.Schema ""q"""."Point 3D" AS (x double precision, y double precision, "z.axis" double precision);
CREATE TYPE public.float_range AS RANGE (subtype = float8, subtype_diff = float8mi, multirange_type_name = float_multirange);
CREATE DOMAIN public.positive_int AS integer CONSTRAINT positive CHECK (VALUE > 0) NOT NULL;
CREATE DOMAIN public.email AS citext CONSTRAINT has_at CHECK (VALUE ~ '@') CONSTRAINT not_long CHECK (length(VALUE) < 200);
CREATE DOMAIN public.us_postal AS text DEFAULT '00000' CHECK (VALUE ~ '^\d{5}$');
ALTER DOMAIN public.us_postal ADD CONSTRAINT later_check CHECK (VALUE <> '99999') NOT VALID;
CREATE TYPE public.shell_type;  -- a shell type, defined by nothing yet
COMMENT ON TYPE public.mood IS 'an enum';
COMMENT ON TYPE public.float_range IS 'a range with a multirange';
COMMENT ON DOMAIN public.email IS 'a domain over an extension type';
COMMENT ON CONSTRAINT positive ON DOMAIN public.positive_int IS 'domain constraint comment';

CREATE COLLATION public."case insensitive" (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION public.c_copy FROM "C";
COMMENT ON COLLATION public."case insensitive" IS 'nondeterministic ICU collation';

CREATE CONVERSION public.corpus_utf8_to_latin1 FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
COMMENT ON CONVERSION public.corpus_utf8_to_latin1 IS 'a conversion';

-- ---------------------------------------------------------------------------------------------
-- Functions, procedures, aggregates, operators, operator classes/families, casts
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION public.add_one(i integer) RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN i + 1;
CREATE FUNCTION public.atomic_total(a numeric, b numeric) RETURNS numeric LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT a + b;
END;
CREATE FUNCTION "Weird.Schema ""q"""."fn with ""quotes""."(x text DEFAULT 'dflt', VARIADIC rest text[] DEFAULT '{}')
    RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public COST 7 ROWS 3 AS $body$
BEGIN
    RETURN NEXT x;
    RETURN QUERY SELECT unnest(rest);
END
$body$;
CREATE FUNCTION public.out_params(IN a int, OUT doubled int, OUT tripled int) LANGUAGE sql AS $$ SELECT a * 2, a * 3 $$;
CREATE FUNCTION public.returns_table(n int) RETURNS TABLE ("select" int, "from" text) LANGUAGE sql AS
    $$ SELECT g, 'row ' || g FROM generate_series(1, n) g $$;
CREATE PROCEDURE public.bump_counter(INOUT counter int, step int DEFAULT 1) LANGUAGE plpgsql AS $$
BEGIN counter := counter + step; END $$;
CREATE PROCEDURE public.atomic_proc(x int) LANGUAGE sql
BEGIN ATOMIC
    SELECT x;
END;
COMMENT ON FUNCTION public.add_one(integer) IS 'SQL-standard RETURN body';
COMMENT ON FUNCTION public.atomic_total(numeric, numeric) IS 'BEGIN ATOMIC body';
COMMENT ON PROCEDURE public.bump_counter(int, int) IS 'a procedure';
REVOKE EXECUTE ON FUNCTION public.add_one(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_one(integer) TO pgsnap_corpus_reader;
ALTER FUNCTION public.out_params(int) OWNER TO pgsnap_corpus_owner;

-- Aggregates: plain with final function, moving, ordered-set, hypothetical
CREATE FUNCTION public.agg_sfunc(state numeric[], v numeric) RETURNS numeric[] LANGUAGE sql IMMUTABLE
    RETURN array[state[1] + v, state[2] + 1];
CREATE FUNCTION public.agg_inv(state numeric[], v numeric) RETURNS numeric[] LANGUAGE sql IMMUTABLE
    RETURN array[state[1] - v, state[2] - 1];
CREATE FUNCTION public.agg_final(state numeric[]) RETURNS numeric LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN state[2] = 0 THEN NULL ELSE state[1] / state[2] END;
CREATE AGGREGATE public.my_avg(numeric) (
    SFUNC = agg_sfunc, STYPE = numeric[], FINALFUNC = agg_final, INITCOND = '{0,0}',
    MSFUNC = agg_sfunc, MINVFUNC = agg_inv, MSTYPE = numeric[], MFINALFUNC = agg_final, MINITCOND = '{0,0}',
    PARALLEL = SAFE);
CREATE AGGREGATE public.my_percentile(float8 ORDER BY float8) (
    SFUNC = ordered_set_transition, STYPE = internal, FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA);
COMMENT ON AGGREGATE public.my_avg(numeric) IS 'moving-capable aggregate';

-- An operator family and btree class ordering integers by absolute value
CREATE FUNCTION public.abs_lt(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN abs(a) < abs(b);
CREATE FUNCTION public.abs_le(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN abs(a) <= abs(b);
CREATE FUNCTION public.abs_eq(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN abs(a) = abs(b);
CREATE FUNCTION public.abs_ge(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN abs(a) >= abs(b);
CREATE FUNCTION public.abs_gt(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN abs(a) > abs(b);
CREATE FUNCTION public.abs_cmp(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN abs(a) < abs(b) THEN -1 WHEN abs(a) > abs(b) THEN 1 ELSE 0 END;
CREATE OPERATOR public.<<| (LEFTARG = int, RIGHTARG = int, FUNCTION = abs_lt, COMMUTATOR = OPERATOR(public.|>>));
CREATE OPERATOR public.<<=| (LEFTARG = int, RIGHTARG = int, FUNCTION = abs_le);
CREATE OPERATOR public.=|= (LEFTARG = int, RIGHTARG = int, FUNCTION = abs_eq, COMMUTATOR = OPERATOR(public.=|=),
                            RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR public.|>>= (LEFTARG = int, RIGHTARG = int, FUNCTION = abs_ge);
CREATE OPERATOR public.|>> (LEFTARG = int, RIGHTARG = int, FUNCTION = abs_gt);
CREATE OPERATOR public.!! (RIGHTARG = text, FUNCTION = upper);  -- a prefix operator
CREATE OPERATOR FAMILY public.abs_int_ops USING btree;
CREATE OPERATOR CLASS public.abs_int_ops FOR TYPE int USING btree FAMILY public.abs_int_ops AS
    OPERATOR 1 <<|, OPERATOR 2 <<=|, OPERATOR 3 =|=, OPERATOR 4 |>>=, OPERATOR 5 |>>,
    FUNCTION 1 abs_cmp(int, int);
CREATE OPERATOR FAMILY public.empty_family USING hash;
COMMENT ON OPERATOR public.=|= (int, int) IS 'equal in absolute value';
COMMENT ON OPERATOR CLASS public.abs_int_ops USING btree IS 'an operator class';
COMMENT ON OPERATOR FAMILY public.abs_int_ops USING btree IS 'an operator family';

-- Casts between user types
CREATE FUNCTION public.mood_to_int(m mood) RETURNS int LANGUAGE sql IMMUTABLE
    RETURN array_position(enum_range(NULL::mood), m);
CREATE CAST (mood AS int) WITH FUNCTION public.mood_to_int(mood) AS ASSIGNMENT;
CREATE CAST ("Weird.Schema ""q"""."Point 3D" AS text) WITH INOUT;
COMMENT ON CAST (mood AS int) IS 'enum position';

-- ---------------------------------------------------------------------------------------------
-- Text search: parser, template, dictionary, configuration
-- ---------------------------------------------------------------------------------------------
CREATE TEXT SEARCH PARSER public.corpus_parser (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end,
                                                LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
CREATE TEXT SEARCH TEMPLATE public.corpus_template (INIT = dsimple_init, LEXIZE = dsimple_lexize);
CREATE TEXT SEARCH DICTIONARY public.corpus_dict (TEMPLATE = public.corpus_template, STOPWORDS = english, ACCEPT = false);
CREATE TEXT SEARCH CONFIGURATION public."corpus config" (PARSER = public.corpus_parser);
ALTER TEXT SEARCH CONFIGURATION public."corpus config" ADD MAPPING FOR word, asciiword WITH public.corpus_dict, english_stem;
COMMENT ON TEXT SEARCH CONFIGURATION public."corpus config" IS 'ts config';
COMMENT ON TEXT SEARCH DICTIONARY public.corpus_dict IS 'ts dictionary';
COMMENT ON TEXT SEARCH PARSER public.corpus_parser IS 'ts parser';
COMMENT ON TEXT SEARCH TEMPLATE public.corpus_template IS 'ts template';

-- ---------------------------------------------------------------------------------------------
-- Access method, foreign data
-- ---------------------------------------------------------------------------------------------
CREATE ACCESS METHOD corpus_heap TYPE TABLE HANDLER heap_tableam_handler;
COMMENT ON ACCESS METHOD corpus_heap IS 'a table access method';

CREATE FOREIGN DATA WRAPPER corpus_dummy_fdw;
CREATE SERVER "remote server" FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port '1', dbname 'pgsnap_corpus_nowhere', fetch_size '500');
CREATE SERVER dummy_server FOREIGN DATA WRAPPER corpus_dummy_fdw;
CREATE USER MAPPING FOR pgsnap_corpus_reader SERVER "remote server" OPTIONS (user 'remote_reader');
CREATE USER MAPPING FOR PUBLIC SERVER dummy_server;
CREATE FOREIGN TABLE reporting."remote orders" (id int OPTIONS (column_name 'order_id') NOT NULL, total numeric)
    SERVER "remote server" OPTIONS (schema_name 'public', table_name 'orders');
GRANT USAGE ON FOREIGN SERVER "remote server" TO pgsnap_corpus_reader;
GRANT SELECT ON reporting."remote orders" TO pgsnap_corpus_reader;
COMMENT ON SERVER "remote server" IS 'postgres_fdw loopback, never connected to';
COMMENT ON FOREIGN DATA WRAPPER corpus_dummy_fdw IS 'fdw without handler';
COMMENT ON FOREIGN TABLE reporting."remote orders" IS 'a foreign table';

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE public."odd ""seq""" INCREMENT BY 7 MINVALUE -100 MAXVALUE 1000000 START WITH 3 CACHE 1 CYCLE;
SELECT setval('public."odd ""seq"""', 500, true);
CREATE SEQUENCE public.not_called_seq AS smallint START WITH 10;
SELECT setval('public.not_called_seq', 42, false);
CREATE SEQUENCE public.untouched_seq;
COMMENT ON SEQUENCE public."odd ""seq""" IS 'non-default state';

CREATE TABLE public.customers (
    id          int GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5) PRIMARY KEY,
    name        text COLLATE public."case insensitive" NOT NULL,
    email       email UNIQUE,
    mood        mood NOT NULL DEFAULT 'ok',
    moods       mood[] NOT NULL DEFAULT '{}',
    tags        ext.hstore,
    location    "Weird.Schema ""q"""."Point 3D",
    locations   "Weird.Schema ""q"""."Point 3D"[],
    "from"      us_postal,
    "Mixed Case Col" text COMPRESSION lz4,
    uid         uuid NOT NULL,
    name_upper  text GENERATED ALWAYS AS (upper(name::text)) STORED,
    score       positive_int DEFAULT 1,
    CONSTRAINT name_not_blank CHECK (btrim(name::text) <> '')
);
ALTER TABLE public.customers ALTER COLUMN name SET STATISTICS 500;
ALTER TABLE public.customers ALTER COLUMN "Mixed Case Col" SET STORAGE EXTERNAL;
ALTER TABLE public.customers SET (fillfactor = 80, autovacuum_enabled = false);
ALTER TABLE public.customers REPLICA IDENTITY FULL;
COMMENT ON TABLE public.customers IS 'identity, generated, domains, enums, composites, hstore, citext';
COMMENT ON COLUMN public.customers.name IS 'column comment';
COMMENT ON CONSTRAINT name_not_blank ON public.customers IS 'check constraint comment';

INSERT INTO public.customers (name, email, mood, moods, tags, location, locations, "from", "Mixed Case Col", uid, score)
SELECT 'Customer ' || g,
       'c' || g || '@Example.org',
       (ARRAY['sad', 'meh', 'ok', 'happy', 'it''s "complicated"'])[1 + g % 5]::mood,
       ARRAY['sad', 'happy']::mood[],
       ext.hstore(ARRAY['k' || g, 'quote"d', 'back\slash'], ARRAY['v' || g, 'x', NULL]),
       ROW(g, -g, g * 0.5)::"Weird.Schema ""q"""."Point 3D",
       ARRAY[ROW(1, 2, 3), ROW(g, g, g)]::"Weird.Schema ""q"""."Point 3D"[],
       lpad((g * 37 % 100000)::text, 5, '0'),
       CASE WHEN g % 3 = 0 THEN NULL ELSE E'tab\there\nnewline \\ backslash ' || repeat('é', g % 9) END,
       uuid_generate_v5(uuid_ns_url(), 'https://example.org/' || g),
       g
FROM generate_series(1, 300) g;

CREATE TABLE public.ranges (
    id          bigint GENERATED BY DEFAULT AS IDENTITY,
    during      tstzrange NOT NULL,
    room        int NOT NULL,
    fr          float_range,
    frs         float_multirange,
    frs_arr     float_range[],
    CONSTRAINT ranges_pkey PRIMARY KEY (id),
    CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, during WITH &&) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO public.ranges (during, room, fr, frs, frs_arr)
SELECT tstzrange(timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', timestamptz '2024-01-01 00:00+00' + (g + 1) * interval '1 hour'),
       g % 4, float_range(g, g + 0.5), float_multirange(float_range(0, g), float_range(g + 1, g + 2)),
       ARRAY[float_range(1, 2), float_range(g, NULL)]
FROM generate_series(1, 100) g;
SELECT setval(pg_get_serial_sequence('public.ranges', 'id'), 1000);

CREATE TABLE public.orders (
    id          bigserial PRIMARY KEY,
    customer_id int NOT NULL,
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    placed      date NOT NULL,
    note        text
);
ALTER TABLE public.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES public.customers (id)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
INSERT INTO public.orders (customer_id, amount, placed, note)
SELECT 100 + 5 * (g % 300), (g * 1.37)::numeric(12, 2), date '2023-01-01' + g % 700, CASE WHEN g % 10 = 0 THEN 'note ' || g END
FROM generate_series(1, 2000) g;
CREATE INDEX orders_placed_brin ON public.orders USING brin (placed);
CREATE INDEX orders_note_trgm ON public.orders USING gin (note ext.gin_trgm_ops) WHERE note IS NOT NULL;
CREATE INDEX orders_expr_idx ON public.orders ((amount * 2) DESC NULLS LAST) INCLUDE (placed) WITH (fillfactor = 70);
CREATE INDEX orders_abs_idx ON public.orders (customer_id public.abs_int_ops);
\if :corpus_pg15
CREATE UNIQUE INDEX orders_note_uniq ON public.orders (note) NULLS NOT DISTINCT WHERE note LIKE 'note 1%';
\else
CREATE UNIQUE INDEX orders_note_uniq ON public.orders (note) WHERE note LIKE 'note 1%';
\endif
ALTER TABLE public.orders CLUSTER ON orders_pkey;
COMMENT ON INDEX public.orders_note_trgm IS 'trigram index from an extension opclass';

-- Partitioning: range with sub-partitions and a default, list, hash; partitioned PK and index
CREATE TABLE public.events (
    id          bigint NOT NULL,
    happened    date NOT NULL,
    kind        text NOT NULL,
    payload     jsonb,
    PRIMARY KEY (id, happened, kind)
) PARTITION BY RANGE (happened);
CREATE TABLE public.events_2023 PARTITION OF public.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')
    PARTITION BY LIST (kind);
CREATE TABLE public.events_2023_click PARTITION OF public.events_2023 FOR VALUES IN ('click', 'tap');
CREATE TABLE public.events_2023_other PARTITION OF public.events_2023 DEFAULT;
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY HASH (id);
CREATE TABLE public.events_2024_h0 PARTITION OF public.events_2024 FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE public.events_2024_h1 PARTITION OF public.events_2024 FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE public.events_2024_h2 PARTITION OF public.events_2024 FOR VALUES WITH (MODULUS 3, REMAINDER 2);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
-- A partition made on its own (different column order, a dropped column) and attached later.
CREATE TABLE public."events 2022" (kind text NOT NULL, dropped_col int, payload jsonb, happened date NOT NULL, id bigint NOT NULL);
ALTER TABLE public."events 2022" DROP COLUMN dropped_col;
ALTER TABLE public.events ATTACH PARTITION public."events 2022" FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
CREATE INDEX events_kind_idx ON public.events (kind, happened DESC);
CREATE INDEX events_payload_idx ON public.events USING gin (payload jsonb_path_ops);
INSERT INTO public.events
SELECT g, date '2022-03-01' + (g * 3) % 1200, (ARRAY['click', 'tap', 'view', 'buy'])[1 + g % 4],
       jsonb_build_object('n', g, 'nested', jsonb_build_object('quote"', 'it''s', 'arr', jsonb_build_array(g, NULL, true)))
FROM generate_series(1, 1500) g;
COMMENT ON TABLE public.events IS 'range/list/hash/default partitions';

-- Inheritance (multiple parents), unlogged, a table in the second tablespace, a table with the custom AM
CREATE TABLE public.vehicles (id int PRIMARY KEY, wheels int NOT NULL DEFAULT 4, CHECK (wheels >= 0));
CREATE TABLE public.motorised (hp int);
CREATE TABLE public.cars (seats int NOT NULL) INHERITS (public.vehicles, public.motorised);
CREATE TABLE public.trucks (payload_kg int) INHERITS (public.vehicles);
ALTER TABLE public.trucks ALTER COLUMN wheels SET DEFAULT 6;
INSERT INTO public.vehicles VALUES (1, 2), (2, 3);
INSERT INTO public.cars (id, wheels, hp, seats) SELECT g, 4, 100 + g, 5 FROM generate_series(10, 40) g;
INSERT INTO public.trucks (id, payload_kg) SELECT g, g * 1000 FROM generate_series(50, 60) g;

CREATE UNLOGGED TABLE public.session_cache (key text PRIMARY KEY, value bytea, expires int);
INSERT INTO public.session_cache SELECT 'k' || g, decode(md5(g::text), 'hex') || '\x00ff'::bytea, g FROM generate_series(1, 50) g;

CREATE TABLE public.in_other_space (id int PRIMARY KEY USING INDEX TABLESPACE pgsnap_corpus_space, v text)
    TABLESPACE pgsnap_corpus_space;
INSERT INTO public.in_other_space SELECT g, 'v' || g FROM generate_series(1, 20) g;
CREATE INDEX in_other_space_v ON public.in_other_space (v) TABLESPACE pgsnap_corpus_space;

CREATE TABLE public.custom_am_table (id int, v text) USING corpus_heap;
INSERT INTO public.custom_am_table VALUES (1, 'one'), (2, 'two');

-- Awkward names everywhere
CREATE TABLE "Weird.Schema ""q"""."table ""with"" quotes.and dots" (
    "select"    int PRIMARY KEY,
    "Column With Spaces" text,
    "ünïcødé 列" text,
    "a.b"       text DEFAULT 'd.e',
    "$dollar"   numeric,
    "user"      text
);
INSERT INTO "Weird.Schema ""q"""."table ""with"" quotes.and dots"
SELECT g, 'spaces ' || g, '表' || g || 'ü', 'x.y', g / 3.0, CASE WHEN g % 2 = 0 THEN E'line1\nline2\r\n\\.' END
FROM generate_series(1, 40) g;
CREATE TABLE "schéma ünïcødé 表"."tåble 表" (id int PRIMARY KEY, "値" text);
INSERT INTO "schéma ünïcødé 表"."tåble 表" VALUES (1, 'いち'), (2, 'に'), (3, E'\\N not null');
CREATE TABLE "select"."from" ("where" int PRIMARY KEY, "order" text, "group" text);
INSERT INTO "select"."from" VALUES (1, 'by', 'by'), (2, NULL, '');
-- A newline inside a table and a column name: pg_dump's COPY line for it spans two lines.
CREATE TABLE public."line
break" ("col
with newline" int, v text);
INSERT INTO public."line
break" VALUES (1, 'a'), (2, E'b\nc'), (3, NULL);
CREATE TABLE public."UPPER lower" (id int);
INSERT INTO public."UPPER lower" VALUES (1), (NULL);
COMMENT ON TABLE "Weird.Schema ""q"""."table ""with"" quotes.and dots" IS 'awkward names';
COMMENT ON COLUMN "Weird.Schema ""q"""."table ""with"" quotes.and dots"."ünïcødé 列" IS 'unicode column';
ALTER TABLE "Weird.Schema ""q"""."table ""with"" quotes.and dots" OWNER TO pgsnap_corpus_owner;

-- A table without columns, a table without rows
CREATE TABLE public.no_columns ();
INSERT INTO public.no_columns DEFAULT VALUES;
INSERT INTO public.no_columns DEFAULT VALUES;
CREATE TABLE public.empty_table (id int);

-- ---------------------------------------------------------------------------------------------
-- Triggers, rules, event triggers
-- ---------------------------------------------------------------------------------------------
CREATE TABLE public.audit_log (id bigint GENERATED ALWAYS AS IDENTITY, tbl text, op text, row_id bigint);
CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.audit_log (tbl, op, row_id) VALUES (TG_TABLE_NAME, TG_OP, CASE WHEN TG_LEVEL = 'ROW' THEN NEW.id END);
    RETURN NEW;
END $$;
CREATE FUNCTION public.check_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount > 1000000 THEN RAISE EXCEPTION 'amount too large'; END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER orders_audit_row AFTER INSERT OR UPDATE OF amount ON public.orders
    FOR EACH ROW WHEN (NEW.amount IS DISTINCT FROM 0) EXECUTE FUNCTION public.audit();
CREATE TRIGGER orders_audit_stmt AFTER TRUNCATE ON public.orders FOR EACH STATEMENT EXECUTE FUNCTION public.audit();
CREATE CONSTRAINT TRIGGER orders_amount_limit AFTER INSERT OR UPDATE ON public.orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.check_amount();
CREATE FUNCTION "Weird.Schema ""q"""."touch ""row"""() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW."a.b" := coalesce(NEW."a.b", 'touched');
    RETURN NEW;
END $$;
CREATE TRIGGER "trigger ""odd"" name" BEFORE UPDATE ON "Weird.Schema ""q"""."table ""with"" quotes.and dots"
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION "Weird.Schema ""q"""."touch ""row"""();
CREATE TRIGGER events_audit AFTER INSERT ON public.events FOR EACH ROW EXECUTE FUNCTION public.audit();
CREATE TRIGGER disabled_trigger AFTER DELETE ON public.customers FOR EACH ROW EXECUTE FUNCTION public.audit();
ALTER TABLE public.customers DISABLE TRIGGER disabled_trigger;
CREATE TRIGGER replica_trigger AFTER DELETE ON public.vehicles FOR EACH ROW EXECUTE FUNCTION public.audit();
ALTER TABLE public.vehicles ENABLE REPLICA TRIGGER replica_trigger;
COMMENT ON TRIGGER orders_audit_row ON public.orders IS 'row trigger with WHEN';
INSERT INTO public.orders (customer_id, amount, placed) VALUES (100, 5, '2024-05-05');  -- leaves one audit row

CREATE TABLE public.rule_target (id int, note text);
CREATE RULE "rule: no deletes" AS ON DELETE TO public.rule_target DO INSTEAD NOTHING;
CREATE RULE log_insert AS ON INSERT TO public.rule_target WHERE NEW.id < 0
    DO ALSO INSERT INTO public.audit_log (tbl, op, row_id) VALUES ('rule_target', 'negative', NEW.id);
INSERT INTO public.rule_target VALUES (1, 'a'), (-1, 'negative');
COMMENT ON RULE "rule: no deletes" ON public.rule_target IS 'a rule';

CREATE FUNCTION public.block_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Harmless unless asked: a restore's DDL must never trip it.
    IF current_setting('pgsnap_corpus.block_ddl', true) = 'on' THEN
        RAISE EXCEPTION 'DDL blocked: %', tg_tag;
    END IF;
END $$;
CREATE EVENT TRIGGER "corpus event trigger" ON ddl_command_start WHEN TAG IN ('DROP TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION public.block_ddl();
CREATE EVENT TRIGGER corpus_disabled_event_trigger ON sql_drop EXECUTE FUNCTION public.block_ddl();
ALTER EVENT TRIGGER corpus_disabled_event_trigger DISABLE;
COMMENT ON EVENT TRIGGER "corpus event trigger" IS 'an event trigger';

-- ---------------------------------------------------------------------------------------------
-- Views, materialized views
-- ---------------------------------------------------------------------------------------------
CREATE VIEW public.big_orders AS SELECT id, customer_id, amount FROM public.orders WHERE amount > 100
    WITH CASCADED CHECK OPTION;
CREATE VIEW public.local_check AS SELECT * FROM public.big_orders WHERE amount < 1000 WITH LOCAL CHECK OPTION;
CREATE RECURSIVE VIEW public.countdown (n) AS SELECT 10 UNION ALL SELECT n - 1 FROM countdown WHERE n > 1;
\if :corpus_pg15
CREATE VIEW public.security_barrier_view WITH (security_barrier = true, security_invoker = true) AS
    SELECT id, name FROM public.customers WHERE id % 2 = 0;
\else
CREATE VIEW public.security_barrier_view WITH (security_barrier = true) AS
    SELECT id, name FROM public.customers WHERE id % 2 = 0;
\endif
CREATE VIEW "Weird.Schema ""q"""."view.with ""dots""" AS SELECT "select", "ünïcødé 列" FROM "Weird.Schema ""q"""."table ""with"" quotes.and dots";
CREATE VIEW public.writable_view AS SELECT id, note FROM public.rule_target;
CREATE RULE writable_view_ins AS ON INSERT TO public.writable_view DO INSTEAD INSERT INTO public.rule_target VALUES (NEW.id, NEW.note);
ALTER VIEW public.big_orders ALTER COLUMN amount SET DEFAULT 101;
COMMENT ON VIEW public.countdown IS 'recursive view';
COMMENT ON COLUMN public.big_orders.amount IS 'view column comment';

CREATE MATERIALIZED VIEW public.customer_totals AS
    SELECT c.id, c.name::text AS name, count(o.*) AS n, sum(o.amount) AS total
    FROM public.customers c LEFT JOIN public.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE UNIQUE INDEX customer_totals_id ON public.customer_totals (id);
CREATE MATERIALIZED VIEW public.not_populated AS SELECT id, amount FROM public.orders WITH NO DATA;
CREATE MATERIALIZED VIEW "Weird.Schema ""q"""."mat view ""odd""" TABLESPACE pgsnap_corpus_space AS
    SELECT kind, count(*) AS n FROM public.events GROUP BY kind;
-- A matview over a matview: the dump must refresh them in dependency order.
CREATE MATERIALIZED VIEW public.totals_of_totals AS SELECT count(*) AS customers, sum(total) AS total FROM public.customer_totals;
COMMENT ON MATERIALIZED VIEW public.customer_totals IS 'populated matview';
COMMENT ON MATERIALIZED VIEW public.not_populated IS 'WITH NO DATA';

-- ---------------------------------------------------------------------------------------------
-- Statistics objects
-- ---------------------------------------------------------------------------------------------
CREATE STATISTICS public.orders_stats (ndistinct, dependencies, mcv) ON customer_id, placed FROM public.orders;
CREATE STATISTICS public.orders_expr_stats ON (amount * 2), (placed + 1) FROM public.orders;
ALTER STATISTICS public.orders_stats SET STATISTICS 200;
COMMENT ON STATISTICS public.orders_stats IS 'extended statistics';

-- ---------------------------------------------------------------------------------------------
-- Row-level security, privileges, default privileges
-- ---------------------------------------------------------------------------------------------
CREATE TABLE public.documents (id int PRIMARY KEY, owner_name name NOT NULL, body text, secret text);
INSERT INTO public.documents SELECT g, CASE WHEN g % 2 = 0 THEN 'pgsnap_corpus_reader' ELSE 'someone' END, 'body ' || g, 'secret ' || g
FROM generate_series(1, 30) g;
ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.documents FORCE ROW LEVEL SECURITY;
CREATE POLICY "own documents" ON public.documents FOR SELECT TO pgsnap_corpus_reader USING (owner_name = current_user);
CREATE POLICY writers ON public.documents AS RESTRICTIVE FOR UPDATE TO pgsnap_corpus_writer
    USING (true) WITH CHECK (length(body) < 1000);
COMMENT ON POLICY "own documents" ON public.documents IS 'a policy';

GRANT SELECT (id, owner_name, body), UPDATE (body) ON public.documents TO pgsnap_corpus_reader;
GRANT SELECT, INSERT, UPDATE ON public.documents TO pgsnap_corpus_writer WITH GRANT OPTION;
GRANT USAGE ON SCHEMA reporting TO pgsnap_corpus_reader;
GRANT ALL ON SCHEMA "Weird.Schema ""q""" TO "pgsnap corpus ""odd"" rôle";
GRANT SELECT ON ALL TABLES IN SCHEMA "Weird.Schema ""q""" TO "pgsnap corpus ""odd"" rôle";
GRANT USAGE, SELECT ON SEQUENCE public."odd ""seq""" TO pgsnap_corpus_writer;
GRANT USAGE ON TYPE public.mood TO pgsnap_corpus_reader;
REVOKE USAGE ON TYPE public.float_range FROM PUBLIC;
GRANT USAGE ON DOMAIN public.email TO pgsnap_corpus_writer;
GRANT USAGE ON FOREIGN DATA WRAPPER corpus_dummy_fdw TO pgsnap_corpus_owner;
GRANT CREATE ON TABLESPACE pgsnap_corpus_space TO pgsnap_corpus_owner;  -- a global: dumped by neither side
GRANT SELECT ON public.customer_totals TO pgsnap_corpus_reader;
GRANT pgsnap_corpus_reader TO pgsnap_corpus_writer;  -- a global as well

ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO pgsnap_corpus_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE pgsnap_corpus_owner IN SCHEMA "Weird.Schema ""q"""
    GRANT SELECT, UPDATE ON TABLES TO "pgsnap corpus ""odd"" rôle";
ALTER DEFAULT PRIVILEGES FOR ROLE pgsnap_corpus_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO pgsnap_corpus_writer;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO pgsnap_corpus_reader;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO pgsnap_corpus_reader;
CREATE TABLE reporting.daily (day date PRIMARY KEY, total numeric);  -- picks up the default privileges
INSERT INTO reporting.daily SELECT date '2024-01-01' + g, g * 10 FROM generate_series(0, 9) g;

-- ---------------------------------------------------------------------------------------------
-- Publications, subscription (never connects: connect = false, no slot)
-- ---------------------------------------------------------------------------------------------
\if :corpus_pg15
CREATE PUBLICATION "corpus pub" FOR TABLE public.orders (id, customer_id, amount) WHERE (amount > 10), public.customers
    WITH (publish = 'insert, update', publish_via_partition_root = true);
CREATE PUBLICATION corpus_schema_pub FOR TABLES IN SCHEMA reporting, "Weird.Schema ""q""";
\else
CREATE PUBLICATION "corpus pub" FOR TABLE public.orders, public.customers
    WITH (publish = 'insert, update', publish_via_partition_root = true);
CREATE PUBLICATION corpus_schema_pub FOR TABLE reporting.daily;
\endif
CREATE PUBLICATION corpus_all_pub FOR ALL TABLES WITH (publish = 'truncate');
ALTER PUBLICATION corpus_schema_pub ADD TABLE public.events;
COMMENT ON PUBLICATION "corpus pub" IS 'publication with column list and row filter';
CREATE SUBSCRIPTION corpus_sub CONNECTION 'host=127.0.0.1 port=1 dbname=pgsnap_corpus_nowhere'
    PUBLICATION "corpus pub" WITH (connect = false, enabled = false, slot_name = NONE, create_slot = false);
COMMENT ON SUBSCRIPTION corpus_sub IS 'never connected';

-- ---------------------------------------------------------------------------------------------
-- Large objects: owner, ACL, comment, binary content, an empty one
-- ---------------------------------------------------------------------------------------------
SELECT lo_from_bytea(424201, convert_to(repeat('pgsnap large object ', 2000), 'UTF8') || '\x00ff7f80'::bytea);
SELECT lo_from_bytea(424202, ''::bytea);
SELECT lo_from_bytea(424203, decode(repeat('deadbeef', 300), 'hex'));
ALTER LARGE OBJECT 424201 OWNER TO pgsnap_corpus_owner;
GRANT SELECT ON LARGE OBJECT 424201 TO pgsnap_corpus_reader;
GRANT SELECT, UPDATE ON LARGE OBJECT 424203 TO pgsnap_corpus_writer;
COMMENT ON LARGE OBJECT 424201 IS 'a large object with owner, ACL and comment';
CREATE TABLE public.attachments (id int PRIMARY KEY, blob oid NOT NULL);
INSERT INTO public.attachments VALUES (1, 424201), (2, 424202), (3, 424203);

-- ---------------------------------------------------------------------------------------------
-- More kinds: a procedural language, typed tables, domain over domain, arrays of user types,
-- unlogged sequence, NOT VALID / NO INHERIT constraints (with a row the NOT VALID FK rejects),
-- hash / spgist indexes, replica identity by index, attribute options, a foreign partition,
-- a 63-byte name, the public schema's own ACL and comment
-- ---------------------------------------------------------------------------------------------
-- The handlers are C functions of our own over plpgsql's library: pg_dump 15 writes a language
-- whose handler lives in pg_catalog as a bare "CREATE LANGUAGE name", which only works for
-- languages that are extensions.
CREATE FUNCTION public.corpus_call_handler() RETURNS language_handler LANGUAGE c AS '$libdir/plpgsql', 'plpgsql_call_handler';
CREATE FUNCTION public.corpus_inline_handler(internal) RETURNS void LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_inline_handler';
CREATE FUNCTION public.corpus_validator(oid) RETURNS void LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_validator';
CREATE TRUSTED LANGUAGE corpus_plpgsql HANDLER public.corpus_call_handler INLINE public.corpus_inline_handler
    VALIDATOR public.corpus_validator;
COMMENT ON LANGUAGE corpus_plpgsql IS 'a second procedural language';
CREATE FUNCTION public.in_corpus_language(i int) RETURNS int LANGUAGE corpus_plpgsql AS $$ BEGIN RETURN i * 2; END $$;
DO LANGUAGE corpus_plpgsql $$ BEGIN IF public.in_corpus_language(2) <> 4 THEN RAISE EXCEPTION 'language broken'; END IF; END $$;

CREATE TABLE public.points OF "Weird.Schema ""q"""."Point 3D" (x WITH OPTIONS NOT NULL, PRIMARY KEY (x));
INSERT INTO public.points SELECT g, g * 1.5, -g FROM generate_series(1, 10) g;
COMMENT ON COLUMN "Weird.Schema ""q"""."Point 3D"."z.axis" IS 'composite attribute comment';

CREATE DOMAIN public.small_positive AS positive_int CHECK (VALUE < 1000);
CREATE TABLE public.typed_arrays (
    id          int PRIMARY KEY,
    smalls      small_positive[],
    multis      float_multirange[],
    emails      email[],
    nested      int[][] ,
    postal      us_postal
);
INSERT INTO public.typed_arrays VALUES
    (1, '{1,2,999}', ARRAY[float_multirange(float_range(1, 2)), '{}'::float_multirange], '{a@b,C@D}', '{{1,2},{3,4}}', DEFAULT),
    (2, '{}', NULL, ARRAY[NULL::email], '{}', '12345');

\if :corpus_pg15
CREATE UNLOGGED SEQUENCE public.unlogged_seq;
\else
CREATE SEQUENCE public.unlogged_seq;
\endif
SELECT nextval('public.unlogged_seq') FROM generate_series(1, 3);

ALTER TABLE public.vehicles ADD CONSTRAINT wheels_small CHECK (wheels < 100) NO INHERIT;
ALTER TABLE public.audit_log ADD CONSTRAINT audit_op_nonempty CHECK (op <> '') NOT VALID;
CREATE TABLE public.order_notes (id int PRIMARY KEY, order_id bigint, body text);
INSERT INTO public.order_notes VALUES (1, 1, 'fine'), (2, 999999, 'orphan kept by a NOT VALID foreign key');
ALTER TABLE public.order_notes ADD CONSTRAINT order_notes_order_fk FOREIGN KEY (order_id) REFERENCES public.orders (id)
    MATCH FULL ON UPDATE RESTRICT NOT VALID;
ALTER TABLE public.rule_target ADD CONSTRAINT rule_target_uniq UNIQUE (id) DEFERRABLE INITIALLY IMMEDIATE;

CREATE INDEX customers_email_hash ON public.customers USING hash (email);
CREATE INDEX ranges_during_spgist ON public.ranges USING spgist (during);
ALTER INDEX public.orders_expr_idx ALTER COLUMN 1 SET STATISTICS 300;
ALTER TABLE public.session_cache REPLICA IDENTITY USING INDEX session_cache_pkey;
ALTER TABLE public.orders ALTER COLUMN placed SET (n_distinct = 700);

CREATE TABLE public.measurements (city int, logdate date NOT NULL) PARTITION BY RANGE (logdate);
CREATE TABLE public.measurements_local PARTITION OF public.measurements FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
CREATE FOREIGN TABLE public.measurements_remote PARTITION OF public.measurements
    FOR VALUES FROM ('1990-01-01') TO ('2000-01-01') SERVER "remote server" OPTIONS (table_name 'measurements');
INSERT INTO public.measurements_local VALUES (1, '2020-02-02'), (2, '2021-03-03');
COMMENT ON COLUMN public.measurements_remote.city IS 'foreign table column comment';

CREATE TABLE public.a_name_of_exactly_sixty_three_bytes_xxxxxxxxxxxxxxxxxxxxxxxxxxx (
    a_column_name_of_exactly_sixty_three_bytes_yyyyyyyyyyyyyyyyyyyy int);
INSERT INTO public.a_name_of_exactly_sixty_three_bytes_xxxxxxxxxxxxxxxxxxxxxxxxxxx VALUES (63);

COMMENT ON SCHEMA public IS 'public, with a changed comment';
GRANT CREATE ON SCHEMA public TO pgsnap_corpus_writer;

-- ---------------------------------------------------------------------------------------------
-- golang-migrate's schema_migrations
-- ---------------------------------------------------------------------------------------------
CREATE TABLE public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO public.schema_migrations VALUES (20240517093000, false);

-- ---------------------------------------------------------------------------------------------
-- Comments on the remaining kinds
-- ---------------------------------------------------------------------------------------------
COMMENT ON COLUMN public.customers.uid IS 'uuid v5 (deterministic)';
COMMENT ON INDEX public.customer_totals_id IS 'index on a matview';
COMMENT ON CONSTRAINT no_double_booking ON public.ranges IS 'exclusion constraint';
COMMENT ON CONSTRAINT orders_customer_fk ON public.orders IS 'deferrable FK';
COMMENT ON SCHEMA "select" IS 'reserved word';
COMMENT ON FUNCTION "Weird.Schema ""q"""."fn with ""quotes""."(text, text[]) IS 'variadic, security definer';
COMMENT ON ROLE pgsnap_corpus_reader IS 'a global: neither pg_dump nor pgsnap carries it per database';

-- Keep pg_class.reltuples etc. out of it: they are not dumped. Nothing else to do.
