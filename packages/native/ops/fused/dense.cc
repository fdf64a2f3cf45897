// Linear layer y = x·W + b over the last axis, forward and backward as one op each (see docs/native-compute.md,
// "Dense").
//
// Why not TF's MatMul: on the mini presets' shapes (640 rows × 48–144 features) oneDNN spends ~150–200 µs per
// call, several times the arithmetic, and tfjs wraps each Linear in reshapes, a bias add and (backward) a
// column sum, each another eager op. Eigen's GEMM (the same library TF's own non-oneDNN MatMul uses, here as
// plain matrix products over maps of the tensors' memory) does 640×48×144 in ~90 µs on one core, and splitting
// rows across the intra-op pool scales it to the large shapes. Inputs of any rank are read as [rows, features]
// without copies; the bias is added in the same pass and the backward returns dx, dW and db together. Several
// weights may share one x (a self-attention's q | k | v): their outputs are column blocks of one y.
#include <algorithm>
#include <functional>
#include <vector>

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

// Below this many multiply-adds a product runs on the calling thread. Measured on the 2-core box (op calls,
// median µs forward / backward, 15:25, load ~1), with cut-offs 2²⁰ / 3·2²⁰ / never: 640×48×48 (1.4 Mi MACs)
// 50/162, 39/83, 39/81 — the pool hand-off costs more than the work; 640×48×144 (4.2 Mi) 109/206, 102/177,
// 96/206; 768×64×256 (12 Mi) 152/387, 157/389, 257/543 — splitting pays from a few Mi on.
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

// The weights of one call: N blocks W_j [in, out_j] whose outputs are consecutive column blocks of y (a packed
// q | k | v projection is three blocks: no concatenated weight per step, no split of its gradient), each with
// its bias b_j [out_j], or all biases empty.
struct DenseBlocks {
  int64_t rows = 0, in = 0, out = 0;  // out = Σ out_j
  bool hasBias = false;
  std::vector<int64_t> width, offset;  // out_j and its first column in y
};

// Reads the op's "w" and "b" input lists and checks them against x.
Status denseBlocks(OpKernelContext* ctx, const Tensor& x, OpInputList* wsOut, OpInputList* bsOut, DenseBlocks* d) {
  TF_RETURN_IF_ERROR(ctx->input_list("w", wsOut));
  TF_RETURN_IF_ERROR(ctx->input_list("b", bsOut));
  const OpInputList& ws = *wsOut;
  const OpInputList& bs = *bsOut;
  if (x.dims() < 1) return errors::InvalidArgument("x must have rank >= 1, got a scalar");
  if (ws.size() < 1) return errors::InvalidArgument("needs at least one weight");
  d->in = x.dim_size(x.dims() - 1);
  d->rows = 1;
  for (int i = 0; i < x.dims() - 1; i++) d->rows *= x.dim_size(i);
  int64_t withBias = 0;
  for (int j = 0; j < ws.size(); j++) {
    const Tensor& w = ws[j];
    if (w.dims() != 2 || w.dim_size(0) != d->in)
      return errors::InvalidArgument("w[", j, "] must be [", d->in, ", out] (x ", x.shape().DebugString(), "), got ",
                                     w.shape().DebugString());
    d->offset.push_back(d->out);
    d->width.push_back(w.dim_size(1));
    d->out += w.dim_size(1);
    const Tensor& b = bs[j];
    if (b.NumElements() > 0) {
      if (b.dims() != 1 || b.dim_size(0) != w.dim_size(1))
        return errors::InvalidArgument("b[", j, "] must be [", w.dim_size(1), "] or empty, got ", b.shape().DebugString());
      withBias++;
    }
  }
  if (withBias != 0 && withBias != ws.size()) return errors::InvalidArgument("either every weight has a bias or none has");
  d->hasBias = withBias > 0;
  return OkStatus();
}

TensorShape withLastAxis(const TensorShape& shape, int64_t last) {
  TensorShape result = shape;
  result.set_dim(result.dims() - 1, last);
  return result;
}

