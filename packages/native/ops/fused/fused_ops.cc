// Fused transformer kernels for the `tensorflow` tfjs backend (see docs/native-compute.md, "Fused ops").
//
// Why hand-written: tfjs runs LayerNorm, tanh-GELU and attention as 6–30 separate eager ops each (and 2–3×
// that in backward, through tfjs's JS gradient functions); on the bench shapes the per-op dispatch and the
// extra passes over memory cost more than the matmuls. libtensorflow has no fused CPU kernels for these,
// so each forward and each backward is one op here. Every op is float32, multi-threaded on TensorFlow's
// intra-op pool, and vectorised through Eigen (rows/columns as Eigen arrays, per-head products as Eigen
// GEMMs over strided maps, so heads are never transposed into separate tensors).
//
// Semantics are those of the composite tfjs ops in packages/nn/src/layers/fused.ts; the agreement tests
// (packages/native/test/fused.test.ts) check forward values and gradients against them.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;
using shape_inference::InferenceContext;
using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStrided = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

namespace {

// Below this many estimated cycles a kernel runs on the calling thread: handing a few microseconds of work
// to the pool costs more than the work (measured on the 2-core box under load: a [640, 48] LayerNorm took
// ~190 µs through the pool).
constexpr int64_t kInlineCycles = 1 << 20;

// Runs fn(start, end) over [0, total) on the intra-op pool; cost is TF's "cycles per unit" estimate.
void parallelFor(OpKernelContext* ctx, int64_t total, int64_t cost, const std::function<void(int64_t, int64_t)>& fn) {
  if (total * cost < kInlineCycles) {
    fn(0, total);
    return;
  }
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(total, cost, fn);
}

// Column sums of row blocks: each of `blocks` blocks of rows accumulates `width`-long partial sums through
// fill(block, rowStart, rowEnd, partial) in parallel; the partials are then added into out (zeroed here).
void blockColumnSums(OpKernelContext* ctx, int64_t rows, int64_t width, int64_t costPerRow, float* out, int nOut,
                     const std::function<void(int64_t, int64_t, float*)>& fill) {
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  const int64_t blocks =
      rows * costPerRow < kInlineCycles ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads * 2, rows / 16));
  std::vector<float> partial(blocks * width * nOut, 0.f);
  const int64_t per = (rows + blocks - 1) / blocks;
  parallelFor(ctx, blocks, per * costPerRow, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const int64_t r0 = b * per, r1 = std::min(rows, r0 + per);
      if (r0 < r1) fill(r0, r1, partial.data() + b * width * nOut);
    }
  });
  ArrayMap total(out, width * nOut);
  total.setZero();
  for (int64_t b = 0; b < blocks; b++) total += ConstArrayMap(partial.data() + b * width * nOut, width * nOut);
}

Status lastAxisRows(const TensorShape& shape, int64_t* rows, int64_t* width) {
  if (shape.dims() < 1) return errors::InvalidArgument("expected rank >= 1, got a scalar");
  *width = shape.dim_size(shape.dims() - 1);
  *rows = *width == 0 ? 0 : shape.num_elements() / *width;
  return OkStatus();
}

