#!/usr/bin/env bash
# Our own TensorFlow ops (C++ kernels in packages/native/ops/*.cc) for the native `tensorflow` backend.
#
# TensorFlow's custom-op mechanism, as tf.load_op_library uses it: REGISTER_OP / REGISTER_KERNEL_BUILDER are
# static initializers, so loading the shared library into a process that already has libtensorflow_framework.so.2
# registers the ops there, and tfjs-node's eager executeOp(name, attrs, inputs) runs them like built-in ops.
# The library is also a tiny N-API addon (ops/addon.cc), so node loads it with require() after tfjs-node.
# Compiled with g++ against the include tree of the same tensorflow-cpu wheel 40-native-tfjs.sh extracts,
# with tf.sysconfig.get_compile_flags()'s ABI flags. See docs/native-compute.md ("Custom ops").
#
# Output (git-ignored): packages/native/.ops-build/vw2_ops.node + source-hash (what the JS loader checks
# against the sources, packages/native/src/OpsSource.ts). Objects are cached by content, so editing one .cc
# recompiles one file. No-op when the sources, flags and libtensorflow are unchanged.
# Env: VW2_NATIVE_SKIP=1 skips (like 40-native-tfjs.sh).
# On the CUDA build (packages/native/.tfjs-node/build.json, written by 40-native-tfjs.sh) the library is not built
# and an older one is removed: every Vw2* op has a CPU kernel only, so on a GPU TensorFlow would run it on the host
# and copy its tensors across for every call (AdamW over all weights each step); the tfjs fallbacks run on the GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

if [ "${VW2_NATIVE_SKIP:-0}" = "1" ]; then echo "native ops: skipped (VW2_NATIVE_SKIP=1)"; exit 0; fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then echo "native ops: only Linux x86_64 is scripted"; exit 0; fi

LIBTF="$ROOT/.venvs/native/libtensorflow"
TF_INCLUDE="$ROOT/.venvs/native/tensorflow-include"
TFJS_NODE="$ROOT/packages/native/.tfjs-node/node_modules/@tensorflow/tfjs-node"
NAPI_INCLUDE="$ROOT/packages/native/.tfjs-node/node_modules/node-api-headers/include"
SRC="$ROOT/packages/native/ops"
OUT="$ROOT/packages/native/.ops-build"
LIB="$OUT/vw2_ops.node"
NODE="$ROOT/node_modules/node/bin/node"
NAPI_VERSION="8"

fail() { echo "native ops: $*" >&2; exit 1; }
[ -f "$LIBTF/.stamp" ] && [ -f "$LIBTF/lib/libtensorflow_framework.so.2" ] \
  || fail "no libtensorflow in $LIBTF: run infra/setup.d/40-native-tfjs.sh first"
[ -f "$TF_INCLUDE/.stamp" ] && [ -f "$TF_INCLUDE/tensorflow/core/framework/op_kernel.h" ] \
  || fail "no TensorFlow framework headers in $TF_INCLUDE: run infra/setup.d/40-native-tfjs.sh first"
[ -f "$NAPI_INCLUDE/node_api.h" ] || fail "no node-api headers in $NAPI_INCLUDE: run infra/setup.d/40-native-tfjs.sh first"
[ -f "$TFJS_NODE/package.json" ] || fail "tfjs-node is not built ($TFJS_NODE): run infra/setup.d/40-native-tfjs.sh first"
command -v g++ >/dev/null || fail "needs g++ (apt-get install g++)"
if grep -q '"build": "cuda"' "$ROOT/packages/native/.tfjs-node/build.json" 2>/dev/null; then
  rm -f "$LIB" "$OUT/.stamp" "$OUT/source-hash"
  echo "native ops: skipped on the CUDA build (CPU-only kernels; see docs/gpu.md)"; exit 0
fi
# every .cc under ops/ (subfolders too) goes into the one library; headers are shared by all of them
mapfile -t SOURCES < <(cd "$SRC" && find . -name '*.cc' | sed 's|^\./||' | LC_ALL=C sort)
[ "${#SOURCES[@]}" -gt 0 ] || fail "no C++ sources in $SRC"

# one build at a time per checkout (engineers rebuild while others' tests load the library)
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
SOURCE_HASH="$("$NODE" "$ROOT/packages/native/src/OpsSource.ts")"
# tf.sysconfig.get_compile_flags() of the wheel: C++17, the new libstdc++ ABI, Eigen's alignment. -mavx:
# TensorFlow's wheels require AVX anyway. AVX2 + FMA when this CPU has them (the library is built on the machine
# that runs it): Eigen's GEMM kernels (Vw2Dense, the per-head attention products) then use fused multiply-adds,
# ~15 % faster on the mini shapes. -ffp-contract=off: the compiler never fuses a separate multiply and add, so
# element-wise kernels (AdamW above all) still round like the separate tfjs ops they replace; only Eigen's
# explicit multiply-add primitives use FMA.
ISA_FLAGS=(-mavx)
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then ISA_FLAGS=(-mavx2 -mfma); fi
CXXFLAGS=(-std=c++17 -O3 -fPIC "${ISA_FLAGS[@]}" -ffp-contract=off -fno-math-errno -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64
  -DNAPI_VERSION="$NAPI_VERSION" -Wall -Wno-deprecated-declarations -Wno-sign-compare -Wno-unused-function
  -I"$SRC" -isystem "$TF_INCLUDE" -isystem "$NAPI_INCLUDE")
