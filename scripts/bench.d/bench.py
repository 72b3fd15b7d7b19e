#!/usr/bin/env python3
"""The body of scripts/bench: dataset, measurements, table, goals. Python 3 stdlib only.

Run through scripts/bench, which builds pgsnap, starts a throwaway server and exports
PGHOST/PGPORT/PGUSER. Every measured command runs in a fresh measure.py process, so the
peak RSS reported for it is its own. Commands are argv lists, never shell strings.

Exit status: 0 all goals met, 1 a goal missed, 3 the benchmark itself failed.
"""
import argparse
import datetime
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MEASURE = os.path.join(HERE, "measure.py")
# Same binaries as pgsnap uses (scripts/bench sets both to the server's major); /usr/bin/pg_dump
# is Debian's perl pg_wrapper, which would add its start-up to the baseline.
PGBIN = os.environ.get("PGSNAP_BENCH_PGBIN") or "/usr/lib/postgresql/15/bin"
PG_DUMP = os.path.join(PGBIN, "pg_dump")
PSQL = os.path.join(PGBIN, "psql")

# The goals of the "speed and footprint" issue; every ratio is of medians measured in this run.
GOAL_BACKUP_GZIP_RATIO = 0.70      # pgsnap backup / (pg_dump | gzip -6)
GOAL_BACKUP_SIZE_RATIO = 1.02      # pgsnap .sql.gz size / gzip -6 size ("within 2%"; smaller is fine)
GOAL_BACKUP_PIGZ_RATIO = 1.00      # pgsnap backup / (pg_dump | pigz -6)
GOAL_BACKUP_ZSTD_RATIO = 1.30      # pgsnap backup --compress zstd / (pg_dump -Fp > /dev/null)
GOAL_VERIFY_RATIO = 0.60           # pgsnap verify / (gzip -t; sha256sum)
GOAL_RESTORE_RATIO = 1.05          # pgsnap restore / (gzip -dc | psql -1), into an empty database
GOAL_ENCRYPT_RATIO = 1.05          # pgsnap backup --encrypt-to / pgsnap backup (age on the other core)
GOAL_DECRYPT_RATIO = 1.05          # pgsnap restore of an encrypted snapshot / of a plain one
GOAL_RSS_MIB = 64                  # every pgsnap command measured
GOAL_PRUNE_SECONDS = 1.0           # prune --dry-run over PRUNE_SNAPSHOTS snapshots (absolute)
GOAL_DIR_BACKUP_RATIO = 1.10       # backup --format directory --jobs 2 / pg_dump -Fd -j 2
GOAL_DIR_RESTORE_RATIO = 1.10      # restore of it --jobs 2 / pg_restore -j 2 into an empty database
GOAL_DIR_VS_PLAIN_RATIO = 0.75     # restore of it --jobs 2 / (gzip -dc | psql -1): the 3 a.m. figure
DIR_JOBS = 2
PG_RESTORE = os.path.join(PGBIN, "pg_restore")
PRUNE_SNAPSHOTS = 10_000
CALIBRATION_ROWS = 20_000
CHUNK_ROWS = 250_000


class BenchError(Exception):
    pass


class Terminated(Exception):
    pass


def info(msg=""):
    print(msg, file=sys.stderr, flush=True)