// gamma/beta/bias are either [width] or empty ([0]: no affine / no bias).
Status optionalVector(const Tensor& t, int64_t width, const char* what, bool* present) {
  if (t.NumElements() == 0) {
    *present = false;
    return OkStatus();
  }
  if (t.dims() != 1 || t.dim_size(0) != width)
    return errors::InvalidArgument(what, " must be [", width, "] or empty, got ", t.shape().DebugString());
  *present = true;
  return OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// LayerNorm over the last axis: y = (x − mean)·rstd·gamma + beta, rstd = 1/√(var + eps) (biased variance,
// as nn.LayerNorm and tf.moments). mean and rstd ([rows]) are outputs so the backward does not recompute them.

REGISTER_OP("Vw2LayerNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Attr("epsilon: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("rstd: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->UnknownShapeOfRank(1));
      c->set_output(2, c->UnknownShapeOfRank(1));
      return OkStatus();
    });

class LayerNormOp : public OpKernel {
 public:
  explicit LayerNormOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("epsilon", &eps_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    int64_t rows, width;
    OP_REQUIRES_OK(ctx, lastAxisRows(x.shape(), &rows, &width));
    bool affine, shift;
    OP_REQUIRES_OK(ctx, optionalVector(ctx->input(1), width, "gamma", &affine));
    OP_REQUIRES_OK(ctx, optionalVector(ctx->input(2), width, "beta", &shift));
    Tensor *y, *mean, *rstd;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({rows}), &mean));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({rows}), &rstd));
    if (rows == 0) return;
    const float* xp = x.flat<float>().data();
    const float* gp = affine ? ctx->input(1).flat<float>().data() : nullptr;
    const float* bp = shift ? ctx->input(2).flat<float>().data() : nullptr;
    float* yp = y->flat<float>().data();
    float* mp = mean->flat<float>().data();
    float* rp = rstd->flat<float>().data();
    const float eps = eps_;
    parallelFor(ctx, rows, width * 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        ConstArrayMap xr(xp + r * width, width);
        ArrayMap yr(yp + r * width, width);
        const float m = xr.mean();
        yr = xr - m;  // centred first: two-pass variance, no cancellation
        const float s = 1.f / std::sqrt(yr.square().mean() + eps);
        yr *= s;
        if (gp != nullptr) yr *= ConstArrayMap(gp, width);
        if (bp != nullptr) yr += ConstArrayMap(bp, width);
        mp[r] = m;
        rp[r] = s;
      }
    });
  }

 private:
  float eps_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2LayerNorm").Device(DEVICE_CPU), LayerNormOp);

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·gamma, x̂ = (x − mean)·rstd;
// dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy (empty when gamma/beta were empty).
REGISTER_OP("Vw2LayerNormGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("gamma: float")
    .Input("mean: float")
    .Input("rstd: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      return OkStatus();
    });

class LayerNormGradOp : public OpKernel {
 public:
  explicit LayerNormGradOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    OP_REQUIRES(ctx, dy.shape() == x.shape(),
                errors::InvalidArgument("dy ", dy.shape().DebugString(), " must match x ", x.shape().DebugString()));
    int64_t rows, width;
    OP_REQUIRES_OK(ctx, lastAxisRows(x.shape(), &rows, &width));
    bool affine;
    OP_REQUIRES_OK(ctx, optionalVector(ctx->input(2), width, "gamma", &affine));
    OP_REQUIRES(ctx, ctx->input(3).NumElements() == rows && ctx->input(4).NumElements() == rows,
                errors::InvalidArgument("mean and rstd must have ", rows, " elements"));
    Tensor *dx, *dgamma, *dbeta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    const TensorShape paramShape({affine ? width : 0});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, paramShape, &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, paramShape, &dbeta));
    if (rows == 0) {
      if (affine) dgamma->flat<float>().setZero(), dbeta->flat<float>().setZero();
      return;
    }
    const float* dyp = dy.flat<float>().data();
    const float* xp = x.flat<float>().data();
    const float* gp = affine ? ctx->input(2).flat<float>().data() : nullptr;
    const float* mp = ctx->input(3).flat<float>().data();
    const float* rp = ctx->input(4).flat<float>().data();
    float* dxp = dx->flat<float>().data();
    // dx rows, and (affine only) partial Σ dy·x̂ | Σ dy per row block in one pass over the data
    auto rowsPass = [&](int64_t r0, int64_t r1, float* partial) {
      Eigen::ArrayXf xhat(width), g(width);
      for (int64_t r = r0; r < r1; r++) {
        ConstArrayMap dyr(dyp + r * width, width);
        xhat = (ConstArrayMap(xp + r * width, width) - mp[r]) * rp[r];
        if (gp != nullptr) {
          g = dyr * ConstArrayMap(gp, width);
        } else {
          g = dyr;
        }
        const float meanG = g.mean();
        const float meanGX = (g * xhat).mean();
        ArrayMap(dxp + r * width, width) = rp[r] * (g - meanG - xhat * meanGX);
        if (partial != nullptr) {
          ArrayMap(partial, width) += dyr * xhat;
          ArrayMap(partial + width, width) += dyr;
        }
      }
    };
    if (affine) {
      std::vector<float> sums(2 * width);
      blockColumnSums(ctx, rows, width, width * 16, sums.data(), 2, rowsPass);
      std::copy(sums.begin(), sums.begin() + width, dgamma->flat<float>().data());
      std::copy(sums.begin() + width, sums.end(), dbeta->flat<float>().data());
    } else {
      parallelFor(ctx, rows, width * 12, [&](int64_t r0, int64_t r1) { rowsPass(r0, r1, nullptr); });
    }
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2LayerNormGrad").Device(DEVICE_CPU), LayerNormGradOp);

