#!/usr/bin/env bash
# Native tfjs backend without the libtensorflow download: builds @tensorflow/tfjs-node's N-API binding
# against the TensorFlow C/eager API that the PyPI `tensorflow-cpu` wheel ships inside libtensorflow_cc.so.2.
#
# Why this shape (see docs/native-compute.md):
# - tfjs-node's own installer fetches libtensorflow 2.9.1 from a host this machine cannot reach, so we install
#   the npm package with --ignore-scripts into packages/native/.tfjs-node (never a regular dependency: a fresh
#   `npm ci` must not run that installer) and compile its binding ourselves.
# - The binding is pure N-API, so it compiles against the `node-api-headers` npm package (no node source
#   download, which is what node-gyp would need) with the system g++.
# - The wheel exports every TF_* / TFE_* symbol the binding uses; the script checks that before and after
#   linking, and fails with the missing names otherwise.
# - tfjs-node 4.22 calls util.isNullOrUndefined / util.isArray, removed in Node 23; we rewrite those calls.
# Fast no-op when the stamp matches the pinned versions and the binding still loads.
#
# Which wheel: `tensorflow` (CUDA kernels, plus the CUDA runtime wheels its `and-cuda` extra pins) when an NVIDIA
# driver answers `nvidia-smi` with a driver new enough for CUDA 12 (≥ 525), else `tensorflow-cpu`. The choice and
# why are recorded in packages/native/.tfjs-node/build.json, which the CLI reads into the run tags
# (vw2.tf_backend.build, packages/cli/src/TfBackend.ts). docs/gpu.md says what has and has not run on a GPU.
#
# Env: VW2_NATIVE_TF_WHEEL forces a wheel (tensorflow | tensorflow-cpu; see infra/gpu/README.md),
# VW2_NATIVE_DRY_RUN=1 (or --dry-run) prints the choice and exits without installing anything,
# VW2_NVIDIA_SMI names the nvidia-smi to ask (default: the one on PATH), VW2_NATIVE_SKIP=1 skips the step.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

TF_VERSION="2.21.0"
MIN_DRIVER="525" # CUDA 12 minor-version compatibility: what TensorFlow 2.21's CUDA 12 wheels need from the host

# Sets TF_WHEEL, TF_BUILD (cuda | cpu) and TF_BUILD_WHY.
choose_wheel() {
  if [ -n "${VW2_NATIVE_TF_WHEEL:-}" ]; then
    TF_WHEEL="$VW2_NATIVE_TF_WHEEL"; TF_BUILD="cpu"; [ "$TF_WHEEL" = "tensorflow" ] && TF_BUILD="cuda"
    TF_BUILD_WHY="VW2_NATIVE_TF_WHEEL=$VW2_NATIVE_TF_WHEEL"; return
  fi
  TF_WHEEL="tensorflow-cpu"; TF_BUILD="cpu"
  local smi="${VW2_NVIDIA_SMI:-nvidia-smi}" gpus driver
  if ! command -v "$smi" >/dev/null 2>&1; then TF_BUILD_WHY="no NVIDIA driver: $smi not found"; return; fi
  if ! gpus="$("$smi" --query-gpu=name,driver_version --format=csv,noheader 2>&1)" || [ -z "$gpus" ]; then
    TF_BUILD_WHY="no NVIDIA driver: $smi failed: $(echo "$gpus" | head -1)"; return
  fi
  driver="$(echo "$gpus" | head -1 | awk -F', *' '{print $NF}')"
  if ! [[ "${driver%%.*}" =~ ^[0-9]+$ ]] || [ "${driver%%.*}" -lt "$MIN_DRIVER" ]; then
    TF_BUILD_WHY="NVIDIA driver $driver is older than $MIN_DRIVER (CUDA 12): CPU wheel"; return
  fi
  TF_WHEEL="tensorflow"; TF_BUILD="cuda"
  TF_BUILD_WHY="nvidia-smi: $(echo "$gpus" | wc -l) GPU(s), $(echo "$gpus" | head -1 | awk -F', *' '{print $1}'), driver $driver"
}
choose_wheel
echo "native tfjs: $TF_BUILD build, $TF_WHEEL==$TF_VERSION ($TF_BUILD_WHY)"
if [ "${VW2_NATIVE_DRY_RUN:-0}" = "1" ] || [ "${1:-}" = "--dry-run" ]; then
  [ "$TF_BUILD" = "cuda" ] && echo "native tfjs: would also install the CUDA runtime wheels that $TF_WHEEL==$TF_VERSION's and-cuda extra pins"
  echo "native tfjs: dry run, nothing installed"; exit 0
