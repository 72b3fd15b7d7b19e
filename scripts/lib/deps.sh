# shellcheck shell=bash
# Sourced by scripts/test, demo and bench: makes sure the tools and headers
# pgsnap needs are present. Installing is the slow path, so we only touch apt
# when a check actually fails (CI machines may be fresh, dev machines usually
# already have everything).

PGSNAP_PGBIN=/usr/lib/postgresql/15/bin
PGSNAP_APT_PACKAGES=(postgresql-15 postgresql-client-15 libpq-dev zlib1g-dev
  pkg-config pigz zstd libzstd-dev libdeflate-dev libisal-dev age)

# Runs one installation step. With PGSNAP_STEP_LOG set (scripts/demo does), prints one line for
# the step and appends its output to that file instead of the terminal.
pgsnap_step() {
  local what=$1 status=0
  shift
  if [[ -z ${PGSNAP_STEP_LOG:-} ]]; then
    "$@" </dev/null
    return
  fi
  printf 'pgsnap: %s ... ' "$what" >&2
  "$@" </dev/null >>"$PGSNAP_STEP_LOG" 2>&1 || status=$?
  if [[ $status -eq 0 ]]; then
    echo "done" >&2
  else
    echo "FAILED (exit $status); the last lines of $PGSNAP_STEP_LOG:" >&2
    tail -n 15 "$PGSNAP_STEP_LOG" >&2
  fi
  return "$status"
}

# Prints what is missing, one indented item a line; nothing when all is there.
pgsnap_missing_deps() {
  local b
  for b in initdb pg_ctl postgres pg_dump psql; do
    [[ -x "$PGSNAP_PGBIN/$b" ]] || echo "  $PGSNAP_PGBIN/$b"
  done
  # The Swift C shims link against these; headers come with the -dev packages.
  if ! command -v pkg-config >/dev/null 2>&1; then
    echo "  pkg-config"
  elif ! pkg-config --exists libpq zlib libzstd libdeflate libisal; then
    echo "  pkg-config --exists libpq zlib libzstd libdeflate libisal"
  fi
  command -v pigz >/dev/null 2>&1 || echo "  pigz"
  command -v zstd >/dev/null 2>&1 || echo "  zstd"
  # Encryption at rest (backup --encrypt-to) and its tests; age-keygen comes in the same package.
  command -v age >/dev/null 2>&1 || echo "  age"
  command -v age-keygen >/dev/null 2>&1 || echo "  age-keygen"
}

# The offsite tests need a real S3 API server (moto_server, PyPI moto[server]) and the signer
# test needs botocore (a moto dependency). Quick when present: one python3 import.
pgsnap_ensure_python_deps() {
  if ! command -v python3 >/dev/null 2>&1; then
    echo "pgsnap: python3 not found; installing via apt" >&2
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends python3 python3-pip python3-venv </dev/null || return 1
  fi
  if ! python3 -c 'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ("moto", "flask", "boto3", "botocore")))' \
    >/dev/null 2>&1; then
    echo "pgsnap: installing moto[server] from PyPI (S3 test server)" >&2
    python3 -m pip install --quiet 'moto[server]>=5,<6' ||
      python3 -m pip install --quiet --break-system-packages 'moto[server]>=5,<6' || return 1
  fi
}

pgsnap_ensure_deps() {
  local missing
  missing=$(pgsnap_missing_deps)
  if [[ -n "$missing" ]]; then
    # shellcheck disable=SC2086  # word splitting on purpose: the list on one line
    echo "pgsnap: missing $(echo $missing), installing them with apt-get" >&2
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
      if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
      else
        echo "pgsnap: not root and no sudo; install: ${PGSNAP_APT_PACKAGES[*]}" >&2
        return 1
      fi
    fi
    # Through env so it also survives sudo's environment reset.
    pgsnap_step "apt-get update" "${sudo[@]}" apt-get update
    pgsnap_step "installing ${PGSNAP_APT_PACKAGES[*]}" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${PGSNAP_APT_PACKAGES[@]}"
    missing=$(pgsnap_missing_deps)
    if [[ -n "$missing" ]]; then
      echo "pgsnap: still missing after apt-get install:" >&2
      echo "$missing" >&2
      return 1
    fi
  fi

  pgsnap_ensure_python_deps || return 1

  # The Swift toolchain is not a Debian package here; it lives in /opt/swift.
  if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
    PATH="$PATH:/opt/swift/usr/bin"
  fi
  if ! command -v swift >/dev/null 2>&1; then
    echo "pgsnap: swift not found on PATH (nor in /opt/swift/usr/bin)" >&2
    return 1
  fi

  # Appended, not prepended: an explicitly chosen PATH entry still wins, but
  # psql/pg_dump etc. are found even though Debian only links a few into /usr/bin.
  case ":$PATH:" in
    *":$PGSNAP_PGBIN:"*) ;;
    *) PATH="$PATH:$PGSNAP_PGBIN" ;;
  esac
  export PATH
}

# What scripts/package and scripts/test-package need beyond the build: dpkg-shlibdeps (dpkg-dev),
# strip (binutils), lintian, man, systemd-analyze (systemd), adduser (the package's postinst),
# libcurl.so for linking the static FoundationNetworking (libcurl4-openssl-dev).
PGSNAP_PACKAGE_APT_PACKAGES=(dpkg-dev binutils lintian man-db systemd adduser libcurl4-openssl-dev)

pgsnap_ensure_package_deps() {
  local missing=() b
  for b in dpkg-deb dpkg-shlibdeps strip lintian man systemd-analyze adduser unshare; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  # The static binary links FoundationNetworking, which needs libcurl.so.
  pkg-config --exists libcurl 2>/dev/null || missing+=(libcurl4-openssl-dev)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "pgsnap: missing packaging tools (${missing[*]}), installing via apt" >&2
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  pgsnap_step "apt-get update" "${sudo[@]}" apt-get update
  pgsnap_step "installing ${PGSNAP_PACKAGE_APT_PACKAGES[*]}" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${PGSNAP_PACKAGE_APT_PACKAGES[@]}"
}
