#!/usr/bin/env bash
# Builds the real blackbox_exporter the bench's `scale` suite compares the exporter with
# (bench/scale.ts: CPU per probe, RSS, same URLs at the same rate), from the Go module proxy only,
# into a cache outside the checkout. The bench takes blackbox_exporter from PATH first (Debian's
# prometheus-blackbox-exporter 0.23.0 is the same version), then from this cache.
# Idempotent: a finished cache exits at once.
#
# `go install github.com/prometheus/blackbox_exporter@v0.23.0` is refused here: go install checks
# the module for a deprecation notice, which needs the version list (`@v/list`), and the proxy this
# machine reaches answers 403 for it; the module zip itself is served. So the build goes through a
# scratch module that requires blackbox_exporter at that version (`go get`), then `go build`s its
# main package. blackbox_exporter's go.mod has no replace directives, so its own pins are used.
#
#   test/real-server/build-blackbox-exporter.sh     # last line: BLACKBOX_EXPORTER=<binary>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/
#   blackbox_exporter-0.23.0/bin/blackbox_exporter
#   blackbox_exporter-0.23.0/wrap/     the scratch module (go.mod, go.sum, tools.go)
#   blackbox_exporter-0.23.0/ready     written last: what readers trust
#   go/mod  go/build                   GOMODCACHE and GOCACHE, shared with the other builds
# Cold (measured with Go 1.26.8 on 2 shared cores, the shared GOMODCACHE partly warm): 58 s, a
# 16 MB binary (stripped); with cold caches about 2 minutes; with a warm GOCACHE a relink takes
# seconds; a finished cache exits at once.
set -euo pipefail

VERSION=0.23.0
MODULE=github.com/prometheus/blackbox_exporter

CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/blackbox_exporter-$VERSION"
BIN="$DEST/bin"

log() { printf '[build-blackbox-exporter] %s\n' "$*" >&2; }

done_line() { printf 'BLACKBOX_EXPORTER=%s\n' "$BIN/blackbox_exporter"; }

finished() { [[ -f "$DEST/ready" && -x "$BIN/blackbox_exporter" ]]; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache; its own lock file, since the other build scripts may run alongside.
exec 9>"$CACHE_ROOT/.lock-blackbox-exporter"
flock 9
if finished; then
  log "built by a concurrent run"
  done_line
  exit 0
fi
rm -f "$DEST/ready"
mkdir -p "$BIN" "$DEST/wrap"

GO=$(command -v go || true)
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
if [[ -z "$GO" ]]; then
  log "go not found (on PATH or at /usr/local/go/bin/go): install Go >= 1.24"; exit 1
fi

# Everything Go keeps goes under the cache root, none of it in the checkout or in ~/go. The
# toolchain stays the local one (no toolchain download); sums are checked against the checksum DB.
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
unset GOFLAGS GOOS GOARCH GOBIN
export GOWORK=off

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
LOG="$DEST/build.log"
: >"$LOG"
start=$SECONDS
log "Go $("$GO" env GOVERSION), -p $JOBS, nice 10; log: $LOG"

# The scratch module: a tools file importing the main package keeps `go get` from pruning it.
WRAP="$DEST/wrap"
go_minor=$("$GO" env GOVERSION | sed -n 's/^go\([0-9]*\.[0-9]*\).*$/\1/p')
printf 'module qwen-sentinel/blackbox-exporter-build\n\ngo %s\n' "${go_minor:-1.24}" >"$WRAP/go.mod"
rm -f "$WRAP/go.sum"
printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$MODULE" >"$WRAP/tools.go"
(cd "$WRAP" && nice -n 10 "$GO" get "$MODULE@v$VERSION") >>"$LOG" 2>&1 \
  || { log "go get $MODULE@v$VERSION failed:"; tail -n 40 "$LOG" >&2; exit 1; }

# Stamped as its Makefile (promu) does, so `blackbox_exporter --version` names the release, which
# the bench prints in its header.
ldflags="-s -w -X github.com/prometheus/common/version.Version=$VERSION -X github.com/prometheus/common/version.Branch=HEAD -X github.com/prometheus/common/version.BuildUser=qwen-sentinel"
(cd "$WRAP" && nice -n 10 "$GO" build -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$BIN/blackbox_exporter.tmp" "$MODULE") >>"$LOG" 2>&1 \
  || { log "building blackbox_exporter failed:"; tail -n 60 "$LOG" >&2; exit 1; }
chmod 755 "$BIN/blackbox_exporter.tmp"
mv -f "$BIN/blackbox_exporter.tmp" "$BIN/blackbox_exporter"

version=$("$BIN/blackbox_exporter" --version 2>&1 | head -n 1)
[[ "$version" == *"version $VERSION"* ]] || { log "the binary says '$version', not version $VERSION"; exit 1; }
log "done in $((SECONDS - start)) s: $version"
printf '%s v%s %s\n' "$MODULE" "$VERSION" "$("$GO" env GOVERSION)" >"$DEST/ready"
done_line