fi
TFJS_NODE_VERSION="4.22.0"
NODE_API_HEADERS_VERSION="1.9.0"
NAPI_VERSION="8" # highest napi_versions entry of tfjs-node's package.json that node-pre-gyp looks up

VENV="$ROOT/.venvs/native"
LIBTF="$VENV/libtensorflow"
TF_INCLUDE="$VENV/tensorflow-include"
PREFIX="$ROOT/packages/native/.tfjs-node"
PKG="$PREFIX/node_modules/@tensorflow/tfjs-node"
BINDING="$PKG/lib/napi-v$NAPI_VERSION/tfjs_binding.node"
STAMP="$PREFIX/.stamp"
WANT_STAMP="$TF_WHEEL==$TF_VERSION tfjs-node@$TFJS_NODE_VERSION node-api-headers@$NODE_API_HEADERS_VERSION napi$NAPI_VERSION $(sha256sum "$0" | cut -c1-16)"
NODE="$ROOT/node_modules/node/bin/node"

if [ "${VW2_NATIVE_SKIP:-0}" = "1" ]; then echo "native tfjs: skipped (VW2_NATIVE_SKIP=1)"; exit 0; fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "native tfjs: only Linux x86_64 is scripted; elsewhere install @tensorflow/tfjs-node from npm"; exit 0
fi

