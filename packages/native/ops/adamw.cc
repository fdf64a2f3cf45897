// Vw2AdamW: one op call updates every parameter tensor of a model with AdamW (torch.optim.AdamW semantics).
//
// Why: written as tfjs ops, AdamW costs ~14 eager ops per parameter tensor (~100 us each through tfjs-node),
// about half the op calls of a mini train step. Here it is one op call per step, and one pass over memory
// per element, split across TensorFlow's CPU worker threads.
//
// The arithmetic is, element for element and in float32, the order of the tfjs reference path in
// packages/nn/src/optim/AdamW.ts, so both paths agree to rounding:
//   g ← g·grad_scale (global-norm clipping folded in; 1 multiplies exactly)
//   m' = m·beta1 + g·(1−beta1)          v' = v·beta2 + g²·(1−beta2)
//   p' = (decay ? p·(1−lr·wd) : p) − lr · (m'/bc1) / (sqrt(v'/bc2) + eps)
// The scalars come in one float tensor (`hyper`, see kHyper*) rather than attrs: attrs are part of the eager
// kernel-cache key, so a learning-rate schedule would build a new kernel every step.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

// Layout of the `hyper` input; packages/native/src/FusedAdamW.ts writes it in this order.
enum Hyper {
  kHyperBeta1,
  kHyperOneMinusBeta1,
  kHyperBeta2,
  kHyperOneMinusBeta2,
  kHyperBiasCorrection1,
  kHyperBiasCorrection2,
  kHyperEps,
  kHyperDecayFactor,  // 1 − lr·weight_decay
  kHyperLr,
  kHyperGradScale,  // clip_grad_norm_'s factor, applied to every gradient first
  kHyperCount
};

}  // namespace

REGISTER_OP("Vw2AdamW")
    .Input("params: N * float")
    .Input("grads: N * float")
    .Input("m: N * float")
    .Input("v: N * float")
    .Input("hyper: float")
    .Output("new_params: N * float")
    .Output("new_m: N * float")
    .Output("new_v: N * float")
    .Attr("N: int >= 1")
    .Attr("decay: list(bool)")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      int n = 0;
      TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
      for (int i = 0; i < n; ++i) {
        c->set_output(i, c->input(i));
        c->set_output(n + i, c->input(i));
        c->set_output(2 * n + i, c->input(i));
      }
      return absl::OkStatus();
    })
    .Doc(R"doc(
Multi-tensor AdamW step (decoupled weight decay, bias-corrected moments) over N parameter tensors.
hyper: [beta1, 1-beta1, beta2, 1-beta2, 1-beta1^t, 1-beta2^t, eps, 1-lr*weight_decay, lr, grad_scale].
decay: per tensor, whether weight decay applies.
)doc");

namespace {

struct Span {
  const float* p;
  const float* g;
  const float* m;
  const float* v;
  float* p_out;
  float* m_out;
  float* v_out;
  bool decay;
};

class Vw2AdamWOp : public OpKernel {
 public:
  explicit Vw2AdamWOp(OpKernelConstruction* context) : OpKernel(context) {
    int n = 0;
    OP_REQUIRES_OK(context, context->GetAttr("N", &n));
    OP_REQUIRES_OK(context, context->GetAttr("decay", &decay_));
    OP_REQUIRES(context, static_cast<int>(decay_.size()) == n,
                tensorflow::errors::InvalidArgument("Vw2AdamW: attr decay has ", decay_.size(),
                                                    " entries but N = ", n));
  }