// ---------------------------------------------------------------------------------------------------------
// GELU, tanh form (PyTorch gelu(approximate="tanh")), of x + bias (bias [width] or empty):
// y = ½·h·(1 + tanh(√(2/π)·(h + 0.044715·h³))), h = x + bias.

namespace {
constexpr float kGeluC = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluA = 0.044715f;

}  // namespace

REGISTER_OP("Vw2BiasGelu")
    .Input("x: float")
    .Input("bias: float")
    .Output("y: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return OkStatus();
    });

class BiasGeluOp : public OpKernel {
 public:
  explicit BiasGeluOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    int64_t rows, width;
    bool hasBias;
    OP_REQUIRES_OK(ctx, lastAxisRows(x.shape(), &rows, &width));
    OP_REQUIRES_OK(ctx, optionalVector(ctx->input(1), width, "bias", &hasBias));
    Tensor* y;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    if (rows == 0) return;
    const float* xp = x.flat<float>().data();
    const float* bp = hasBias ? ctx->input(1).flat<float>().data() : nullptr;
    float* yp = y->flat<float>().data();
    parallelFor(ctx, rows, width * 20, [&](int64_t r0, int64_t r1) {
      Eigen::ArrayXf h(width);
      for (int64_t r = r0; r < r1; r++) {
        h = ConstArrayMap(xp + r * width, width);
        if (bp != nullptr) h += ConstArrayMap(bp, width);
        ArrayMap(yp + r * width, width) = 0.5f * h * (1.f + (kGeluC * (h + kGeluA * h * h * h)).tanh());
      }
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2BiasGelu").Device(DEVICE_CPU), BiasGeluOp);

// dh = dy·(½(1 + t) + ½·h·(1 − t²)·√(2/π)·(1 + 3·0.044715·h²)), t = tanh(...) as above;
// dbias = Σ_rows dh (empty without bias). dx = dh.
REGISTER_OP("Vw2BiasGeluGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("bias: float")
    .Output("dx: float")
    .Output("dbias: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      return OkStatus();
    });

class BiasGeluGradOp : public OpKernel {
 public:
  explicit BiasGeluGradOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    OP_REQUIRES(ctx, dy.shape() == x.shape(),
                errors::InvalidArgument("dy ", dy.shape().DebugString(), " must match x ", x.shape().DebugString()));
    int64_t rows, width;
    bool hasBias;
    OP_REQUIRES_OK(ctx, lastAxisRows(x.shape(), &rows, &width));
    OP_REQUIRES_OK(ctx, optionalVector(ctx->input(2), width, "bias", &hasBias));
    Tensor *dx, *dbias;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({hasBias ? width : 0}), &dbias));
    if (rows == 0) {
      if (hasBias) dbias->flat<float>().setZero();
      return;
    }
    const float* dyp = dy.flat<float>().data();
    const float* xp = x.flat<float>().data();
    const float* bp = hasBias ? ctx->input(2).flat<float>().data() : nullptr;
    float* dxp = dx->flat<float>().data();
    auto rowsPass = [&](int64_t r0, int64_t r1, float* partial) {
      Eigen::ArrayXf h(width), t(width);
      for (int64_t r = r0; r < r1; r++) {
        h = ConstArrayMap(xp + r * width, width);
        if (bp != nullptr) h += ConstArrayMap(bp, width);
        t = (kGeluC * (h + kGeluA * h * h * h)).tanh();
        ArrayMap dxr(dxp + r * width, width);
        dxr = ConstArrayMap(dyp + r * width, width) *
              (0.5f * (1.f + t) + 0.5f * h * (1.f - t * t) * kGeluC * (1.f + 3.f * kGeluA * h * h));
        if (partial != nullptr) ArrayMap(partial, width) += dxr;
      }
    };
    if (hasBias) {
      blockColumnSums(ctx, rows, width, width * 30, dbias->flat<float>().data(), 1, rowsPass);
    } else {
      parallelFor(ctx, rows, width * 30, [&](int64_t r0, int64_t r1) { rowsPass(r0, r1, nullptr); });
    }
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2BiasGeluGrad").Device(DEVICE_CPU), BiasGeluGradOp);

// ---------------------------------------------------------------------------------------------------------
// Multi-head attention core on [B, L, H·dh] activations (heads are column blocks, read through strided
// maps): o = softmax(q kᵀ/√dh, masked) v per batch and head. mask is float "allowed" (1 keep, 0 masked)
// [1|B, Lq, Lk], or empty for none; masked scores get probability exactly 0 and a query row with no
// allowed key outputs zeros (the composite's softmax(s − 1e9·(1 − m))·m gives the same). probs
// [B, H, Lq, Lk] is an output for the backward. Two layouts share one implementation: q, k, v as three
// [B, L, W] tensors (Vw2Attention), or packed as one [B, L, 3W] projection output (Vw2SelfAttention), which
// saves the self-attention's three matmuls becoming one plus its splits and gradient sums.

namespace {
struct AttentionDims {
  int64_t batch, lq, lk, width, heads, headDim, maskBatch;
};

// Where q, k, v (or their gradients) of batch b, head h start: element pointers plus row and batch strides.
template <typename T>
struct QkvLayout {
  T *q, *k, *v;
  int64_t qRow, kvRow, qBatch, kvBatch;
  T* qAt(int64_t b, int64_t h, int64_t headDim) const { return q + b * qBatch + h * headDim; }
  T* kAt(int64_t b, int64_t h, int64_t headDim) const { return k + b * kvBatch + h * headDim; }
  T* vAt(int64_t b, int64_t h, int64_t headDim) const { return v + b * kvBatch + h * headDim; }
};

template <typename T>
QkvLayout<T> separateLayout(T* q, T* k, T* v, const AttentionDims& d) {
  return {q, k, v, d.width, d.width, d.lq * d.width, d.lk * d.width};
}

template <typename T>
QkvLayout<T> packedLayout(T* qkv, const AttentionDims& d) {
  const int64_t row = 3 * d.width;
  return {qkv, qkv + d.width, qkv + 2 * d.width, row, row, d.lq * row, d.lq * row};
}

Status maskDims(const Tensor& mask, AttentionDims* d) {
  d->maskBatch = 0;
  if (mask.NumElements() == 0) return OkStatus();
  if (mask.dims() != 3 || (mask.dim_size(0) != 1 && mask.dim_size(0) != d->batch) || mask.dim_size(1) != d->lq ||
      mask.dim_size(2) != d->lk)
    return errors::InvalidArgument("mask must be [1 or ", d->batch, ", ", d->lq, ", ", d->lk, "], got ",
                                   mask.shape().DebugString());
  d->maskBatch = mask.dim_size(0);
  return OkStatus();
}

Status headSplit(int64_t heads, AttentionDims* d) {
  d->heads = heads;
  if (heads <= 0 || d->width % heads != 0)
    return errors::InvalidArgument("width ", d->width, " is not divisible by heads ", heads);
  d->headDim = d->width / heads;
  return OkStatus();
}

Status separateDims(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, AttentionDims* d) {
  if (q.dims() != 3 || k.dims() != 3 || v.dims() != 3)
    return errors::InvalidArgument("q, k, v must be rank 3 [B, L, heads·headDim], got ", q.shape().DebugString(), ", ",
                                   k.shape().DebugString(), ", ", v.shape().DebugString());
  d->batch = q.dim_size(0);
  d->lq = q.dim_size(1);
  d->lk = k.dim_size(1);
  d->width = q.dim_size(2);
  if (k.dim_size(0) != d->batch || k.dim_size(2) != d->width || v.shape() != k.shape())
    return errors::InvalidArgument("k and v must be [", d->batch, ", Lk, ", d->width, "], got ",
                                   k.shape().DebugString(), " and ", v.shape().DebugString());
  return headSplit(heads, d);
}

Status packedDims(const Tensor& qkv, int64_t heads, AttentionDims* d) {
  if (qkv.dims() != 3 || qkv.dim_size(2) % 3 != 0)
    return errors::InvalidArgument("qkv must be [B, L, 3·heads·headDim], got ", qkv.shape().DebugString());
  d->batch = qkv.dim_size(0);
  d->lq = d->lk = qkv.dim_size(1);
  d->width = qkv.dim_size(2) / 3;
  return headSplit(heads, d);
}

// out = softmax(in·scale) over n entries, or over the allowed ones (allowed[j] != 0) with the rest exactly 0
// and an all-zero row when none is allowed. in and out may be the same row.
void softmaxRow(const float* in, float* out, const float* allowed, int64_t n, float scale) {
  ConstArrayMap x(in, n);
  ArrayMap y(out, n);
  if (allowed == nullptr) {
    y = ((x - x.maxCoeff()) * scale).exp();
  } else {
    // select() keeps both passes vectorised (a per-entry branch made causal rows ~1.8× slower than unmasked ones)
    const auto keep = ConstArrayMap(allowed, n) != 0.f;
    const float mx = keep.select(x, -INFINITY).maxCoeff();
    if (mx == -INFINITY) {
      y.setZero();  // no allowed key: this query sees nothing
      return;
    }
    y = keep.select(((x - mx) * scale).exp(), 0.f);
  }
  y *= 1.f / y.sum();
}

// o (row stride width) and probs from q, k, v in `in`; one (batch, head) pair per task.
void attentionForward(OpKernelContext* ctx, const AttentionDims& d, const QkvLayout<const float>& in, const float* mp,
                      float* op, float* pp) {
  const float scale = 1.f / std::sqrt(static_cast<float>(d.headDim));
  const int64_t cost = d.lq * d.lk * (4 * d.headDim + 20);
  parallelFor(ctx, d.batch * d.heads, cost, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / d.heads, h = t % d.heads;
      ConstStrided Q(in.qAt(b, h, d.headDim), d.lq, d.headDim, Eigen::OuterStride<>(in.qRow));
      ConstStrided K(in.kAt(b, h, d.headDim), d.lk, d.headDim, Eigen::OuterStride<>(in.kvRow));
      ConstStrided V(in.vAt(b, h, d.headDim), d.lk, d.headDim, Eigen::OuterStride<>(in.kvRow));
      Strided O(op + b * d.lq * d.width + h * d.headDim, d.lq, d.headDim, Eigen::OuterStride<>(d.width));
      Strided P(pp + t * d.lq * d.lk, d.lq, d.lk, Eigen::OuterStride<>(d.lk));
      P.noalias() = Q * K.transpose();
      const float* m = mp == nullptr ? nullptr : mp + (d.maskBatch == 1 ? 0 : b) * d.lq * d.lk;
      for (int64_t i = 0; i < d.lq; i++) {
        float* row = pp + t * d.lq * d.lk + i * d.lk;
        softmaxRow(row, row, m == nullptr ? nullptr : m + i * d.lk, d.lk, scale);
      }
      O.noalias() = P * V;
    }
  });
}

// dv = pᵀ do; dp = do vᵀ; ds = p ⊙ (dp − Σ_j p·dp) / √dh; dq = ds k; dk = dsᵀ q (per batch and head).
// Every (batch, head) writes its own column block of dq/dk/dv, so tasks never overlap.
void attentionBackward(OpKernelContext* ctx, const AttentionDims& d, const float* dop, const QkvLayout<const float>& in,
                       const float* pp, const QkvLayout<float>& grad) {
  const float scale = 1.f / std::sqrt(static_cast<float>(d.headDim));
  const int64_t cost = d.lq * d.lk * (8 * d.headDim + 10);
  parallelFor(ctx, d.batch * d.heads, cost, [&](int64_t t0, int64_t t1) {
    RowMajor dS(d.lq, d.lk);
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / d.heads, h = t % d.heads;
      const Eigen::OuterStride<> qs(in.qRow), ks(in.kvRow), gqs(grad.qRow), gks(grad.kvRow);
      ConstStrided dOut(dop + b * d.lq * d.width + h * d.headDim, d.lq, d.headDim, Eigen::OuterStride<>(d.width));
      ConstStrided Q(in.qAt(b, h, d.headDim), d.lq, d.headDim, qs);
      ConstStrided K(in.kAt(b, h, d.headDim), d.lk, d.headDim, ks), V(in.vAt(b, h, d.headDim), d.lk, d.headDim, ks);
      ConstStrided P(pp + t * d.lq * d.lk, d.lq, d.lk, Eigen::OuterStride<>(d.lk));
      Strided dQ(grad.qAt(b, h, d.headDim), d.lq, d.headDim, gqs);
      Strided dK(grad.kAt(b, h, d.headDim), d.lk, d.headDim, gks), dV(grad.vAt(b, h, d.headDim), d.lk, d.headDim, gks);
      dV.noalias() = P.transpose() * dOut;
      dS.noalias() = dOut * V.transpose();  // dP
      for (int64_t i = 0; i < d.lq; i++) {
        auto dp = dS.row(i).array();
        auto p = P.row(i).array();
        const float dot = (p * dp).sum();
        dp = p * (dp - dot) * scale;
      }
      dQ.noalias() = dS * K;
      dK.noalias() = dS.transpose() * Q;
    }
  });
}

