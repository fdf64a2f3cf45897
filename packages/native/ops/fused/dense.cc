// Linear layer y = x·W + b over the last axis, forward and backward as one op each (see docs/native-compute.md,
// "Dense").
//
// Why not TF's MatMul: on the mini presets' shapes (640 rows × 48–144 features) oneDNN spends ~150–200 µs per
// call, several times the arithmetic, and tfjs wraps each Linear in reshapes, a bias add and (backward) a
// column sum, each another eager op. Eigen's GEMM (the same library TF's own non-oneDNN MatMul uses, here as
// plain matrix products over maps of the tensors' memory) does 640×48×144 in ~90 µs on one core, and splitting
// rows across the intra-op pool scales it to the large shapes. Inputs of any rank are read as [rows, features]
// without copies; the bias is added in the same pass and the backward returns dx, dW and db together.
#include <algorithm>
#include <functional>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;
using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using ColumnBlock = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstColumnBlock = Eigen::Map<const Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using RowVector = Eigen::Map<const Eigen::RowVectorXf>;

// Below this many multiply-adds a product runs on the calling thread: measured on the 2-core box, handing a
// 640×48×48 product (1.5 M) to the pool cost more than it saved, while 640×48×144 (4.4 M) gained ~40 %.
constexpr int64_t kParallelMacs = 3 << 20;

// Runs fn(part) for part in [0, parts) on the intra-op pool (parts > 1) or inline.
void forParts(OpKernelContext* ctx, int64_t parts, const std::function<void(int64_t)>& fn) {
  if (parts <= 1) {
    fn(0);
    return;
  }
  // a cost this large makes ParallelFor give every part its own shard
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(parts, int64_t{1} << 30, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) fn(p);
  });
}

// How many parts to split `extent` (rows or columns) into for a product of `macs` multiply-adds: one per
// thread when it is worth it, never parts thinner than 8 (GEBP's register blocks).
int64_t partsFor(OpKernelContext* ctx, int64_t macs, int64_t extent) {
  if (macs < kParallelMacs) return 1;
  const int64_t threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  return std::max<int64_t>(1, std::min<int64_t>(threads, extent / 8));
}

// [start, end) of part p of n equal parts of extent.
inline std::pair<int64_t, int64_t> partRange(int64_t extent, int64_t parts, int64_t p) {
  const int64_t per = (extent + parts - 1) / parts;
  return {std::min(extent, p * per), std::min(extent, (p + 1) * per)};
}

Status denseShapes(const Tensor& x, const Tensor& w, int64_t* rows, int64_t* in, int64_t* out) {
  if (w.dims() != 2) return errors::InvalidArgument("w must be [in, out], got ", w.shape().DebugString());
  if (x.dims() < 1) return errors::InvalidArgument("x must have rank >= 1, got a scalar");
  *in = w.dim_size(0);
  *out = w.dim_size(1);
  if (x.dim_size(x.dims() - 1) != *in)
    return errors::InvalidArgument("x ", x.shape().DebugString(), " has last axis ", x.dim_size(x.dims() - 1),
                                   ", w ", w.shape().DebugString(), " expects ", *in);
  *rows = 1;
  for (int d = 0; d < x.dims() - 1; d++) *rows *= x.dim_size(d);
  return OkStatus();
}

// b is [out] or empty (no bias).
Status optionalBias(const Tensor& b, int64_t out, bool* present) {
  *present = b.NumElements() > 0;
  if (*present && (b.dims() != 1 || b.dim_size(0) != out))
    return errors::InvalidArgument("b must be [", out, "] or empty, got ", b.shape().DebugString());
  return OkStatus();
}

TensorShape withLastAxis(const TensorShape& shape, int64_t last) {
  TensorShape result = shape;
  result.set_dim(result.dims() - 1, last);
  return result;
}

}  // namespace

REGISTER_OP("Vw2Dense")
    .Input("x: float")
    .Input("w: float")
    .Input("b: float")
    .Output("y: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle y;
      TF_RETURN_IF_ERROR(c->ReplaceDim(c->input(0), -1, c->Dim(c->input(1), 1), &y));
      c->set_output(0, y);
      return OkStatus();
    });