  void Compute(OpKernelContext* context) override {
    tensorflow::OpInputList params, grads, ms, vs;
    OP_REQUIRES_OK(context, context->input_list("params", &params));
    OP_REQUIRES_OK(context, context->input_list("grads", &grads));
    OP_REQUIRES_OK(context, context->input_list("m", &ms));
    OP_REQUIRES_OK(context, context->input_list("v", &vs));
    const Tensor* hyper_tensor = nullptr;
    OP_REQUIRES_OK(context, context->input("hyper", &hyper_tensor));
    OP_REQUIRES(context, hyper_tensor->NumElements() == kHyperCount,
                tensorflow::errors::InvalidArgument("Vw2AdamW: hyper has ", hyper_tensor->NumElements(),
                                                    " values, expected ", static_cast<int>(kHyperCount)));
    const float* hyper = hyper_tensor->flat<float>().data();

    const int n = params.size();
    for (int i = 0; i < n; ++i) {
      const auto& shape = params[i].shape();
      const char* names[] = {"grads", "m", "v"};
      const tensorflow::OpInputList* lists[] = {&grads, &ms, &vs};
      for (int k = 0; k < 3; ++k) {
        OP_REQUIRES(context, (*lists[k])[i].shape() == shape,
                    tensorflow::errors::InvalidArgument("Vw2AdamW: ", names[k], "[", i, "] has shape ",
                                                        (*lists[k])[i].shape().DebugString(), " but params[", i,
                                                        "] has shape ", shape.DebugString()));
      }
    }

    tensorflow::OpOutputList new_params, new_ms, new_vs;
    OP_REQUIRES_OK(context, context->output_list("new_params", &new_params));
    OP_REQUIRES_OK(context, context->output_list("new_m", &new_ms));
    OP_REQUIRES_OK(context, context->output_list("new_v", &new_vs));
    std::vector<Span> spans(n);
    std::vector<int64_t> starts(n + 1, 0);  // element offset of tensor i in the concatenation of all of them
    for (int i = 0; i < n; ++i) {
      Tensor *p_out = nullptr, *m_out = nullptr, *v_out = nullptr;
      OP_REQUIRES_OK(context, new_params.allocate(i, params[i].shape(), &p_out));
      OP_REQUIRES_OK(context, new_ms.allocate(i, params[i].shape(), &m_out));
      OP_REQUIRES_OK(context, new_vs.allocate(i, params[i].shape(), &v_out));
      spans[i] = {params[i].flat<float>().data(), grads[i].flat<float>().data(), ms[i].flat<float>().data(),
                  vs[i].flat<float>().data(),     p_out->flat<float>().data(),   m_out->flat<float>().data(),
                  v_out->flat<float>().data(),    static_cast<bool>(decay_[i])};
      starts[i + 1] = starts[i] + params[i].NumElements();
    }

    const float beta1 = hyper[kHyperBeta1], one_minus_beta1 = hyper[kHyperOneMinusBeta1];
    const float beta2 = hyper[kHyperBeta2], one_minus_beta2 = hyper[kHyperOneMinusBeta2];
    const float bc1 = hyper[kHyperBiasCorrection1], bc2 = hyper[kHyperBiasCorrection2];
    const float eps = hyper[kHyperEps], decay_factor = hyper[kHyperDecayFactor], lr = hyper[kHyperLr];
    const float grad_scale = hyper[kHyperGradScale];

    // One range of the concatenated elements; it may cross tensor boundaries.
    auto update = [&](int64_t begin, int64_t end) {
      int i = static_cast<int>(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
      while (begin < end) {
        const Span& s = spans[i];
        const int64_t from = begin - starts[i], to = std::min(end, starts[i + 1]) - starts[i];
        const float* __restrict p = s.p;
        const float* __restrict g = s.g;
        const float* __restrict m = s.m;
        const float* __restrict v = s.v;
        float* __restrict p_out = s.p_out;
        float* __restrict m_out = s.m_out;
        float* __restrict v_out = s.v_out;
        const float keep = s.decay ? decay_factor : 1.0f;
        for (int64_t j = from; j < to; ++j) {
          const float gj = g[j] * grad_scale;
          const float mj = m[j] * beta1 + gj * one_minus_beta1;
          const float vj = v[j] * beta2 + (gj * gj) * one_minus_beta2;
          const float step = (mj / bc1) / (std::sqrt(vj / bc2) + eps);
          // keep == 1 multiplies exactly, so undecayed tensors match `p − lr·step` bit for bit
          p_out[j] = p[j] * keep - step * lr;
          m_out[j] = mj;
          v_out[j] = vj;
        }
        begin = starts[i + 1];
        ++i;
      }
    };
    const auto* workers = context->device()->tensorflow_cpu_worker_threads();
    // ~7 loads/stores and a sqrt and two divisions per element
    tensorflow::Shard(workers->num_threads, workers->workers, starts[n], /*cost_per_unit=*/40, update);
  }

 private:
  std::vector<bool> decay_;
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("Vw2AdamW").Device(tensorflow::DEVICE_CPU), Vw2AdamWOp);