Status probsShape(const Tensor& probs, const AttentionDims& d) {
  if (probs.shape() != TensorShape({d.batch, d.heads, d.lq, d.lk}))
    return errors::InvalidArgument("probs must be [", d.batch, ", ", d.heads, ", ", d.lq, ", ", d.lk, "], got ",
                                   probs.shape().DebugString());
  return OkStatus();
}
}  // namespace

REGISTER_OP("Vw2Attention")
    .Input("q: float")
    .Input("k: float")
    .Input("v: float")
    .Input("mask: float")
    .Attr("heads: int")
    .Output("o: float")
    .Output("probs: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->UnknownShapeOfRank(4));
      return OkStatus();
    });

class AttentionOp : public OpKernel {
 public:
  explicit AttentionOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("heads", &heads_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &q = ctx->input(0), &k = ctx->input(1), &v = ctx->input(2), &mask = ctx->input(3);
    AttentionDims d;
    OP_REQUIRES_OK(ctx, separateDims(q, k, v, heads_, &d));
    OP_REQUIRES_OK(ctx, maskDims(mask, &d));
    Tensor *o, *probs;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, q.shape(), &o));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({d.batch, d.heads, d.lq, d.lk}), &probs));
    if (o->NumElements() == 0) return;
    if (d.lk == 0) {
      o->flat<float>().setZero();
      return;
    }
    const auto in = separateLayout(q.flat<float>().data(), k.flat<float>().data(), v.flat<float>().data(), d);
    attentionForward(ctx, d, in, d.maskBatch > 0 ? mask.flat<float>().data() : nullptr, o->flat<float>().data(),
                     probs->flat<float>().data());
  }

 private:
  int64_t heads_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2Attention").Device(DEVICE_CPU), AttentionOp);

