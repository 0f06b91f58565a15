#!/usr/bin/env bash
# Builds a real Helm for the chart tests (test/integration/helm-chart.test.ts), from the Go module
# proxy only, into a cache outside the checkout, and keeps beside it the Prometheus Operator's CRDs
# (example/prometheus-operator-crd/*.yaml, shipped inside its Go module), which the test creates on
# the real control plane (build-kube.sh) so that `kubectl apply --dry-run=server` checks the chart's
# PrometheusRule, ScrapeConfig, Probe, ServiceMonitor and AlertmanagerConfig against them.
# Idempotent: a finished cache exits at once.
#
# helm.sh/helm/v3's go.mod has no replace directives, so a plain `go install` builds it. The
# operator's root module is only downloaded (`go mod download`), never built.
#
#   test/real-server/build-helm.sh     # last line: HELM_DIR=<dir>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/
#   helm-<helm>-prometheus-operator-<op>/bin/helm
#   helm-<...>/crds/monitoring.coreos.com_*.yaml   the operator's CRDs at that version
#   helm-<...>/ready                              written last: what readers trust
#   go/mod  go/build                              GOMODCACHE and GOCACHE, shared with the other builds
# Cold (measured with Go 1.26.8 on 2 shared cores): about 2.5 minutes, most of it compiling helm's
# k8s.io client modules; with a warm GOCACHE a relink takes seconds; a finished cache exits at once.
set -euo pipefail

HELM_VERSION=v3.21.4
OPERATOR_VERSION=v0.93.0
OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator

CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/helm-$HELM_VERSION-prometheus-operator-$OPERATOR_VERSION"
BIN="$DEST/bin"
CRDS="$DEST/crds"

log() { printf '[build-helm] %s\n' "$*" >&2; }

done_line() { printf 'HELM_DIR=%s\n' "$DEST"; }

finished() { [[ -f "$DEST/ready" && -x "$BIN/helm" ]] && compgen -G "$CRDS/monitoring.coreos.com_*.yaml" >/dev/null; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache; its own lock file, since the other build scripts may run alongside.
exec 9>"$CACHE_ROOT/.lock-helm"
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
total_start=$SECONDS
log "Go $("$GO" env GOVERSION), -p $JOBS, nice 10; log: $LOG"

# --- helm ----------------------------------------------------------------------------------------
if [[ ! -x "$BIN/helm" ]]; then
  export GOBIN="$DEST/bin.tmp"
  rm -rf "$GOBIN"; mkdir -p "$GOBIN"
  start=$SECONDS
  # Stamped as Helm's Makefile does: `helm version` names the release, and the Kubernetes version
  # that `helm template` and `helm lint` assume (without --kube-version) follows the client-go
  # Helm is built with (v0.36.2 -> 1.36), not the v1.20 fallback that would fail a kubeVersion
  # constraint.
  gomod=$(cd "$DEST" && "$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  [[ -f "$gomod" ]] || { log "no go.mod for helm.sh/helm/v3@$HELM_VERSION"; exit 1; }
  clientgo=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v\([0-9]*\)\.\([0-9]*\)\..*$/\1 \2/p' "$gomod")
  read -r cg_major cg_minor <<<"$clientgo"
  [[ -n "$cg_major" && -n "$cg_minor" ]] || { log "k8s.io/client-go not found in helm's go.mod"; exit 1; }
  k8s_major=$((cg_major + 1))
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=$k8s_major -X $pkg.k8sVersionMinor=$cg_minor"
  done
  (cd "$DEST" && nice -n 10 "$GO" install -p "$JOBS" -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >>"$LOG" 2>&1 \
    || { log "building helm failed:"; tail -n 60 "$LOG" >&2; exit 1; }
  chmod 755 "$GOBIN/helm"
  mv -f "$GOBIN/helm" "$BIN/helm"
  rm -rf "$GOBIN"
  unset GOBIN
  log "helm $HELM_VERSION: $((SECONDS - start)) s"
fi

# --- the Prometheus Operator's CRDs ---------------------------------------------------------------
# `go mod download -json` prints the module's extracted directory ("Dir"); the CRDs are copied out
# of it (the module cache is read-only and may be cleaned), into a temporary directory renamed last.
dir=$(cd "$DEST" && "$GO" mod download -json "$OPERATOR_MODULE@$OPERATOR_VERSION" 2>>"$LOG" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -d "$dir/example/prometheus-operator-crd" ]] \
  || { log "no example/prometheus-operator-crd in $OPERATOR_MODULE@$OPERATOR_VERSION (download failed? see $LOG)"; exit 1; }
rm -rf "$CRDS.tmp"; mkdir -p "$CRDS.tmp"
cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$CRDS.tmp/"
chmod 644 "$CRDS.tmp"/*.yaml
rm -rf "$CRDS"; mv "$CRDS.tmp" "$CRDS"

log "done in $((SECONDS - total_start)) s: helm $("$BIN/helm" version --short), $(ls "$CRDS" | wc -l) CRDs from $OPERATOR_MODULE $OPERATOR_VERSION"
printf 'helm.sh/helm/v3 %s %s %s %s\n' "$HELM_VERSION" "$OPERATOR_MODULE" "$OPERATOR_VERSION" "$("$GO" env GOVERSION)" >"$DEST/ready"
done_line