Status denseShapeFn(InferenceContext* c) {
  int n;
  TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
  shape_inference::DimensionHandle out = c->MakeDim(0);
  for (int j = 0; j < n; j++) TF_RETURN_IF_ERROR(c->Add(out, c->Dim(c->input(1 + j), 1), &out));
  ShapeHandle y;
  TF_RETURN_IF_ERROR(c->ReplaceDim(c->input(0), -1, out, &y));
  c->set_output(0, y);
  return OkStatus();
}

}  // namespace

REGISTER_OP("Vw2Dense")
    .Attr("N: int >= 1")
    .Input("x: float")
    .Input("w: N * float")
    .Input("b: N * float")
    .Output("y: float")
    .SetShapeFn(denseShapeFn);

class DenseOp : public OpKernel {
 public:
  explicit DenseOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OpInputList ws, bs;
    DenseBlocks d;
    OP_REQUIRES_OK(ctx, denseBlocks(ctx, x, &ws, &bs, &d));
    Tensor* y;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, withLastAxis(x.shape(), d.out), &y));
    if (d.rows == 0 || d.out == 0) return;
    float* yp = y->flat<float>().data();
    const float* xp = x.flat<float>().data();
    const int64_t parts = partsFor(ctx, d.rows * d.in * d.out, d.rows);
    forParts(ctx, parts, [&](int64_t p) {
      const auto [r0, r1] = partRange(d.rows, parts, p);
      if (r0 >= r1) return;
      const ConstMatrixMap X(xp + r0 * d.in, r1 - r0, d.in);
      for (size_t j = 0; j < d.width.size(); j++) {
        ColumnBlock Y(yp + r0 * d.out + d.offset[j], r1 - r0, d.width[j], Eigen::OuterStride<>(d.out));
        if (d.hasBias) {
          Y.rowwise() = RowVector(bs[j].flat<float>().data(), d.width[j]);
        } else {
          Y.setZero();
        }
        if (d.in > 0) Y.noalias() += X * ConstMatrixMap(ws[j].flat<float>().data(), d.in, d.width[j]);
      }
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2Dense").Device(DEVICE_CPU), DenseOp);

// dx = Σ_j dy_j·W_jᵀ ([..., in], x's shape), dW_j = xᵀ·dy_j, db_j = Σ_rows dy_j (or empty without biases);
// dy_j is y's column block j.
REGISTER_OP("Vw2DenseGrad")
    .Attr("N: int >= 1")
    .Input("dy: float")
    .Input("x: float")
    .Input("w: N * float")
    .Input("b: N * float")
    .Output("dx: float")
    .Output("dw: N * float")
    .Output("db: N * float")
    .SetShapeFn([](InferenceContext* c) {
      int n;
      TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
      c->set_output(0, c->input(1));
      for (int j = 0; j < n; j++) {
        c->set_output(1 + j, c->input(2 + j));
        c->set_output(1 + n + j, c->input(2 + n + j));
      }
      return OkStatus();
    });

class DenseGradOp : public OpKernel {
 public:
  explicit DenseGradOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    OpInputList ws, bs;
    DenseBlocks d;
    OP_REQUIRES_OK(ctx, denseBlocks(ctx, x, &ws, &bs, &d));
    OP_REQUIRES(ctx, dy.shape() == withLastAxis(x.shape(), d.out),
                errors::InvalidArgument("dy ", dy.shape().DebugString(), " must be x's shape with last axis ", d.out));
    const int64_t n = d.width.size();
    Tensor* dx;
    OpOutputList dws, dbs;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->output_list("dw", &dws));
    OP_REQUIRES_OK(ctx, ctx->output_list("db", &dbs));
    std::vector<float*> dwp(n), dbp(n);
    for (int64_t j = 0; j < n; j++) {
      Tensor *dw, *db;
      OP_REQUIRES_OK(ctx, dws.allocate(j, ws[j].shape(), &dw));
      OP_REQUIRES_OK(ctx, dbs.allocate(j, TensorShape({d.hasBias ? d.width[j] : 0}), &db));
      dwp[j] = dw->flat<float>().data();
      dbp[j] = db->flat<float>().data();
    }
    float* dxp = dx->flat<float>().data();
    if (d.rows == 0 || d.out == 0 || d.in == 0) {
      dx->flat<float>().setZero();
      for (int64_t j = 0; j < n; j++) {
        MatrixMap(dwp[j], d.in, d.width[j]).setZero();
        if (d.hasBias) Eigen::Map<Eigen::RowVectorXf>(dbp[j], d.width[j]).setZero();
      }
      return;
    }
    const ConstMatrixMap DY(dy.flat<float>().data(), d.rows, d.out);
    const ConstMatrixMap X(x.flat<float>().data(), d.rows, d.in);
    const int64_t macs = d.rows * d.in * d.out;
    // Work items, each writing only its own memory (no reductions across threads): dx by row blocks, and each
    // dW_j by blocks of its longer axis.
    struct Item {
      int64_t block;        // -1: a dx row range; else the weight index
      int64_t start, end;   // rows of dx, or columns / rows of dW_j
      bool byColumns;
    };
    std::vector<Item> items;
    const int64_t dxParts = partsFor(ctx, macs, d.rows);
    for (int64_t p = 0; p < dxParts; p++) {
      const auto [r0, r1] = partRange(d.rows, dxParts, p);
      if (r0 < r1) items.push_back({-1, r0, r1, false});
    }
    for (int64_t j = 0; j < n; j++) {
      const bool byColumns = d.width[j] >= d.in;
      const int64_t extent = byColumns ? d.width[j] : d.in;
      const int64_t parts = partsFor(ctx, d.rows * d.in * d.width[j], extent);
      for (int64_t p = 0; p < parts; p++) {
        const auto [c0, c1] = partRange(extent, parts, p);
        if (c0 < c1) items.push_back({j, c0, c1, byColumns});
      }
    }
    auto runItem = [&](int64_t i) {
      const Item& item = items[i];
      if (item.block < 0) {
        MatrixMap DX(dxp + item.start * d.in, item.end - item.start, d.in);
        for (int64_t j = 0; j < n; j++) {
          const ConstColumnBlock DYj(DY.data() + item.start * d.out + d.offset[j], item.end - item.start, d.width[j],
                                     Eigen::OuterStride<>(d.out));
          const ConstMatrixMap Wj(ws[j].flat<float>().data(), d.in, d.width[j]);
          if (j == 0) {
            DX.noalias() = DYj * Wj.transpose();
          } else {
            DX.noalias() += DYj * Wj.transpose();
          }
        }
        return;
      }
      const int64_t j = item.block, len = item.end - item.start;
      if (item.byColumns) {
        ColumnBlock(dwp[j] + item.start, d.in, len, Eigen::OuterStride<>(d.width[j])).noalias() =
            X.transpose() * ConstColumnBlock(DY.data() + d.offset[j] + item.start, d.rows, len, Eigen::OuterStride<>(d.out));
      } else {
        MatrixMap(dwp[j] + item.start * d.width[j], len, d.width[j]).noalias() =
            ConstColumnBlock(X.data() + item.start, d.rows, len, Eigen::OuterStride<>(d.in)).transpose() *
            ConstColumnBlock(DY.data() + d.offset[j], d.rows, d.width[j], Eigen::OuterStride<>(d.out));
      }
    };
    if (macs < kParallelMacs) {
      for (size_t i = 0; i < items.size(); i++) runItem(i);
    } else {
      forParts(ctx, items.size(), runItem);
    }
    if (d.hasBias) {
      const Eigen::RowVectorXf sums = DY.colwise().sum();
      for (int64_t j = 0; j < n; j++)
        Eigen::Map<Eigen::RowVectorXf>(dbp[j], d.width[j]) = sums.segment(d.offset[j], d.width[j]);
    }
  }
};
REGISTER_KERNEL_BUILDER(Name("Vw2DenseGrad").Device(DEVICE_CPU), DenseGradOp);