REGISTER_OP("Vw2AttentionGrad")
    .Input("do: float")
    .Input("q: float")
    .Input("k: float")
    .Input("v: float")
    .Input("probs: float")
    .Attr("heads: int")
    .Output("dq: float")
    .Output("dk: float")
    .Output("dv: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return OkStatus();
    });

class AttentionGradOp : public OpKernel {
 public:
  explicit AttentionGradOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("heads", &heads_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dO = ctx->input(0), &q = ctx->input(1), &k = ctx->input(2), &v = ctx->input(3),
                 &probs = ctx->input(4);
    AttentionDims d;
    OP_REQUIRES_OK(ctx, separateDims(q, k, v, heads_, &d));
    OP_REQUIRES(ctx, dO.shape() == q.shape(), errors::InvalidArgument("do must match q, got ", dO.shape().DebugString()));
    OP_REQUIRES_OK(ctx, probsShape(probs, d));
    Tensor *dq, *dk, *dv;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, q.shape(), &dq));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, k.shape(), &dk));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, v.shape(), &dv));
    if (d.lq == 0 || d.lk == 0) {
      dq->flat<float>().setZero(), dk->flat<float>().setZero(), dv->flat<float>().setZero();
      return;
    }
    const auto in = separateLayout(q.flat<float>().data(), k.flat<float>().data(), v.flat<float>().data(), d);
    const auto grad = separateLayout(dq->flat<float>().data(), dk->flat<float>().data(), dv->flat<float>().data(), d);
    attentionBackward(ctx, d, dO.flat<float>().data(), in, probs.flat<float>().data(), grad);
  }

 private:
  int64_t heads_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2AttentionGrad").Device(DEVICE_CPU), AttentionGradOp);

