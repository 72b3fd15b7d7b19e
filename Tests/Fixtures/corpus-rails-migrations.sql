-- A Rails / dbmate-shaped database: schema_migrations(version varchar PRIMARY KEY), one row per
-- applied migration, no dirty column (Rails adds ar_internal_metadata beside it).
--
-- The versions mix Rails' old sequential numbers with timestamps (what an app that started
-- before Rails 2.1 carries): the newest by number (20240301090000) is not the newest by text
-- ('9'), so a manifest that records max(version) as text is caught.
\set ON_ERROR_STOP 1
CREATE TABLE public.schema_migrations (version character varying NOT NULL PRIMARY KEY);
CREATE TABLE public.ar_internal_metadata (
    key character varying NOT NULL PRIMARY KEY,
    value character varying,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
INSERT INTO public.schema_migrations (version) VALUES
    ('1'), ('2'), ('9'), ('10'), ('20231115000000'), ('20240301090000'), ('20240115120000');
INSERT INTO public.ar_internal_metadata VALUES
    ('environment', 'production', '2023-11-15 00:00:00', '2023-11-15 00:00:00');
CREATE TABLE public.users (id bigserial PRIMARY KEY, email character varying NOT NULL,
                           created_at timestamp(6) without time zone NOT NULL);
CREATE UNIQUE INDEX index_users_on_email ON public.users (email);
INSERT INTO public.users (email, created_at)
SELECT 'user' || g || '@example.org', timestamp '2024-01-01 00:00:00' + g * interval '1 minute' FROM generate_series(1, 25) g;
CREATE MATERIALIZED VIEW public.user_counts AS SELECT date_trunc('hour', created_at) AS hour, count(*) AS n FROM public.users GROUP BY 1;
