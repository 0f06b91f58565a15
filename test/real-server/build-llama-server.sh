#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) plus a tiny generated Qwen3 model for the
# real-server tests, into a cache outside the checkout. Idempotent: a finished cache exits at once.
#
# No Debian package ships llama.cpp and no npm package ships the server binary, but the npm package
# node-llama-cpp carries the whole llama.cpp tree as a git bundle: that is the source used here,
# so only the npm registry and Debian's packages need to be reachable.
#
#   test/real-server/build-llama-server.sh     # last line: LLAMA_SERVER=<path> MODEL=<path>
#
# Cache: ${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}/llama.cpp-<tag>-<shortcommit>/
#   bin/llama-server  ggml-vocab-qwen2.gguf  Qwen-Qwen3-0.6B.jinja  tiny-qwen3.gguf  ready
set -euo pipefail

NODE_LLAMA_CPP_VERSION=3.21.1
# What node-llama-cpp@3.21.1 bundles. Pinned here so a finished cache is found without touching the
# network; checked against the package after a fetch, so a mismatch fails instead of mislabelling.
LLAMA_TAG=v0.4.0
LLAMA_COMMIT=80fb11a

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${QWEN_SENTINEL_CACHE:-$HOME/.cache/qwen-sentinel}
DEST="$CACHE_ROOT/llama.cpp-$LLAMA_TAG-$LLAMA_COMMIT"
BIN="$DEST/bin/llama-server"
MODEL="$DEST/tiny-qwen3.gguf"
WRITER="$HERE/write-tiny-qwen3-gguf.ts"
# The model depends on the writer: its hash is recorded next to the model, and a changed writer
# regenerates the model (cheap) without rebuilding the server (expensive).
WRITER_HASH=$(sha256sum "$WRITER" | cut -d' ' -f1)
STAMP="$MODEL.writer-sha256"

log() { printf '[build-llama-server] %s\n' "$*" >&2; }

done_line() { printf 'LLAMA_SERVER=%s MODEL=%s\n' "$BIN" "$MODEL"; }

finished() { [[ -f "$DEST/ready" && -x "$BIN" && -f "$MODEL" && "$(cat "$STAMP" 2>/dev/null)" == "$WRITER_HASH" ]]; }

if finished; then
  log "already built"
  done_line
  exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time per cache (two CI jobs or sessions sharing it); the winner's result is reused.
exec 9>"$CACHE_ROOT/.lock"
flock 9
if finished; then
  log "built by a concurrent run"
  done_line
  exit 0
fi
# Anything below may leave the cache half-done; `ready` (written last) is what readers trust.
rm -f "$DEST/ready"
mkdir -p "$DEST/bin"

# Debian build deps, installed only when missing and only when we may (CI runs as root).
missing=()
for tool in cmake g++ make git; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing build tools: ${missing[*]} (apt-get install cmake g++ make git)"; exit 1
  fi
  log "installing ${missing[*]}"   # the Debian package names equal the tool names
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node with TypeScript type stripping runs the model writer: the checkout's Node 24 when present.
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node || echo node)
if ! "$NODE" -e 'process.exit(process.features.typescript ? 0 : 1)' 2>/dev/null; then
  log "$NODE cannot run TypeScript (needs Node >= 22.18): run npm ci first, it brings Node 24 into node_modules/.bin"
  exit 1
fi

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# Work tree next to the cache (same disk, outside the checkout); removed after success.
WORK="$CACHE_ROOT/.work-$LLAMA_TAG-$LLAMA_COMMIT"

need_source() { [[ ! -x "$BIN" || ! -f "$DEST/ggml-vocab-qwen2.gguf" || ! -f "$DEST/Qwen-Qwen3-0.6B.jinja" ]]; }

if need_source; then
  start=$SECONDS
  rm -rf "$WORK"
  mkdir -p "$WORK"
  log "fetching node-llama-cpp@$NODE_LLAMA_CPP_VERSION (llama.cpp source bundle)"
  (cd "$WORK" && npm pack "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" --silent >/dev/null)
  tar -xzf "$WORK/node-llama-cpp-$NODE_LLAMA_CPP_VERSION.tgz" -C "$WORK" \
    package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$WORK/package/llama/llama.cpp.info.json")
  git clone -q "$WORK/package/llama/gitRelease.bundle" "$WORK/src" 2>/dev/null
  commit=$(git -C "$WORK/src" rev-parse --short=7 HEAD)
  if [[ "$tag" != "$LLAMA_TAG" || "$commit" != "$LLAMA_COMMIT" ]]; then
    log "node-llama-cpp@$NODE_LLAMA_CPP_VERSION ships llama.cpp $tag $commit, the script pins $LLAMA_TAG $LLAMA_COMMIT: update the pin"
    exit 1
  fi
  rm -f "$WORK/node-llama-cpp-$NODE_LLAMA_CPP_VERSION.tgz" "$WORK/package/llama/gitRelease.bundle"
  cp "$WORK/src/models/ggml-vocab-qwen2.gguf" "$WORK/src/models/templates/Qwen-Qwen3-0.6B.jinja" "$DEST/"

  if [[ ! -x "$BIN" ]]; then
    log "building llama-server with -j$JOBS (about 10-25 min on 2 cores)"
    # CPU only, static, no OpenMP/OpenSSL; no web UI (LLAMA_USE_PREBUILT_UI=OFF, or it downloads one).
    cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
      -DLLAMA_USE_PREBUILT_UI=OFF >"$WORK/cmake.log" 2>&1 || { tail -n 40 "$WORK/cmake.log" >&2; exit 1; }
    cmake --build "$WORK/build" --target llama-server -j "$JOBS" >"$WORK/build.log" 2>&1 \
      || { tail -n 60 "$WORK/build.log" >&2; exit 1; }
    # Copy then rename, so a crash never leaves a truncated binary at the final path.
    strip -o "$DEST/bin/llama-server.tmp" "$WORK/build/bin/llama-server"
    chmod 755 "$DEST/bin/llama-server.tmp"
    mv "$DEST/bin/llama-server.tmp" "$BIN"
  fi
  rm -rf "$WORK"   # ~300 MB of source and objects; the cache keeps only what the tests use
  log "source and build done in $((SECONDS - start)) s"
fi

log "writing $MODEL"
rm -f "$STAMP"
# The writer renames its output into place only when complete.
"$NODE" "$WRITER" --vocab "$DEST/ggml-vocab-qwen2.gguf" --template "$DEST/Qwen-Qwen3-0.6B.jinja" --out "$MODEL" >/dev/null
printf '%s\n' "$WRITER_HASH" >"$STAMP"

printf 'node-llama-cpp@%s llama.cpp %s %s\n' "$NODE_LLAMA_CPP_VERSION" "$LLAMA_TAG" "$LLAMA_COMMIT" >"$DEST/ready"
done_line
