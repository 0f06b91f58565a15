#!/usr/bin/env bash
# Builds Ollama (CPU only, cgo) from the Go module proxy for the real-server tests, into a cache
# outside the checkout. Idempotent: a finished cache exits at once. The tiny Qwen3 model comes from
# build-llama-server.sh (run it first); the tests wrap it in a Modelfile.
#
# Ollama v0.24.0 is the newest release whose inference engine is native code vendored in the Go
# module and built by cgo (ml/backend/ggml/ggml/src): `go install` with a C/C++ compiler gives a
# working CPU build. From v0.30.0 the build runs CMake, which fetches llama.cpp from GitHub.
#
# One gap: a Go module zip leaves out every `vendor/` directory, and Ollama keeps four third-party
# headers in llama/llama.cpp/vendor (nlohmann/json.hpp, json_fwd.hpp, stb/stb_image.h,
# miniaudio/miniaudio.h), so `go install` alone fails ("nlohmann/json_fwd.hpp: No such file").
# The same headers come from llama.cpp's own vendor/ in the source bundle of the npm package
# node-llama-cpp (what build-llama-server.sh builds from); they reach the compiler through
# CGO_CPPFLAGS. Three are byte-identical to Ollama's (git blob ids pinned below); miniaudio is
# 0.11.25 there against Ollama's 0.11.24 (used only by mtmd's audio decoding).
#
#   test/real-server/build-ollama.sh     # last line: OLLAMA=<path>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/
#   ollama-<version>/bin/ollama  ollama-<version>/ready
#   ollama-<version>/vendor/   the four headers the module zip lacks
#   go/mod  go/build           (GOMODCACHE and GOCACHE: a rebuild after a removed binary is quick)
set -euo pipefail

OLLAMA_VERSION=v0.24.0
NODE_LLAMA_CPP_VERSION=3.21.1
# vendor/<path> <git blob id> in node-llama-cpp@3.21.1's llama.cpp; all but miniaudio equal Ollama's.
VENDORED=(
  "nlohmann/json.hpp 82d69f7c5d044c9887c96b90c97f5639083ecd14"
  "nlohmann/json_fwd.hpp 9429171390a41654a73b1fd63d6048712a4893a2"
  "stb/stb_image.h 9eedabedc45b3e6fd88fae6f14a160b4d53272ec"
  "miniaudio/miniaudio.h c6d493ee81f553b8dd584e402453f130c20e0546"
)

CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/ollama-$OLLAMA_VERSION"
BIN="$DEST/bin/ollama"

log() { printf '[build-ollama] %s\n' "$*" >&2; }

done_line() { printf 'OLLAMA=%s\n' "$BIN"; }

finished() { [[ -f "$DEST/ready" && -x "$BIN" ]]; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache (two CI jobs or sessions sharing it); the winner's result is reused.
# Its own lock file: build-llama-server.sh holds .lock while it builds, and the two may run together.
exec 9>"$CACHE_ROOT/.lock-ollama"
flock 9
if finished; then
  log "built by a concurrent run"
  done_line
  exit 0
fi
rm -f "$DEST/ready"
mkdir -p "$DEST/bin"

# Go (>= the go line of Ollama's go.mod, 1.26.0) and a C/C++ compiler for cgo.
GO=$(command -v go || true)
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
if [[ -z "$GO" ]]; then
  log "go not found (on PATH or at /usr/local/go/bin/go): install Go >= 1.26"; exit 1
fi
missing=()
for tool in gcc g++ git; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing build tools: ${missing[*]} (apt-get install ${missing[*]})"; exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The headers the module zip lacks (see the top), checked by their git blob ids.
VENDOR="$DEST/vendor"
have_vendor() {
  local entry
  for entry in "${VENDORED[@]}"; do
    [[ "$(git hash-object "$VENDOR/${entry%% *}" 2>/dev/null)" == "${entry##* }" ]] || return 1
  done
}
if ! have_vendor; then
  WORK="$CACHE_ROOT/.work-ollama-$OLLAMA_VERSION"
  rm -rf "$WORK" "$VENDOR"
  mkdir -p "$WORK"
  log "fetching node-llama-cpp@$NODE_LLAMA_CPP_VERSION (llama.cpp source bundle) for the vendored headers"
  (cd "$WORK" && npm pack "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" --silent >/dev/null)
  tar -xzf "$WORK/node-llama-cpp-$NODE_LLAMA_CPP_VERSION.tgz" -C "$WORK" package/llama/gitRelease.bundle
  git clone -q --bare "$WORK/package/llama/gitRelease.bundle" "$WORK/src.git" 2>/dev/null
  for entry in "${VENDORED[@]}"; do
    path=${entry%% *} blob=${entry##* }
    got=$(git --git-dir="$WORK/src.git" rev-parse "HEAD:vendor/$path")
    if [[ "$got" != "$blob" ]]; then
      log "vendor/$path in node-llama-cpp@$NODE_LLAMA_CPP_VERSION is blob $got, the script pins $blob: update the pin"; exit 1
    fi
    mkdir -p "$VENDOR/$(dirname "$path")"
    git --git-dir="$WORK/src.git" cat-file blob "$blob" >"$VENDOR/$path"
  done
  rm -rf "$WORK"
fi

# Everything Go keeps goes under the cache root, none of it in the checkout or in ~/go, and stays
# deletable with rm -rf (-modcacherw). The toolchain stays the local one (no toolchain download);
# module sums are checked against the checksum database, as always.
export GOFLAGS=-modcacherw
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export GOBIN="$DEST/bin.tmp"
export GOTOOLCHAIN=local
export CGO_ENABLED=1
# Fixed compiler flags: GOCACHE keys on them, so a changed environment would rebuild everything.
export CGO_CFLAGS="-O2" CGO_CXXFLAGS="-O2" CGO_CPPFLAGS="-I$VENDOR"
unset GOOS GOARCH

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
log "building ollama@$OLLAMA_VERSION with $("$GO" env GOVERSION), -p $JOBS (about 15 min cold on 2 cores, under a minute with a warm GOCACHE)"
start=$SECONDS
rm -rf "$GOBIN"
mkdir -p "$GOBIN"
# `go install path@version` refuses modules with replace directives; Ollama has none. -ldflags
# stamps the version /api/version reports (0.0.0 otherwise) and strips the symbol tables.
nice -n 10 "$GO" install -p "$JOBS" -trimpath \
  -ldflags "-s -w -X github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v}" \
  "github.com/ollama/ollama@$OLLAMA_VERSION" >"$DEST/build.log" 2>&1 \
  || { tail -n 60 "$DEST/build.log" >&2; exit 1; }
# Rename into place, so a crash never leaves a half-written binary at the final path.
mv "$GOBIN/ollama" "$BIN"
rm -rf "$GOBIN"
log "built in $((SECONDS - start)) s: $(OLLAMA_HOST=127.0.0.1:9 "$BIN" --version 2>&1 | tail -n 1)"

printf 'ollama %s %s\n' "$OLLAMA_VERSION" "$("$GO" env GOVERSION)" >"$DEST/ready"
done_line