// Self-attention on one packed projection qkv [B, L, 3W] (columns: q | k | v, heads inside each) → o [B, L, W].
REGISTER_OP("Vw2SelfAttention")
    .Input("qkv: float")
    .Input("mask: float")
    .Attr("heads: int")
    .Output("o: float")
    .Output("probs: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->UnknownShapeOfRank(3));
      c->set_output(1, c->UnknownShapeOfRank(4));
      return OkStatus();
    });

class SelfAttentionOp : public OpKernel {
 public:
  explicit SelfAttentionOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("heads", &heads_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &qkv = ctx->input(0), &mask = ctx->input(1);
    AttentionDims d;
    OP_REQUIRES_OK(ctx, packedDims(qkv, heads_, &d));
    OP_REQUIRES_OK(ctx, maskDims(mask, &d));
    Tensor *o, *probs;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({d.batch, d.lq, d.width}), &o));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({d.batch, d.heads, d.lq, d.lk}), &probs));
    if (o->NumElements() == 0) return;
    attentionForward(ctx, d, packedLayout(qkv.flat<float>().data(), d),
                     d.maskBatch > 0 ? mask.flat<float>().data() : nullptr, o->flat<float>().data(),
                     probs->flat<float>().data());
  }

 private:
  int64_t heads_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2SelfAttention").Device(DEVICE_CPU), SelfAttentionOp);