class DenseOp : public OpKernel {
 public:
  explicit DenseOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& w = ctx->input(1);
    int64_t rows, in, out;
    bool hasBias;
    OP_REQUIRES_OK(ctx, denseShapes(x, w, &rows, &in, &out));
    OP_REQUIRES_OK(ctx, optionalBias(ctx->input(2), out, &hasBias));
    Tensor* y;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, withLastAxis(x.shape(), out), &y));
    if (rows == 0 || out == 0) return;
    float* yp = y->flat<float>().data();
    const float* xp = x.flat<float>().data();
    ConstMatrixMap W(w.flat<float>().data(), in, out);
    const float* bp = hasBias ? ctx->input(2).flat<float>().data() : nullptr;
    const int64_t parts = partsFor(ctx, rows * in * out, rows);
    forParts(ctx, parts, [&](int64_t p) {
      const auto [r0, r1] = partRange(rows, parts, p);
      if (r0 >= r1) return;
      MatrixMap Y(yp + r0 * out, r1 - r0, out);
      if (bp != nullptr) {
        Y.rowwise() = RowVector(bp, out);
      } else {
        Y.setZero();
      }
      if (in > 0) Y.noalias() += ConstMatrixMap(xp + r0 * in, r1 - r0, in) * W;
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2Dense").Device(DEVICE_CPU), DenseOp);

// dx = dy·Wᵀ ([..., in], x's shape), dW = xᵀ·dy ([in, out]), db = Σ_rows dy ([out], or [0] when b is empty).
REGISTER_OP("Vw2DenseGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("w: float")
    .Input("b: float")
    .Output("dx: float")
    .Output("dw: float")
    .Output("db: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return OkStatus();
    });

class DenseGradOp : public OpKernel {
 public:
  explicit DenseGradOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    const Tensor& w = ctx->input(2);
    int64_t rows, in, out;
    bool hasBias;
    OP_REQUIRES_OK(ctx, denseShapes(x, w, &rows, &in, &out));
    OP_REQUIRES_OK(ctx, optionalBias(ctx->input(3), out, &hasBias));
    OP_REQUIRES(ctx, dy.shape() == withLastAxis(x.shape(), out),
                errors::InvalidArgument("dy ", dy.shape().DebugString(), " must be x's shape with last axis ", out));
    Tensor *dx, *dw, *db;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, w.shape(), &dw));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({hasBias ? out : 0}), &db));
    MatrixMap dW(dw->flat<float>().data(), in, out);
    if (rows == 0 || out == 0) {
      dx->flat<float>().setZero();
      dW.setZero();
      if (hasBias) db->flat<float>().setZero();
      return;
    }
    ConstMatrixMap DY(dy.flat<float>().data(), rows, out);
    ConstMatrixMap X(x.flat<float>().data(), rows, in);
    ConstMatrixMap W(w.flat<float>().data(), in, out);
    const int64_t macs = rows * in * out;
    // dx by row blocks, dW by blocks of its longer axis: each part writes its own block, no reductions
    const int64_t dxParts = partsFor(ctx, macs, rows);
    const bool dwByColumns = out >= in;
    const int64_t dwParts = partsFor(ctx, macs, dwByColumns ? out : in);
    float* dxp = dx->flat<float>().data();
    forParts(ctx, dxParts + dwParts, [&](int64_t p) {
      if (p < dxParts) {
        const auto [r0, r1] = partRange(rows, dxParts, p);
        if (r0 < r1 && in > 0) MatrixMap(dxp + r0 * in, r1 - r0, in).noalias() = DY.middleRows(r0, r1 - r0) * W.transpose();
        return;
      }
      const auto [c0, c1] = partRange(dwByColumns ? out : in, dwParts, p - dxParts);
      if (c0 >= c1 || in == 0) return;
      if (dwByColumns) {
        ColumnBlock(dW.data() + c0, in, c1 - c0, Eigen::OuterStride<>(out)).noalias() =
            X.transpose() * ConstColumnBlock(DY.data() + c0, rows, c1 - c0, Eigen::OuterStride<>(out));
      } else {
        dW.middleRows(c0, c1 - c0).noalias() =
            ConstColumnBlock(X.data() + c0, rows, c1 - c0, Eigen::OuterStride<>(in)).transpose() * DY;
      }
    });
    if (hasBias) Eigen::Map<Eigen::RowVectorXf>(db->flat<float>().data(), out) = DY.colwise().sum();
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2DenseGrad").Device(DEVICE_CPU), DenseGradOp);