def out(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------- running things

_current = {"proc": None}


def run(argv, *, stdout=subprocess.DEVNULL, what=None, check=True, input_text=None):
    """Runs an unmeasured helper command; returns its stdout (text) when stdout is PIPE."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                         stdout=stdout, stderr=subprocess.PIPE, text=True)
    _current["proc"] = p
    try:
        o, e = p.communicate(input_text)
    finally:
        _current["proc"] = None
    if check and p.returncode != 0:
        raise BenchError(f"{what or argv[0]} failed (exit {p.returncode}): {e.strip()[-2000:]}")
    return o


def psql(db, *args, capture=False, what=None):
    argv = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, *args]
    return run(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, what=what or f"psql {args}")


def scalar(db, sql):
    return psql(db, "-At", "-c", sql, capture=True).strip()


def count_stdout_bytes(argv, what):
    """Bytes a command writes to stdout (read and discarded here)."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _current["proc"] = p
    n = 0
    try:
        while True:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            n += len(b)
        err = p.stderr.read()
        p.wait()
    finally:
        _current["proc"] = None
    if p.returncode != 0:
        raise BenchError(f"{what} failed (exit {p.returncode}): {err.decode(errors='replace').strip()[-2000:]}")
    return n


def measure(steps, label):
    """One measured run in a fresh measure.py process; returns its report."""
    os.sync()  # earlier runs' dirty pages are not this run's cost
    p = subprocess.Popen([sys.executable, MEASURE, json.dumps({"steps": steps})],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    _current["proc"] = p
    try:
        o, _ = p.communicate()
    finally:
        _current["proc"] = None
    if p.returncode != 0:
        raise BenchError(f"{label}: measure.py exited {p.returncode}")
    r = json.loads(o)
    if any(rc != 0 for rcs in r["rcs"] for rc in rcs):
        raise BenchError(f"{label} failed, exit statuses {r['rcs']}:\n{(r.get('stderr_tail') or '').strip()}")
    r["label"] = label
    return r


def step(*pipeline, stdin=None, stdout=None):
    return {"pipeline": [list(c) for c in pipeline], "stdin": stdin, "stdout": stdout}


# ---------------------------------------------------------------- formatting

def mib(n):
    return n / (1 << 20)


def fmt_bytes(n):
    return f"{n / 1e6:,.1f} MB"


def fmt_s(x):
    return "-" if x is None else f"{x:.2f}"


def median(xs):
    return statistics.median(xs) if xs else None


def rss_mib(reports):
    """(max ru_maxrss, max own VmHWM) over runs, MiB."""
    tree = max(r["maxrss_kib"] for r in reports) / 1024
    owns = [r["own_hwm_kib"] for r in reports if r.get("own_hwm_kib")]
    return tree, (max(owns) / 1024 if owns else None)


def fmt_rss(reports):
    if not reports:
        return "-"
    tree, own = rss_mib(reports)
    return f"{tree:.1f}" + (f" ({own:.1f})" if own is not None else "")


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.ljust(widths[i]) if i in (0, len(r) - 1) else c.rjust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- machine and dataset

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_facts(pgsnap, built_from):
    facts = []
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    facts.append(f"nproc: {len(os.sched_getaffinity(0))} ({model}), memory {mem}, kernel {os.uname().release}")
    facts.append(run([PG_DUMP, "--version"], stdout=subprocess.PIPE).strip())
    facts.append("server: PostgreSQL " + scalar("postgres", "SHOW server_version") + "; " + scalar(
        "postgres", "SELECT string_agg(name || ' ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings "
                    "WHERE name IN ('data_checksums', 'max_wal_size', 'shared_buffers', 'wal_level')"))
    facts.append(run(["gzip", "--version"], stdout=subprocess.PIPE).splitlines()[0].strip()
                 + "; " + (run(["pigz", "--version"], stdout=subprocess.PIPE) or "").strip()
                 + "; python " + sys.version.split()[0])
    facts.append("load average at start: " + loadavg() + " (other work on the machine skews the timings)")
    facts.append(f"pgsnap {run([pgsnap, '--version'], stdout=subprocess.PIPE).strip()}, release build of {built_from}")
    return facts


def generate(db, size_mb):
    """Creates and fills `db`; returns (rows, plain dump bytes)."""
    target = size_mb * 1_000_000
    t0 = time.monotonic()
    info(f"bench: generating database {db}, target ~{size_mb} MB of plain pg_dump output")
    psql("postgres", "-c", f"CREATE DATABASE {db}")
    psql(db, "-c", "SELECT setseed(0.2024)", "-f", os.path.join(HERE, "schema.sql"), what="schema.sql")
    rows_sql = os.path.join(HERE, "rows.sql")

    def insert(lo, hi, chunk):
        # setseed per chunk, in the session that inserts: the content depends only on (lo, hi).
        seed = ((chunk * 7919) % 10007) / 10007.0
        psql(db, "-v", f"lo={lo}", "-v", f"hi={hi}", "-c", f"SELECT setseed({seed})", "-f", rows_sql,
             what=f"rows.sql {lo}..{hi}")

    cal = CALIBRATION_ROWS
    insert(1, cal, 0)
    dump_now = count_stdout_bytes([PG_DUMP, "-d", db], "pg_dump (calibration)")
    copy_bytes = count_stdout_bytes([PSQL, "-X", "-d", db, "-c", "COPY generated_domains TO STDOUT"], "COPY (calibration)")
    per_row = copy_bytes / cal
    fixed = dump_now - copy_bytes
    total = max(cal, int((target - fixed) / per_row))
    info(f"bench: {per_row:.0f} bytes per generated_domains row in the dump; generating {total:,} rows")
    chunk = 1
    for lo in range(cal + 1, total + 1, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS - 1, total)
        insert(lo, hi, chunk)
        chunk += 1
        info(f"bench:   {hi:,} / {total:,} rows ({time.monotonic() - t0:.0f} s)")
    psql(db, "-f", os.path.join(HERE, "indexes.sql"), what="indexes.sql")
    # Set hint bits and the visibility map now, so no measured run pays for them.
    psql(db, "-c", "VACUUM (FREEZE, ANALYZE)")
    psql(db, "-c", "CHECKPOINT")
    plain = count_stdout_bytes([PG_DUMP, "-d", db], "pg_dump (size)")
    db_size = int(scalar(db, "SELECT pg_database_size(current_database())"))
    info(f"bench: dataset ready in {time.monotonic() - t0:.0f} s")
    return total, plain, db_size


# ---------------------------------------------------------------- prune fixture

def tiny_dump(table_names):
    parts = ["--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15\n\n"]
    for t in table_names:
        short = t.split(".")[-1]
        parts.append(f"--\n-- Data for Name: {short}; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
                     f"COPY {t} (id) FROM stdin;\n\\.\n\n\n")
    parts.append("--\n-- PostgreSQL database dump complete\n--\n\n")
    return "".join(parts).encode()


def make_prune_fixture(path, template, count):
    """`count` snapshots, one an hour back from now: valid manifests, tiny valid gzip dumps."""
    os.makedirs(path, mode=0o700)
    text = tiny_dump(sorted(template.get("table_rows", {})))
    gz = gzip.compress(text, compresslevel=6, mtime=0)
    sha = hashlib.sha256(gz).hexdigest()
    db = template["database"]
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for i in range(count):
        created = now - datetime.timedelta(hours=i + 1, seconds=(i * 37) % 600)
        sid = f"{db}_{created:%Y%m%dT%H%M%SZ}"
        m = dict(template)
        m.pop("restore_test", None)
        m.update({
            "id": sid,
            "file": sid + ".sql.gz",
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(i * 7) % 1000:03d}Z",
            "compressed_bytes": len(gz),
            "uncompressed_bytes": len(text),
            "sha256": sha,
            "table_rows": {t: 0 for t in template.get("table_rows", {})},
            "duration_seconds": 0.05,
        })
        for name, data in ((sid + ".sql.gz", gz),
                           (sid + ".manifest.json", (json.dumps(m, indent=2, sort_keys=True) + "\n").encode())):
            fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)