REGISTER_OP("Vw2SelfAttentionGrad")
    .Input("do: float")
    .Input("qkv: float")
    .Input("probs: float")
    .Attr("heads: int")
    .Output("dqkv: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      return OkStatus();
    });

class SelfAttentionGradOp : public OpKernel {
 public:
  explicit SelfAttentionGradOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("heads", &heads_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dO = ctx->input(0), &qkv = ctx->input(1), &probs = ctx->input(2);
    AttentionDims d;
    OP_REQUIRES_OK(ctx, packedDims(qkv, heads_, &d));
    OP_REQUIRES(ctx, dO.shape() == TensorShape({d.batch, d.lq, d.width}),
                errors::InvalidArgument("do must be [", d.batch, ", ", d.lq, ", ", d.width, "], got ", dO.shape().DebugString()));
    OP_REQUIRES_OK(ctx, probsShape(probs, d));
    Tensor* dqkv;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, qkv.shape(), &dqkv));
    if (dqkv->NumElements() == 0) return;
    attentionBackward(ctx, d, dO.flat<float>().data(), packedLayout(qkv.flat<float>().data(), d),
                      probs.flat<float>().data(), packedLayout(dqkv->flat<float>().data(), d));
  }

 private:
  int64_t heads_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2SelfAttentionGrad").Device(DEVICE_CPU), SelfAttentionGradOp);

