# Shared by scripts/test, scripts/demo and bench/: install what is missing, find Python with moto, build.
# shellcheck shell=bash

SITESYNC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the build, the tests and the demo need.
SITESYNC_PACKAGES=(
  build-essential cmake pkg-config
  libcurl4-openssl-dev libssl-dev zlib1g-dev libxml2-dev libyaml-cpp-dev
  libbrotli-dev  # compress: br bodies (libbrotlienc; the tests decode with libbrotlidec)
  inotify-tools  # inotifywait: the peer baseline of bench/watch_bench.py (the watcher uses the kernel API)
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev googletest
  libsqlite3-dev  # the local record (sync/sqlite_record.cc)
  libdeflate-dev  # CRC-32 for x-amz-checksum-crc32 (aws/hash.cc): zlib's has no carry-less multiply
  awscli
  nodejs time  # bench/scale.py --check (ctest bench.scale_memory)
  man-db groff-base zsh  # the man page renders without warnings; the zsh completion is tried in a real zsh
  jekyll  # a real generator's rebuild under watch (tests/integration/test_generators.py; Eleventy comes from npm)
  radosgw ceph-mon ceph-osd ceph-mgr  # a single-host Ceph cluster, the second S3 server (tests/integration/rgw.py)
)

log() { printf '==> %s\n' "$*" >&2; }

ensure_packages() {
  local missing=() pkg
  for pkg in "${SITESYNC_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints the first python3 that can import moto and boto3 (the machine's Python has moto 5 preinstalled).
find_python_with_moto() {
  local py
  for py in "${SITESYNC_PYTHON:-}" python3 "$HOME/.pyenv/shims/python3" /root/.pyenv/shims/python3 \
            /root/.pyenv/versions/*/bin/python3 /usr/local/bin/python3 /usr/bin/python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import moto, boto3' >/dev/null 2>&1; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

# build DIR [cmake args...]: configure and build with all cores.
build() {
  local dir="$1"
  shift
  cmake -S "$SITESYNC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