BUILD_STAMP="sources=$SOURCE_HASH libtensorflow=$(cat "$LIBTF/.stamp") gxx=$(g++ -dumpfullversion) flags=$(echo "${CXXFLAGS[*]}" | sha256sum | cut -c1-16) script=$(sha256sum "$0" | cut -c1-16)"
if [ -f "$LIB" ] && [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$BUILD_STAMP" ]; then
  echo "native ops: up to date ($BUILD_STAMP)"; exit 0
fi

mkdir -p "$OUT/obj"
HEADERS_HASH="$(find "$SRC" -name '*.h' | LC_ALL=C sort | xargs -r cat | sha256sum | cut -c1-16)"
FLAGS_HASH="$(echo "${CXXFLAGS[*]} $(cat "$LIBTF/.stamp") $(g++ -dumpfullversion)" | sha256sum | cut -c1-16)"
OBJECTS=()
for source in "${SOURCES[@]}"; do
  cc="$SRC/$source"
  name="$(echo "${source%.cc}" | tr '/' '_')"
  extra=()
  # addon.cc reports the fingerprint the JS loader checks; it is the only object that depends on all sources
  [ "$name" = "addon" ] && extra=(-DVW2_OPS_SOURCE_HASH="\"$SOURCE_HASH\"")
  key="$( (cat "$cc"; echo "$HEADERS_HASH $FLAGS_HASH ${extra[*]:-}") | sha256sum | cut -c1-16)"
  obj="$OUT/obj/$name.$key.o"
  if [ ! -f "$obj" ]; then
    echo "native ops: compiling $source"
    rm -f "$OUT/obj/$name".*.o
    g++ "${CXXFLAGS[@]}" "${extra[@]}" -c "$cc" -o "$obj.tmp" || fail "compiling $cc failed (errors above)"
    mv "$obj.tmp" "$obj"
  fi
  OBJECTS+=("$obj")
done

# Linked against libtensorflow_framework.so.2 only (op/kernel registries, OpKernel, thread pools); RUNPATH
# relative to the output, so it finds the same file the tfjs-node binding already loaded.
g++ -shared "${OBJECTS[@]}" -L"$LIBTF/lib" -l:libtensorflow_framework.so.2 \
  -Wl,-rpath,'$ORIGIN/../../../.venvs/native/libtensorflow/lib' -o "$LIB.tmp" || fail "linking failed (errors above)"

# Evidence before anyone loads it: every symbol it imports, other than N-API (node provides those), is exported
# by a library it links (a mismatch with the wheel's ABI shows up here, by name, not as a crash later).
if ldd "$LIB.tmp" | grep -q "not found"; then ldd "$LIB.tmp"; fail "unresolved libraries"; fi
IMPORTED="$(nm -D --undefined-only "$LIB.tmp" | awk '$1 == "U" {sub(/@.*/, "", $2); print $2}' | grep -v '^napi_' | sort -u)"
LIBS="$(ldd "$LIB.tmp" | awk '$3 ~ /^\// {print $3}')"
# shellcheck disable=SC2086
EXPORTED="$(nm -D --defined-only $LIBS | awk 'NF==3 {sub(/@.*/, "", $3); print $3}' | sort -u)"
MISSING="$(comm -23 <(echo "$IMPORTED") <(echo "$EXPORTED") | grep -v '^$' || true)"
if [ -n "$MISSING" ]; then
  echo "$MISSING" | c++filt | head -20 >&2
  fail "$(echo "$MISSING" | wc -l) symbols above are not exported by libtensorflow_framework.so.2 / the system libraries"
fi
mv "$LIB.tmp" "$LIB"
echo "$SOURCE_HASH" > "$OUT/source-hash"

# It loads next to the binding, registers every Vw2* op with a CPU kernel, and reports this build's sources.
"$NODE" -e "
  process.env.TF_CPP_MIN_LOG_LEVEL = '2';
  require('$TFJS_NODE');
  const lib = require('$LIB');
  if (lib.sourceHash !== '$SOURCE_HASH') throw new Error('built from ' + lib.sourceHash + ', sources are $SOURCE_HASH');
  const bad = lib.ops.filter((op) => !op.cpuKernel).map((op) => op.name);
  if (lib.ops.length === 0 || bad.length > 0) throw new Error('ops without CPU kernel: ' + bad + ' (registered: ' + JSON.stringify(lib.ops) + ')');
  console.log('native ops: registered ' + lib.ops.map((op) => op.name).join(', '));
" || fail "$LIB does not load next to tfjs-node (error above)"
echo "$BUILD_STAMP" > "$OUT/.stamp"
echo "native ops: built $LIB"