# ---------------------------------------------------------------- the benchmark

def rotate(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench.d/bench.py")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--size-mb", type=int, required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--db", default="benchdb")
    ap.add_argument("--built-from", default="?")
    a = ap.parse_args()
    pgsnap, work, db, runs = a.bin, a.work, a.db, a.runs

    out("pgsnap benchmark")
    for line in machine_facts(pgsnap, a.built_from):
        out("  " + line)
    out(f"  size: --size-mb {a.size_mb}, --runs {runs}; pgsnap peak RSS = max ru_maxrss of RUSAGE_CHILDREN "
        "(pgsnap and what it waited for), in () pgsnap's own VmHWM sampled every 20 ms")

    # Roughly: the database twice (restore makes a copy while it exists), six compressed files, WAL.
    need = a.size_mb * 1_000_000 * 5
    free = shutil.disk_usage(work).free
    if free < need:
        info(f"bench: WARNING: {fmt_bytes(free)} free where {work} is, this size may need ~{fmt_bytes(need)}")
    rows, plain, db_size = generate(db, a.size_mb)
    out(f"  dataset: {rows:,} generated_domains rows + 200 campaigns; database {fmt_bytes(db_size)}; "
        f"plain pg_dump output {fmt_bytes(plain)} ({mib(plain):,.1f} MiB)")

    snapdir = os.path.join(work, "snapshots")
    snapdir_zstd = os.path.join(work, "snapshots-zstd")  # apart: verify/restore/prune use the gzip ones
    base_gz = os.path.join(work, "baseline.sql.gz")
    base_pigz = os.path.join(work, "baseline-pigz.sql.gz")
    base_zst = os.path.join(work, "baseline.sql.zst")
    snapdir_age = os.path.join(work, "snapshots-age")    # apart as well: backup --encrypt-to
    R = {k: [] for k in ("backup", "backup_zstd", "gzip", "pigz", "producer", "zstd", "verify", "verify_base",
                         "restore", "restore_base", "prune", "backup_age", "restore_age",
                         "dir_backup", "dir_dump", "dir_restore", "dir_restore_base")}
    snapdir_dir = os.path.join(work, "snapshots-dir")  # backup --format directory
    base_dir = os.path.join(work, "baseline-dir")      # pg_dump -Fd -j 2
    latest_dir = {"id": None}
    manifests_dir = []
    manifests_age = []   # pgsnap backup --encrypt-to, one per run
    # A key made for this run: the public half to encrypt to, the identity (0600) to restore with.
    age_identity = os.path.join(work, "bench-age-key.txt")
    run(["age-keygen", "-o", age_identity], what="age-keygen")
    os.chmod(age_identity, 0o600)
    age_recipient = (run(["age-keygen", "-y", age_identity], stdout=subprocess.PIPE, what="age-keygen -y") or "").strip()
    if not age_recipient.startswith("age1"):
        raise BenchError(f"age-keygen -y printed {age_recipient!r}, not a public key")
    manifests = []       # pgsnap backup (gzip), one per run
    manifests_zstd = []  # pgsnap backup --compress zstd, one per run

    # ---- 1-3: backup (gzip and zstd), pg_dump | gzip -6, pg_dump | pigz -6, pg_dump > /dev/null,
    #      pg_dump | zstd -3 -T0
    latest = {"id": None}        # newest gzip snapshot: verify and restore use it
    latest_zstd = {"id": None}
    latest_age = {"id": None}

    def backup(key, extra, directory, newest, into, algorithm, label):
        r = measure([step([pgsnap, "backup", "--dir", directory, "-d", db, *extra], stdout="capture")], label)
        sid = (r["stdout"] or "").strip().splitlines()[-1:] or [""]
        sid = sid[0].strip()
        mpath = os.path.join(directory, sid + ".manifest.json")
        if not sid or not os.path.isfile(mpath):
            raise BenchError(f"{label} printed {r['stdout']!r}, not a snapshot id with a manifest in {directory}")
        with open(mpath) as f:
            m = json.load(f)
        got = (m.get("compression") or {}).get("algorithm")
        if got != algorithm:
            raise BenchError(f"{label}: snapshot {sid} is compressed with {got!r}, expected {algorithm!r}")
        if ("--encrypt-to" in extra) != bool(m.get("encryption")):
            raise BenchError(f"{label}: snapshot {sid} has encryption {m.get('encryption')!r}, expected it {'on' if extra else 'off'}")
        into.append(m)
        if newest["id"]:  # keep only the newest snapshot (outside the timed region)
            old = os.path.join(directory, newest["id"] + ".manifest.json")
            with open(old) as f:
                old_file = json.load(f)["file"]
            os.unlink(os.path.join(directory, old_file))
            os.unlink(old)
        newest["id"] = sid
        R[key].append(r)
        return r

    def do_backup(i):
        return backup("backup", [], snapdir, latest, manifests, "gzip", "pgsnap backup")

    def do_backup_zstd(i):
        return backup("backup_zstd", ["--compress", "zstd"], snapdir_zstd, latest_zstd, manifests_zstd, "zstd",
                      "pgsnap backup --compress zstd")

    def do_backup_age(i):
        return backup("backup_age", ["--encrypt-to", age_recipient], snapdir_age, latest_age, manifests_age, "gzip",
                      "pgsnap backup --encrypt-to")

    def do_dir_backup(i):
        r = measure([step([pgsnap, "backup", "--dir", snapdir_dir, "-d", db, "--format", "directory", "--jobs", str(DIR_JOBS)],
                          stdout="capture")], "pgsnap backup --format directory")
        sid = ((r["stdout"] or "").strip().splitlines()[-1:] or [""])[0].strip()
        mpath = os.path.join(snapdir_dir, sid + ".manifest.json")
        if not sid or not os.path.isfile(mpath):
            raise BenchError(f"pgsnap backup --format directory printed {r['stdout']!r}, not a snapshot id")
        with open(mpath) as f:
            m = json.load(f)
        if m.get("dump_format") != "directory":
            raise BenchError(f"snapshot {sid} has dump_format {m.get('dump_format')!r}")
        manifests_dir.append(m)
        if latest_dir["id"]:  # keep only the newest (outside the timed region)
            shutil.rmtree(os.path.join(snapdir_dir, latest_dir["id"] + ".dir"))
            os.unlink(os.path.join(snapdir_dir, latest_dir["id"] + ".manifest.json"))
        latest_dir["id"] = sid
        R["dir_backup"].append(r)
        return r

    def do_dir_dump(i):
        shutil.rmtree(base_dir, ignore_errors=True)
        # pg_dump fsyncs its output by default, as pgsnap does.
        R["dir_dump"].append(measure([step([PG_DUMP, "-Fd", "-j", str(DIR_JOBS), "-f", base_dir, "-d", db])],
                                     f"pg_dump -Fd -j {DIR_JOBS}"))
        return R["dir_dump"][-1]

    def do_gzip(i):
        R["gzip"].append(measure([step([PG_DUMP, "-d", db], ["gzip", "-6"], stdout=base_gz)], "pg_dump | gzip -6"))
        return R["gzip"][-1]

    def do_pigz(i):
        R["pigz"].append(measure([step([PG_DUMP, "-d", db], ["pigz", "-6"], stdout=base_pigz)], "pg_dump | pigz -6"))
        return R["pigz"][-1]

    def do_producer(i):
        R["producer"].append(measure([step([PG_DUMP, "-Fp", "-d", db], stdout="/dev/null")], "pg_dump -Fp > /dev/null"))
        return R["producer"][-1]

    def do_zstd(i):
        R["zstd"].append(measure([step([PG_DUMP, "-d", db], ["zstd", "-3", "-T0"], stdout=base_zst)],
                                 "pg_dump | zstd -3 -T0"))
        return R["zstd"][-1]

    def do_verify(i):
        R["verify"].append(measure([step([pgsnap, "verify", latest["id"], "--dir", snapdir])], "pgsnap verify"))
        return R["verify"][-1]

    def do_verify_base(i):
        R["verify_base"].append(measure([step(["gzip", "-t", base_gz]), step(["sha256sum", base_gz], stdout="capture")],
                                        "gzip -t + sha256sum"))
        return R["verify_base"][-1]

    def count_rows(dbname):
        return int(scalar(dbname, "SELECT count(*) FROM generated_domains"))

    def do_restore(i):
        target = f"benchcopy_{i + 1}"
        psql("postgres", "-c", "CHECKPOINT")
        r = measure([step([pgsnap, "restore", latest["id"], "--target", target, "--yes", "--dir", snapdir])],
                    "pgsnap restore")
        got = count_rows(target)
        psql("postgres", "-c", f"DROP DATABASE {target}")
        if got != rows:
            raise BenchError(f"pgsnap restore: {target} has {got} generated_domains rows, expected {rows}")
        R["restore"].append(r)
        return r

    def do_dir_restore(i):
        target = f"benchdir_{i + 1}"
        psql("postgres", "-c", "CHECKPOINT")
        r = measure([step([pgsnap, "restore", latest_dir["id"], "--target", target, "--yes", "--dir", snapdir_dir,
                           "--jobs", str(DIR_JOBS)])], "pgsnap restore (directory)")
        got = count_rows(target)
        psql("postgres", "-c", f"DROP DATABASE {target}")
        if got != rows:
            raise BenchError(f"pgsnap restore (directory): {target} has {got} generated_domains rows, expected {rows}")
        R["dir_restore"].append(r)
        return r

    def do_dir_restore_base(i):
        target = f"benchdirbase_{i + 1}"
        psql("postgres", "-c", f"CREATE DATABASE {target}")
        psql("postgres", "-c", "CHECKPOINT")
        r = measure([step([PG_RESTORE, "-j", str(DIR_JOBS), "--exit-on-error", "-d", target, base_dir])],
                    f"pg_restore -j {DIR_JOBS}")
        got = count_rows(target)
        psql("postgres", "-c", f"DROP DATABASE {target}")
        if got != rows:
            raise BenchError(f"baseline pg_restore: {target} has {got} generated_domains rows, expected {rows}")
        R["dir_restore_base"].append(r)
        return r

    def do_restore_age(i):
        target = f"benchage_{i + 1}"
        psql("postgres", "-c", "CHECKPOINT")
        r = measure([step([pgsnap, "restore", latest_age["id"], "--target", target, "--yes", "--dir", snapdir_age,
                           "--identity", age_identity])], "pgsnap restore (encrypted)")
        got = count_rows(target)
        psql("postgres", "-c", f"DROP DATABASE {target}")
        if got != rows:
            raise BenchError(f"pgsnap restore (encrypted): {target} has {got} generated_domains rows, expected {rows}")
        R["restore_age"].append(r)
        return r

    def do_restore_base(i):
        target = f"benchbase_{i + 1}"
        psql("postgres", "-c", f"CREATE DATABASE {target}")
        psql("postgres", "-c", "CHECKPOINT")
        r = measure([step(["gzip", "-dc", base_gz],
                          [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", target])],
                    "gzip -dc | psql")
        got = count_rows(target)
        psql("postgres", "-c", f"DROP DATABASE {target}")
        if got != rows:
            raise BenchError(f"baseline restore: {target} has {got} generated_domains rows, expected {rows}")
        R["restore_base"].append(r)
        return r

    def group(name, fns):
        info(f"bench: {name}: {runs} run(s) of {len(fns)} commands, order rotated each run")
        for i in range(runs):
            for fn in rotate(fns, i):
                r = fn(i)
                tree, own = r["maxrss_kib"] / 1024, (r["own_hwm_kib"] or 0) / 1024
                info(f"bench:   run {i + 1}: {r['label']:<30} {r['wall']:7.2f} s  rss {tree:6.1f} MiB (own {own:.1f})")

    os.makedirs(snapdir)
    os.makedirs(snapdir_zstd)
    os.makedirs(snapdir_age)
    os.makedirs(snapdir_dir)
    group("backup", [do_backup, do_gzip, do_backup_zstd, do_pigz, do_producer, do_zstd, do_backup_age,
                     do_dir_backup, do_dir_dump])
    gz_size, pigz_size, zst_size = os.path.getsize(base_gz), os.path.getsize(base_pigz), os.path.getsize(base_zst)
    snap_size = manifests[-1]["compressed_bytes"]
    snap_zst_size = manifests_zstd[-1]["compressed_bytes"]
    group("verify", [do_verify, do_verify_base])
    group("restore", [do_restore, do_restore_base, do_restore_age, do_dir_restore, do_dir_restore_base])

    # ---- 6: prune over 10,000 snapshots, if this pgsnap has prune
    help_text = run([pgsnap, "--help"], stdout=subprocess.PIPE, check=False) or ""
    has_prune = re.search(r"^\s+prune\b", help_text, re.M) is not None
    prune_note = None
    if has_prune:
        prune_dir = os.path.join(work, "prune")
        info(f"bench: prune: writing {PRUNE_SNAPSHOTS:,} snapshots (manifest + tiny dump) to {prune_dir}")
        make_prune_fixture(prune_dir, manifests[-1], PRUNE_SNAPSHOTS)
        def snapshot_files():  # dot files (the lock) are not snapshots
            return sorted(n for n in os.listdir(prune_dir) if not n.startswith("."))
        before = snapshot_files()

        def do_prune(i):
            R["prune"].append(measure([step([pgsnap, "prune", "--dry-run", "--dir", prune_dir], stdout="capture")],
                                      "pgsnap prune --dry-run"))
            return R["prune"][-1]
        group("prune", [do_prune])
        after = snapshot_files()
        if after != before:
            prune_note = (f"prune --dry-run changed the snapshot files: {len(before)} -> {len(after)} "
                          f"(gone: {sorted(set(before) - set(after))[:3]}, new: {sorted(set(after) - set(before))[:3]})")
    else:
        info("bench: prune: SKIPPED, 'pgsnap --help' lists no prune command")

    # ---- report
    def med(k):
        return median([r["wall"] for r in R[k]])

    def ratio(a, b):
        return a / b if a is not None and b else None

    b, g, p, prod = med("backup"), med("gzip"), med("pigz"), med("producer")
    bz, z = med("backup_zstd"), med("zstd")
    v, vb, rs, rsb = med("verify"), med("verify_base"), med("restore"), med("restore_base")
    ba, rsa = med("backup_age"), med("restore_age")
    age_size = manifests_age[-1]["compressed_bytes"]
    db_, dd = med("dir_backup"), med("dir_dump")
    dr, drb = med("dir_restore"), med("dir_restore_base")
    dir_size = manifests_dir[-1]["compressed_bytes"]
    dir_files = len(manifests_dir[-1].get("files") or [])
    rows_out = [["pair", "pgsnap s", "baseline s", "ratio", "pgsnap RSS MiB", "sizes"]]

    def row(name, a, bb, reports, sizes):
        rt = ratio(a, bb)
        rows_out.append([name, fmt_s(a), fmt_s(bb), "-" if rt is None else f"{rt:.2f}", fmt_rss(reports), sizes])

    row("1 backup vs pg_dump | gzip -6", b, g, R["backup"],
        f"pgsnap {fmt_bytes(snap_size)}, gzip {fmt_bytes(gz_size)} (pgsnap/gzip {snap_size / gz_size:.3f}; "
        f"plain/gzip {plain / gz_size:.2f}x)")
    row("2 backup vs pg_dump | pigz -6", b, p, R["backup"],
        f"pgsnap {fmt_bytes(snap_size)}, pigz {fmt_bytes(pigz_size)} (pgsnap/pigz {snap_size / pigz_size:.3f})")
    row("3 backup zstd vs pg_dump -Fp > /dev/null", bz, prod, R["backup_zstd"],
        f"plain {fmt_bytes(plain)} (producer alone)")
    row("3r backup zstd vs pg_dump | zstd -3 -T0", bz, z, R["backup_zstd"],
        f"pgsnap {fmt_bytes(snap_zst_size)}, zstd {fmt_bytes(zst_size)} (pgsnap/zstd {snap_zst_size / zst_size:.3f}; "
        f"plain/zstd {plain / zst_size:.2f}x)")
    row("4 verify vs gzip -t + sha256sum", v, vb, R["verify"], f"reads {fmt_bytes(snap_size)} / {fmt_bytes(gz_size)}")
    row("5 restore vs gzip -dc | psql -1", rs, rsb, R["restore"], f"{rows:,} rows + indexes")
    if has_prune:
        row(f"6 prune --dry-run, {PRUNE_SNAPSHOTS:,} snapshots", med("prune"), None, R["prune"],
            f"{2 * PRUNE_SNAPSHOTS:,} files")
    else:
        rows_out.append([f"6 prune --dry-run, {PRUNE_SNAPSHOTS:,} snapshots", "SKIP", "-", "-", "-",
                         "pgsnap has no prune command"])
    row("8 backup --encrypt-to vs backup", ba, b, R["backup_age"],
        f"encrypted {fmt_bytes(age_size)}, plain {fmt_bytes(snap_size)} (+{age_size - snap_size:,} bytes)")
    row("9 restore encrypted vs restore", rsa, rs, R["restore_age"], "age -d before gunzip, same checks")
    row(f"11 backup --format directory vs pg_dump -Fd -j {DIR_JOBS}", db_, dd, R["dir_backup"],
        f"{fmt_bytes(dir_size)} in {dir_files} files; read back, gunzipped, counted, fsynced")
    row(f"12 restore directory vs pg_restore -j {DIR_JOBS}", dr, drb, R["dir_restore"], "+ SHA-256 first, row counts, swap")
    row("13 restore directory vs gzip -dc | psql -1", dr, rsb, R["dir_restore"], "the 3 a.m. figure")
    out()
    out(table(rows_out))

    out()
    out("samples (s), in run order:")
    for k, name in (("backup", "pgsnap backup"), ("gzip", "pg_dump | gzip -6"), ("pigz", "pg_dump | pigz -6"),
                    ("backup_zstd", "pgsnap backup zstd"), ("producer", "pg_dump > /dev/null"),
                    ("zstd", "pg_dump | zstd -3 -T0"), ("verify", "pgsnap verify"),
                    ("verify_base", "gzip -t + sha256sum"), ("restore", "pgsnap restore"),
                    ("restore_base", "gzip -dc | psql -1"), ("prune", "pgsnap prune --dry-run"),
                    ("backup_age", "pgsnap backup --encrypt"), ("restore_age", "pgsnap restore (age)"),
                    ("dir_backup", "pgsnap backup -Fd"), ("dir_dump", f"pg_dump -Fd -j {DIR_JOBS}"),
                    ("dir_restore", "pgsnap restore -Fd"), ("dir_restore_base", f"pg_restore -j {DIR_JOBS}")):
        if R[k]:
            cpu = median([r["cpu_user"] + r["cpu_sys"] for r in R[k]])
            out(f"  {name:<24} " + " ".join(f"{r['wall']:.2f}" for r in R[k])
                + f"   (median CPU of the process tree {cpu:.2f} s)")
    for name, ms in (("pgsnap backup", manifests), ("pgsnap backup --compress zstd", manifests_zstd)):
        t = [m.get("timings") or {} for m in ms]
        if ms and all(t):
            out(f"{name} manifest timings (median): "
                f"dump {median([x['dump_seconds'] for x in t]):.2f} s, "
                f"waiting for compressors {median([x['compress_wait_seconds'] for x in t]):.2f} s, "
                f"fsync {median([x['fsync_seconds'] for x in t]):.2f} s, "
                f"total {median([m['duration_seconds'] for m in ms]):.2f} s")
    if prune_note:
        out("NOTE: " + prune_note)

    # ---- goals: the "speed and footprint" issue, one line each; a goal not measured is missed
    goals = [["goal", "measured", "limit", "result"]]
    missed = []

    def goal(name, value, limit, fmt, unit="", strict=False, extra="", limit_fmt=None):
        ok = value is not None and (value < limit if strict else value <= limit)
        shown = "not measured" if value is None else f"{value:{fmt}}{unit}{extra}"
        goals.append([name, shown, f"{'<' if strict else '<='} {limit:{limit_fmt or fmt}}{unit}",
                      "met" if ok else "MISSED"])
        if not ok:
            missed.append(name)

    goal("1 backup / (pg_dump | gzip -6)", ratio(b, g), GOAL_BACKUP_GZIP_RATIO, ".2f")
    goal("1 backup size / gzip -6 size", ratio(snap_size, gz_size), GOAL_BACKUP_SIZE_RATIO, ".3f")
    goal("2 backup / (pg_dump | pigz -6)", ratio(b, p), GOAL_BACKUP_PIGZ_RATIO, ".2f")
    goal("3 backup zstd / (pg_dump -Fp > /dev/null)", ratio(bz, prod), GOAL_BACKUP_ZSTD_RATIO, ".2f")
    goal("4 verify / (gzip -t + sha256sum)", ratio(v, vb), GOAL_VERIFY_RATIO, ".2f")
    goal("5 restore / (gzip -dc | psql -1)", ratio(rs, rsb), GOAL_RESTORE_RATIO, ".2f")
    # Conservative: the larger of ru_maxrss of pgsnap's process tree (pgsnap's own peak, or a
    # child's, pg_dump or psql, if that is larger) and pgsnap's own VmHWM as sampled every 20 ms
    # (exact but for the last interval), shown in (). Both are the max over runs.
    for k, name in (("backup", "backup"), ("backup_zstd", "backup --compress zstd"), ("verify", "verify"),
                    ("restore", "restore"), ("prune", "prune --dry-run"), ("backup_age", "backup --encrypt-to"),
                    ("restore_age", "restore --identity"), ("dir_backup", "backup --format directory"),
                    ("dir_restore", "restore (directory)")):
        tree, own = rss_mib(R[k]) if R[k] else (None, None)
        peak = None if tree is None else max(tree, own or 0)
        goal(f"6 peak RSS, pgsnap {name}", peak, GOAL_RSS_MIB, ".1f", " MiB",
             extra=f" (own {own:.1f})" if own is not None else "", limit_fmt=".0f")
    goal(f"7 prune --dry-run, {PRUNE_SNAPSHOTS:,} snapshots", med("prune"), GOAL_PRUNE_SECONDS, ".2f", " s",
         strict=True, limit_fmt=".0f")
    goal("8 backup --encrypt-to / backup", ratio(ba, b), GOAL_ENCRYPT_RATIO, ".2f")
    goal("9 restore encrypted / restore", ratio(rsa, rs), GOAL_DECRYPT_RATIO, ".2f")
    goal(f"11 backup directory / pg_dump -Fd -j {DIR_JOBS}", ratio(db_, dd), GOAL_DIR_BACKUP_RATIO, ".2f")
    goal(f"12 restore directory / pg_restore -j {DIR_JOBS}", ratio(dr, drb), GOAL_DIR_RESTORE_RATIO, ".2f")
    goal("13 restore directory / (gzip -dc | psql -1)", ratio(dr, rsb), GOAL_DIR_VS_PLAIN_RATIO, ".2f")
    if prune_note:
        goals.append(["7 prune --dry-run leaves the snapshots alone", "changed", "unchanged", "MISSED"])
        missed.append("prune --dry-run changed the snapshot files")
    out()
    out('goals ("speed and footprint"; ratios of medians from this run):')
    out(table(goals))
    out(f"load average at end: {loadavg()}")
    out(f"result: {'all goals met' if not missed else f'{len(missed)} goal(s) missed'}")
    return 1 if missed else 0


def on_term(signum, _frame):
    raise Terminated(signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    # Started in the background by bash, we inherit SIGINT ignored: take it back, so that
    # Ctrl-C works and our children do not inherit "ignore".
    signal.signal(signal.SIGINT, on_term)
    status = 3
    try:
        status = main()
    except BenchError as e:
        info(f"bench: FAILED: {e}")
        status = 3
    except Terminated:
        info("bench: interrupted")
        status = 130
    finally:
        p = _current["proc"]
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(status)
