// The N-API face of vw2_ops.node. Loading the library into the node process is what registers our ops:
// REGISTER_OP / REGISTER_KERNEL_BUILDER in the other .cc files are static initializers that add to the
// op and kernel registries of libtensorflow_framework.so.2, the same copy tfjs-node's binding executes from
// (it is already loaded, so the dynamic linker reuses it). This module only reports what got registered, so
// the JS loader (packages/native/src/NativeOps.ts) can tell a stale or broken build from a working one.
#include <node_api.h>

#include <string>
#include <vector>

#include "tensorflow/core/framework/kernel_def.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_def.pb.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace {

// Our ops are the registered ops named Vw2*; each must have a CPU kernel, or TFE_Execute would fail later
// with a less helpful "no kernel" error.
napi_value RegisteredOps(napi_env env) {
  std::vector<tensorflow::OpDef> ops;
  tensorflow::OpRegistry::Global()->GetRegisteredOps(&ops);
  napi_value list;
  napi_create_array(env, &list);
  uint32_t index = 0;
  for (const auto& op : ops) {
    if (op.name().rfind("Vw2", 0) != 0) continue;
    const auto kernels = tensorflow::GetRegisteredKernelsForOp(op.name());
    bool cpu = false;
    for (const auto& kernel : kernels.kernel()) cpu = cpu || kernel.device_type() == "CPU";
    napi_value entry, name, has_cpu;
    napi_create_object(env, &entry);
    napi_create_string_utf8(env, op.name().c_str(), op.name().size(), &name);
    napi_get_boolean(env, cpu, &has_cpu);
    napi_set_named_property(env, entry, "name", name);
    napi_set_named_property(env, entry, "cpuKernel", has_cpu);
    napi_set_element(env, list, index++, entry);
  }
  return list;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_set_named_property(env, exports, "ops", RegisteredOps(env));
  napi_value hash;
  napi_create_string_utf8(env, VW2_OPS_SOURCE_HASH, NAPI_AUTO_LENGTH, &hash);
  napi_set_named_property(env, exports, "sourceHash", hash);
  return exports;
}

}  // namespace

NAPI_MODULE(vw2_ops, Init)