loads() { # the binding loads and runs one op on the `tensorflow` backend
  "$NODE" -e "
    const tf = require('$PKG');
    if (tf.getBackend() !== 'tensorflow') throw new Error('backend is ' + tf.getBackend());
    const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
    if (y[0] !== 3) throw new Error('matMul gave ' + y[0]);
  " >/dev/null 2>&1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && [ -f "$TF_INCLUDE/.stamp" ] && loads; then
  echo "native tfjs: up to date ($WANT_STAMP)"; exit 0
fi

for tool in python3 g++ nm; do
  command -v "$tool" >/dev/null || { echo "native tfjs: needs $tool (apt-get install python3-venv g++ binutils)"; exit 1; }
done

# one run at a time: .venvs/native may be shared by several checkouts (symlinked), and step 1 replaces it
mkdir -p "$VENV"
exec 9>"$VENV/.setup.lock"
flock 9

# 1. libtensorflow from the wheel: the two shared libraries and the C API headers (the binding) into
#    $LIBTF; the wheel's whole include tree (framework, Eigen, absl, protobuf: what custom ops compile
#    against, 41-native-ops.sh) into $TF_INCLUDE. Separate directories and stamps, so a checkout with an
#    older copy of this script that shares .venvs/native still finds $LIBTF as it expects it.
LIBTF_STAMP="$TF_WHEEL==$TF_VERSION"
need() { [ ! -f "$1/.stamp" ] || [ "$(cat "$1/.stamp")" != "$LIBTF_STAMP" ]; }
if need "$LIBTF" || need "$TF_INCLUDE"; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  printf '*\n' > "$VENV/.gitignore"
  WHEELS="$(mktemp -d)"
  trap 'rm -rf "$WHEELS"' EXIT
  echo "native tfjs: downloading $TF_WHEEL==$TF_VERSION from PyPI"
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: -d "$WHEELS" "$TF_WHEEL==$TF_VERSION"
  LIB_OUT=""; INCLUDE_OUT=""
  if need "$LIBTF"; then rm -rf "$LIBTF" && mkdir -p "$LIBTF/lib" "$LIBTF/include" && LIB_OUT="$LIBTF"; fi
  if need "$TF_INCLUDE"; then rm -rf "$TF_INCLUDE" && mkdir -p "$TF_INCLUDE" && INCLUDE_OUT="$TF_INCLUDE"; fi
  python3 - "$WHEELS"/*.whl "$LIB_OUT" "$INCLUDE_OUT" <<'PY'
import sys, zipfile, os, shutil
wheel, out, include_out = sys.argv[1], sys.argv[2], sys.argv[3]
headers = ("tensorflow/include/tensorflow/c/", "tensorflow/include/tensorflow/core/platform/",
           "tensorflow/include/tsl/platform/", "tensorflow/include/xla/tsl/c/")
def extract(z, name, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with z.open(name) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
with zipfile.ZipFile(wheel) as z:
    if out:
        # the CUDA runtime wheels that `tensorflow[and-cuda]` pins (used only for the `tensorflow` wheel)
        metadata = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        cuda = [line.split(":", 1)[1].split(";")[0].strip() for line in z.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and 'extra == "and-cuda"' in line]
        with open(os.path.join(out, "cuda-requirements.txt"), "w") as f:
            f.write("".join(r + "\n" for r in cuda))
    for name in z.namelist():
        if name.endswith("/"):
            continue
        if out and name in ("tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"):
            extract(z, name, os.path.join(out, "lib", os.path.basename(name)))
        if out and name.startswith(headers) and name.endswith(".h"):
            extract(z, name, os.path.join(out, "include", name[len("tensorflow/include/"):]))
        if include_out and name.startswith("tensorflow/include/"):
            extract(z, name, os.path.join(include_out, name[len("tensorflow/include/"):]))
PY
  rm -rf "$WHEELS"
  if [ -n "$LIB_OUT" ] && [ "$TF_WHEEL" = "tensorflow" ] && [ -s "$LIBTF/cuda-requirements.txt" ]; then
    # GPU build: TensorFlow dlopens libcudart/cublas/cudnn/... from its own RUNPATH ($ORIGIN), so the
    # CUDA wheels' libraries are linked next to libtensorflow_cc.so.2 (see infra/gpu/README.md).
    echo "native tfjs: installing the CUDA runtime wheels $TF_WHEEL==$TF_VERSION pins"
    "$VENV/bin/pip" install -q -r "$LIBTF/cuda-requirements.txt"
    for dir in "$VENV"/lib/python3*/site-packages/nvidia/*/lib; do
      for so in "$dir"/*.so*; do [ -e "$so" ] && ln -sf "$so" "$LIBTF/lib/"; done
    done
  fi
  [ -z "$LIB_OUT" ] || echo "$LIBTF_STAMP" > "$LIBTF/.stamp"
  [ -z "$INCLUDE_OUT" ] || echo "$LIBTF_STAMP" > "$TF_INCLUDE/.stamp"
fi
[ -f "$LIBTF/lib/libtensorflow_cc.so.2" ] || { echo "native tfjs: $TF_WHEEL wheel has no libtensorflow_cc.so.2"; exit 1; }

# 2. tfjs-node's JS + binding sources, without its install script. Its @tensorflow/tfjs* copies are removed
#    so that it resolves the repository's @tensorflow/tfjs (one tfjs-core engine, one backend registry).
#    Built in $PREFIX.new and swapped in at the end, so processes loading the old build meanwhile keep working.
FINAL_PREFIX="$PREFIX"
PREFIX="$PREFIX.new"
PKG="$PREFIX/node_modules/@tensorflow/tfjs-node"
BINDING="$PKG/lib/napi-v$NAPI_VERSION/tfjs_binding.node"
rm -rf "$PREFIX" && mkdir -p "$PREFIX"
printf '{ "name": "vw2-native-tfjs-node", "private": true }\n' > "$PREFIX/package.json"
(cd "$PREFIX" && npm install -q --ignore-scripts --no-audit --no-fund --no-package-lock \
  "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" "node-api-headers@$NODE_API_HEADERS_VERSION" >/dev/null)
for dup in "$PREFIX"/node_modules/@tensorflow/*; do
  [ "$(basename "$dup")" = "tfjs-node" ] || rm -rf "$dup"
done
ROOT_TFJS="$("$NODE" -p "require('$ROOT/node_modules/@tensorflow/tfjs/package.json').version")"
[ "$ROOT_TFJS" = "$TFJS_NODE_VERSION" ] || { echo "native tfjs: root @tensorflow/tfjs is $ROOT_TFJS, binding needs $TFJS_NODE_VERSION"; exit 1; }
sed -i -E 's/\(0, util_1\.isNullOrUndefined\)\(([^)]*)\)/((\1) == null)/g; s/\(0, util_1\.isArray\)\(/Array.isArray(/g' \
  "$PKG/dist/nodejs_kernel_backend.js" "$PKG/dist/kernels/TopK.js"
! grep -q "util_1\.isNullOrUndefined\|util_1\.isArray" "$PKG/dist/nodejs_kernel_backend.js" "$PKG/dist/kernels/TopK.js"

# 3. Compile the binding; libraries are linked through deps/lib like upstream ($ORIGIN/../../deps/lib).
mkdir -p "$PKG/deps/lib" "$(dirname "$BINDING")"
ln -sf "$LIBTF/lib/libtensorflow_cc.so.2" "$LIBTF/lib/libtensorflow_framework.so.2" "$PKG/deps/lib/"
echo "native tfjs: compiling tfjs_binding.node"
g++ -std=c++17 -O2 -fPIC -shared -DNAPI_VERSION="$NAPI_VERSION" \
  -I"$PREFIX/node_modules/node-api-headers/include" -I"$LIBTF/include" \
  "$PKG/binding/tfjs_backend.cc" "$PKG/binding/tfjs_binding.cc" \
  -L"$PKG/deps/lib" -l:libtensorflow_cc.so.2 -l:libtensorflow_framework.so.2 \
  -Wl,-rpath,'$ORIGIN/../../deps/lib' \
  -o "$BINDING"

# 4. Evidence: every TF_*/TFE_* symbol the binding imports is exported by the wheel's libraries.
IMPORTED="$(nm -D --undefined-only "$BINDING" | awk '{sub(/@.*/, "", $2); print $2}' | grep -E '^TFE?_' | sort -u)"
EXPORTED="$(nm -D --defined-only "$LIBTF/lib/libtensorflow_cc.so.2" "$LIBTF/lib/libtensorflow_framework.so.2" \
  | awk 'NF==3 {sub(/@.*/, "", $3); print $3}' | grep -E '^TFE?_' | sort -u)"
MISSING="$(comm -23 <(echo "$IMPORTED") <(echo "$EXPORTED"))"
[ -z "$MISSING" ] || { echo "native tfjs: symbols missing from $TF_WHEEL==$TF_VERSION:"; echo "$MISSING"; exit 1; }
if ldd "$BINDING" | grep -q "not found"; then ldd "$BINDING"; exit 1; fi
echo "native tfjs: $(echo "$IMPORTED" | wc -l) TF_/TFE_ symbols resolved in $TF_WHEEL==$TF_VERSION"

# what was built, for the run tags (packages/cli/src/TfBackend.ts reads it)
CUDA_WHEELS="$([ "$TF_BUILD" = "cuda" ] && cat "$LIBTF/cuda-requirements.txt" || true)"
python3 - "$PREFIX/build.json" "$TF_BUILD" "$TF_WHEEL" "$TF_VERSION" "$TF_BUILD_WHY" "$CUDA_WHEELS" <<'PY'
import json, sys
out, build, wheel, version, why, cuda = sys.argv[1:]
json.dump({"format": 1, "build": build, "wheel": wheel, "version": version, "why": why,
           "cudaWheels": [w for w in cuda.splitlines() if w.strip()]}, open(out, "w"), indent=2)
PY

# the binding finds libtensorflow through $ORIGIN, so the tree can move; swap it in, then check it there
rm -rf "$FINAL_PREFIX.old"
[ ! -e "$FINAL_PREFIX" ] || mv "$FINAL_PREFIX" "$FINAL_PREFIX.old"
mv "$PREFIX" "$FINAL_PREFIX" && rm -rf "$FINAL_PREFIX.old"
PREFIX="$FINAL_PREFIX"; PKG="$PREFIX/node_modules/@tensorflow/tfjs-node"; BINDING="$PKG/lib/napi-v$NAPI_VERSION/tfjs_binding.node"
loads || { "$NODE" -e "require('$PKG')"; exit 1; }
echo "$WANT_STAMP" > "$STAMP"
echo "native tfjs: built $BINDING"
