#!/usr/bin/env bash
# Builds a real Prometheus WITH kubernetes_sd for the Kubernetes end-to-end loop
# (test/e2e/kubernetes-loop.test.ts), from the Go module proxy only, into a cache outside the
# checkout. Debian's Prometheus 2.42 is built without kubernetes_sd (it refuses
# kubernetes_sd_configs), so the loop cannot use it. Idempotent: a finished cache exits at once.
#
# github.com/prometheus/prometheus tags its 3.x releases v0.3XX.Y for Go (3.16.0 is v0.316.0). Its
# go.mod has no replace directives, but `go install MODULE/cmd/prometheus@vX` is not used: a small
# scratch module that requires it (`go get`) and builds the command works the same everywhere.
# Build tags: netgo as upstream (.promu.yml); remove_all_sd + enable_kubernetes_sd keep only the
# kubernetes service discovery (plus file and http, always in), leaving out the other discoveries
# (the AWS, Azure and GCE SDKs are still compiled: remote write's SigV4, Azure AD and Google IAM
# authentication use them). No builtinassets: the web UI's assets are not built in (its pages
# 404); the HTTP API, which the tests use, is all there. The version is stamped
# as upstream does (github.com/prometheus/common/version), so `prometheus --version` names it.
#
#   test/real-server/build-prometheus.sh     # last line: PROMETHEUS_BIN=<file>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/
#   prometheus-<version>/bin/prometheus
#   prometheus-<version>/wrap/           the scratch module (go.mod, go.sum)
#   prometheus-<version>/ready           written last: what readers trust
#   go/mod  go/build                     GOMODCACHE and GOCACHE, shared with the other builds
# Cold (measured with Go 1.26.8 on 2 cores shared with other work, load 3-4, empty GOMODCACHE and
# GOCACHE): 6.8 min, of which 1 min downloading modules and 5.8 min compiling; 1.9 GB in
# GOMODCACHE (module zips included), 1.2 GB in GOCACHE,
# a 0.1 GB binary. With a warm GOCACHE (binary removed) about 20 s, the final check included; a
# finished cache exits at once.
set -euo pipefail

PROMETHEUS_VERSION=3.16.0
PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_GO_VERSION=v0.316.0   # the Go module's tag for 3.16.0
TAGS=netgo,remove_all_sd,enable_kubernetes_sd

CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/prometheus-$PROMETHEUS_VERSION"
BIN="$DEST/bin"

log() { printf '[build-prometheus] %s\n' "$*" >&2; }

done_line() { printf 'PROMETHEUS_BIN=%s\n' "$BIN/prometheus"; }

finished() { [[ -f "$DEST/ready" && -x "$BIN/prometheus" ]]; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache; its own lock file, since the other build scripts may run alongside.
exec 9>"$CACHE_ROOT/.lock-prometheus"
flock 9
if finished; then
  log "built by a concurrent run"
  done_line
  exit 0
fi
rm -f "$DEST/ready"
mkdir -p "$BIN"

GO=$(command -v go || true)
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
if [[ -z "$GO" ]]; then
  log "go not found (on PATH or at /usr/local/go/bin/go): install Go >= 1.26"; exit 1
fi

# Everything Go keeps goes under the cache root, none of it in the checkout or in ~/go. The
# toolchain stays the local one (no toolchain download); sums are checked against the checksum DB.
# -modcacherw keeps the module cache removable with rm -rf.
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS=-modcacherw
unset GOOS GOARCH GOBIN
export GOWORK=off

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
LOG="$DEST/build.log"
: >"$LOG"
total_start=$SECONDS
log "Go $("$GO" env GOVERSION), -p $JOBS, nice 10; log: $LOG"

# go commands under nice in the scratch module, failing with the log's tail.
WRAP="$DEST/wrap"
gorun() {
  local what=$1; shift
  (cd "$WRAP" && nice -n 10 "$GO" "$@") >>"$LOG" 2>&1 || { log "$what failed:"; tail -n 60 "$LOG" >&2; exit 1; }
}

rm -rf "$WRAP"; mkdir -p "$WRAP"
printf 'module qwen-sentinel.local/build-prometheus\n\ngo 1.26\n' >"$WRAP/go.mod"
start=$SECONDS
gorun "go get $PROMETHEUS_MODULE@$PROMETHEUS_GO_VERSION" \
  get -tags "$TAGS" "$PROMETHEUS_MODULE/cmd/prometheus@$PROMETHEUS_GO_VERSION"
log "modules: $((SECONDS - start)) s"

# The go.mod at that tag must still be the release we mean (3.x tags as v0.3XX.Y).
mod_dir=$(cd "$WRAP" && "$GO" list -m -f '{{.Dir}}' "$PROMETHEUS_MODULE")
[[ "$(tr -d '[:space:]' <"$mod_dir/VERSION")" == "$PROMETHEUS_VERSION" ]] \
  || { log "$PROMETHEUS_MODULE@$PROMETHEUS_GO_VERSION is not Prometheus $PROMETHEUS_VERSION (VERSION: $(cat "$mod_dir/VERSION"))"; exit 1; }

start=$SECONDS
ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
ldflags+=" -X github.com/prometheus/common/version.Branch=HEAD"
ldflags+=" -X github.com/prometheus/common/version.Revision=$PROMETHEUS_GO_VERSION"
ldflags+=" -X github.com/prometheus/common/version.BuildUser=qwen-sentinel"
gorun "building prometheus $PROMETHEUS_VERSION" \
  build -p "$JOBS" -trimpath -tags "$TAGS" -ldflags "$ldflags" -o "$BIN/prometheus.tmp" "$PROMETHEUS_MODULE/cmd/prometheus"
chmod 755 "$BIN/prometheus.tmp"
mv -f "$BIN/prometheus.tmp" "$BIN/prometheus"
log "prometheus $PROMETHEUS_VERSION: $((SECONDS - start)) s"

# A last check: the binary must accept kubernetes_sd_configs (what this build is for). A config it
# refuses ends it at once; one it takes keeps it running (the unreachable API server only logs).
check="$DEST/check"
rm -rf "$check"; mkdir -p "$check"
printf '%s\n' 'scrape_configs:' '  - job_name: k8s' '    kubernetes_sd_configs:' '      - role: pod' \
  '        api_server: https://127.0.0.1:1' >"$check/prometheus.yml"
"$BIN/prometheus" --version >>"$LOG" 2>&1
rc=0
(cd "$check" && timeout 8 "$BIN/prometheus" --config.file=prometheus.yml --storage.tsdb.path=data \
   --web.listen-address=127.0.0.1:0) >"$check/out.log" 2>&1 || rc=$?
if [[ $rc -ne 124 ]]; then
  log "the built prometheus did not run with kubernetes_sd_configs (exit $rc):"; tail -n 20 "$check/out.log" >&2; exit 1
fi
rm -rf "$check"

log "done in $((SECONDS - total_start)) s: $("$BIN/prometheus" --version 2>&1 | head -n 1)"
printf '%s %s %s tags=%s\n' "$PROMETHEUS_MODULE" "$PROMETHEUS_GO_VERSION" "$("$GO" env GOVERSION)" "$TAGS" >"$DEST/ready"
done_line
