#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the Kubernetes tests, from the Go module proxy only,
# into a cache outside the checkout: kube-apiserver, kube-controller-manager and kube-scheduler
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3, the version kubernetes' go.mod pins) and
# kwok (sigs.k8s.io/kwok, fake nodes: pods become Running and Ready without a kubelet).
# Idempotent: a finished cache exits at once. kubectl is not built: the machine's own is used.
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` is refused: kubernetes' go.mod replaces its
# staging modules (k8s.io/api, k8s.io/client-go, ...) with ./staging/src/... and requires them at
# v0.0.0. The way around it is a small wrapper module that requires k8s.io/kubernetes vX.Y.Z and
# replaces each of those staging modules with its published v0.Y.Z; the list is read here from the
# replace block of kubernetes' own go.mod at that version, so it cannot drift. etcd's server module
# has replace directives too (../api, ../client/...), so it gets a wrapper module of its own (its
# own dependency graph, not kubernetes'). kwok has none: plain `go install`.
#
#   test/real-server/build-kube.sh     # last line: KUBE_BIN_DIR=<dir>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/
#   kube-<k8s>-etcd-<etcd>-kwok-<kwok>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd,kwok}
#   kube-<...>/wrap-k8s/ wrap-etcd/   the wrapper modules (go.mod, go.sum)
#   kube-<...>/ready                   written last: what readers trust
#   go/mod  go/build                   GOMODCACHE and GOCACHE, shared with build-ollama.sh
# Cold (measured with Go 1.26.8 on 2 cores shared with other work, load 3-15): 19.5 min, of which
# kube-apiserver 14.6 min (it compiles most of what the others share); 0.9 GB of modules in
# GOMODCACHE, 3.6 GB in GOCACHE, 0.34 GB of binaries. With a warm GOCACHE (binaries removed) the
# five link again in about 30 s; a finished cache exits at once. The binaries are reproducible
# (-trimpath): a rebuild is byte-identical.
set -euo pipefail

K8S_VERSION=v1.33.13     # kubectl 1.32 (preinstalled here) is within the one-minor skew of 1.33
KWOK_VERSION=v0.7.0      # built against k8s.io/client-go v0.33
ETCD_VERSION=v3.5.21     # what k8s.io/kubernetes v1.33.13's go.mod requires (checked below)
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/kube-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BIN="$DEST/bin"

log() { printf '[build-kube] %s\n' "$*" >&2; }

done_line() { printf 'KUBE_BIN_DIR=%s\n' "$BIN"; }

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}
finished() { [[ -f "$DEST/ready" ]] && have_all; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache; its own lock file, since the other build scripts may run alongside.
exec 9>"$CACHE_ROOT/.lock-kube"
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
export CGO_ENABLED=0     # static binaries, as Kubernetes' own release builds of the server parts
unset GOFLAGS GOOS GOARCH GOBIN GOWORK
export GOWORK=off

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
LOG="$DEST/build.log"
: >"$LOG"
total_start=$SECONDS
log "Go $("$GO" env GOVERSION), -p $JOBS, nice 10; log: $LOG"

# go build/install under nice, failing with the log's tail.
gorun() {
  local what=$1; shift
  local start=$SECONDS
  printf '\n=== %s: go %s\n' "$what" "$*" >>"$LOG"
  (cd "$WORKDIR" && nice -n 10 "$GO" "$@") >>"$LOG" 2>&1 || { log "$what failed:"; tail -n 60 "$LOG" >&2; exit 1; }
  log "$what: $((SECONDS - start)) s"
}

# Renames a finished binary into place, so a crash never leaves a half-written one at the final path.
install_bin() { chmod 755 "$1"; mv -f "$1" "$BIN/$2"; }

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
STAGING_VERSION="v0.${K8S_VERSION#v1.}"      # v1.33.13 -> v0.33.13

# --- kube-apiserver, kube-controller-manager, kube-scheduler ----------------------------------
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler)
need_k8s=0
for b in "${K8S_CMDS[@]}"; do [[ -x "$BIN/$b" ]] || need_k8s=1; done
if ((need_k8s)); then
  WORKDIR="$DEST/wrap-k8s"
  mkdir -p "$WORKDIR"
  if [[ ! -s "$WORKDIR/go.sum" ]]; then
    log "fetching k8s.io/kubernetes@$K8S_VERSION's go.mod"
    gomod=$(cd "$WORKDIR" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$gomod" ]] || { log "no go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
    goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
    godebug=$(grep -E '^godebug ' "$gomod" || true)   # kubernetes' own GODEBUG defaults, kept
    # The pin above must be what kubernetes requires, or the etcd built is not the one it is tested with.
    grep -qE "^[[:space:]]go\.etcd\.io/etcd/client/v3 $ETCD_VERSION\$" "$gomod" \
      || { log "k8s.io/kubernetes@$K8S_VERSION does not require go.etcd.io/etcd/client/v3 $ETCD_VERSION: update ETCD_VERSION"; exit 1; }
    # Each `k8s.io/X => ./staging/src/k8s.io/X` becomes `k8s.io/X => k8s.io/X v0.Y.Z`.
    replaces=$(awk '/^replace \(/{on=1; next} on && /^\)/{on=0} on && NF' "$gomod")
    staged=$(printf '%s\n' "$replaces" | awk -v v="$STAGING_VERSION" '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $1, $1, v; n++ } END { if (n < 20) exit 1 }') \
      || { log "unexpected replace block in kubernetes' go.mod (fewer than 20 staging modules)"; exit 1; }
    others=$(printf '%s\n' "$replaces" | awk '!($2 == "=>" && $3 ~ /^\.\/staging\/src\//)')
    [[ -z "$others" ]] || { log "kubernetes' go.mod has replaces other than staging ones, not handled: $others"; exit 1; }
    cat >"$WORKDIR/go.mod" <<EOF
// Generated by test/real-server/build-kube.sh: builds k8s.io/kubernetes $K8S_VERSION's commands
// with its staging modules taken from their published $STAGING_VERSION releases.
module qwen-sentinel.test/kube-build

go $goline

$godebug

require k8s.io/kubernetes $K8S_VERSION

replace (
$staged
)
EOF
    # Resolves the build list (kubernetes' own requirements, nothing upgraded) and writes go.sum.
    pkgs=()
    for b in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b@$K8S_VERSION"); done
    gorun "resolving modules for ${K8S_CMDS[*]}" get "${pkgs[@]}"
  fi
  # Versions stamped as Kubernetes' release build does (hack/lib/version.sh), so /version and
  # kubectl's skew check see v1.Y.Z rather than v0.0.0-master.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  rm -rf "$WORKDIR/out"; mkdir -p "$WORKDIR/out"
  for b in "${K8S_CMDS[@]}"; do
    [[ -x "$BIN/$b" ]] && continue
    gorun "building $b $K8S_VERSION" build -p "$JOBS" -trimpath -ldflags "$ldflags" -o "out/$b" "k8s.io/kubernetes/cmd/$b"
    install_bin "$WORKDIR/out/$b" "$b"
  done
  rm -rf "$WORKDIR/out"
fi

# --- etcd ----------------------------------------------------------------------------------------
if [[ ! -x "$BIN/etcd" ]]; then
  WORKDIR="$DEST/wrap-etcd"
  mkdir -p "$WORKDIR"
  if [[ ! -s "$WORKDIR/go.sum" ]]; then
    cat >"$WORKDIR/go.mod" <<EOF
// Generated by test/real-server/build-kube.sh: builds etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3
// is its main package) with the requirements of its own go.mod; its ../ replaces point at the
// same published versions.
module qwen-sentinel.test/etcd-build

go 1.23

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    gorun "resolving modules for etcd" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  rm -rf "$WORKDIR/out"; mkdir -p "$WORKDIR/out"
  gorun "building etcd $ETCD_VERSION" build -p "$JOBS" -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3
  install_bin "$WORKDIR/out/etcd" etcd
  rm -rf "$WORKDIR/out"
fi

# --- kwok ----------------------------------------------------------------------------------------
if [[ ! -x "$BIN/kwok" ]]; then
  WORKDIR="$DEST"
  export GOBIN="$DEST/bin.tmp"
  rm -rf "$GOBIN"; mkdir -p "$GOBIN"
  gorun "building kwok $KWOK_VERSION" install -p "$JOBS" -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  install_bin "$GOBIN/kwok" kwok
  rm -rf "$GOBIN"
  unset GOBIN
fi

have_all || { log "some binaries are missing after the build"; exit 1; }
log "done in $((SECONDS - total_start)) s: $("$BIN/kube-apiserver" --version 2>&1 | tail -n 1), etcd $("$BIN/etcd" --version 2>&1 | sed -n 's/^etcd Version: //p'), kwok $("$BIN/kwok" --version 2>&1 | tail -n 1)"
printf 'k8s.io/kubernetes %s go.etcd.io/etcd/server/v3 %s sigs.k8s.io/kwok %s %s\n' \
  "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" "$("$GO" env GOVERSION)" >"$DEST/ready"
done_line