// ---------------------------------------------------------------------------------------------------------
// The softmax part of attention alone, for heads too wide for the whole-attention op (TF's batched matmuls
// do the products): probs = softmax(scores·scale, masked) over the last axis of scores [B, H, Lq, Lk], mask
// float "allowed" [1|B, Lq, Lk] or empty, same masking semantics as Vw2Attention.

REGISTER_OP("Vw2MaskedSoftmax")
    .Input("scores: float")
    .Input("mask: float")
    .Attr("scale: float")
    .Output("probs: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return OkStatus();
    });

class MaskedSoftmaxOp : public OpKernel {
 public:
  explicit MaskedSoftmaxOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("scale", &scale_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &scores = ctx->input(0), &mask = ctx->input(1);
    OP_REQUIRES(ctx, scores.dims() == 4, errors::InvalidArgument("scores must be [B, H, Lq, Lk], got ", scores.shape().DebugString()));
    AttentionDims d;
    d.batch = scores.dim_size(0);
    d.heads = scores.dim_size(1);
    d.lq = scores.dim_size(2);
    d.lk = scores.dim_size(3);
    OP_REQUIRES_OK(ctx, maskDims(mask, &d));
    Tensor* probs;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, scores.shape(), &probs));
    const int64_t rows = d.batch * d.heads * d.lq;
    if (rows == 0 || d.lk == 0) return;
    const float* sp = scores.flat<float>().data();
    const float* mp = d.maskBatch > 0 ? mask.flat<float>().data() : nullptr;
    float* pp = probs->flat<float>().data();
    const float scale = scale_;
    parallelFor(ctx, rows, d.lk * 20, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / (d.heads * d.lq), i = r % d.lq;
        const float* allowed = mp == nullptr ? nullptr : mp + ((d.maskBatch == 1 ? 0 : b) * d.lq + i) * d.lk;
        softmaxRow(sp + r * d.lk, pp + r * d.lk, allowed, d.lk, scale);
      }
    });
  }

 private:
  float scale_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2MaskedSoftmax").Device(DEVICE_CPU), MaskedSoftmaxOp);

// dscores = scale · p ⊙ (dp − Σ_j p·dp) per row (masked entries have p = 0, so they get 0).
REGISTER_OP("Vw2MaskedSoftmaxGrad")
    .Input("dprobs: float")
    .Input("probs: float")
    .Attr("scale: float")
    .Output("dscores: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      return OkStatus();
    });

class MaskedSoftmaxGradOp : public OpKernel {
 public:
  explicit MaskedSoftmaxGradOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("scale", &scale_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dprobs = ctx->input(0), &probs = ctx->input(1);
    OP_REQUIRES(ctx, dprobs.shape() == probs.shape() && probs.dims() >= 1,
                errors::InvalidArgument("dprobs ", dprobs.shape().DebugString(), " must match probs ", probs.shape().DebugString()));
    Tensor* dscores;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, probs.shape(), &dscores));
    int64_t rows, width;
    OP_REQUIRES_OK(ctx, lastAxisRows(probs.shape(), &rows, &width));
    if (rows == 0) return;
    const float* dp = dprobs.flat<float>().data();
    const float* pp = probs.flat<float>().data();
    float* out = dscores->flat<float>().data();
    const float scale = scale_;
    parallelFor(ctx, rows, width * 6, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        ConstArrayMap g(dp + r * width, width), p(pp + r * width, width);
        ArrayMap(out + r * width, width) = scale * p * (g - (p * g).sum());
      }
    });
  }

 private:
  float scale_;
};
REGISTER_KERNEL_BUILDER(Name("Vw2MaskedSoftmaxGrad").Device(DEVICE_CPU), MaskedSoftmaxGradOp);
