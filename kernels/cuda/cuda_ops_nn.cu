/* cuda_ops_nn.cu: softmax, layer norm, dropout, embedding, index_select,
 * gather and the losses of the CUDA backend (see cuda_ops.h).
 *
 * Every kernel mirrors its CPU twin (kernels/cpu/cpu_ops.inc) operation by
 * operation, in the same precision, so that results agree to rounding:
 * row reductions run one block per row (grid-stride over rows) with a
 * warp-shuffle block reduction, and sums are kept in T where the CPU keeps
 * them in T and in double where it uses double (the loss totals). Float
 * kernels take FSQ_F64 as double and any other dtype as float, as the CPU
 * dispatcher does. */
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_math.cuh"

#include <math.h>

namespace {

constexpr int kThreads = 256;         /* elementwise block size */
constexpr int64_t kMaxBlocks = 65536; /* grid cap; kernels grid-stride past it */

/* ---- launch shapes ---------------------------------------------------------- */

unsigned flat_grid(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

unsigned row_grid(int64_t rows, int64_t cap = kMaxBlocks) {
  return (unsigned)(rows < cap ? rows : cap);
}

/* Threads for one block per row: enough to cover short rows (attention over
 * a few dozen keys) without idling, up to 512 for vocabulary-sized rows.
 * Always a multiple of 32, which block_reduce relies on. */
int row_threads(int64_t s) {
  int t = 32;
  while (t < s && t < 512) t <<= 1;
  return t;
}

__device__ __forceinline__ int64_t grid_tid() {
  return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return (int64_t)gridDim.x * blockDim.x; }

/* ---- block reductions -------------------------------------------------------- */

struct SumOp {
  template <typename A> __device__ A operator()(A a, A b) const { return a + b; }
};
/* The CPU's comparison (x > m ? x : m), not fmax. */
struct MaxOp {
  template <typename A> __device__ A operator()(A a, A b) const { return a > b ? a : b; }
};

template <typename A, typename Op> __device__ A warp_reduce(A v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Reduces v over the (1-D, multiple-of-32) block; every thread gets the
 * result. Each warp folds the per-warp partials itself, in the same order,
 * so all threads hold bitwise the same value. Safe to call back to back:
 * the first barrier waits for the previous call's readers of buf. */
template <typename A, typename Op> __device__ A block_reduce(A v, Op op, A identity) {
  __shared__ A buf[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = (blockDim.x + 31) >> 5;
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  v = lane < nwarps ? buf[lane] : identity;
  return warp_reduce(v, op);
}

template <typename A> __device__ A block_sum(A v) { return block_reduce(v, SumOp(), (A)0); }
template <typename A> __device__ A block_max(A v) {
  return block_reduce(v, MaxOp(), (A)-INFINITY);
}

/* ---- softmax ----------------------------------------------------------------- */

/* One block per row. Keys j >= limit (causal) or with mask[b, j] set are
 * excluded; as on the CPU, a row whose max is -inf is "fully masked". */
template <typename T>
__global__ void softmax_kernel(int64_t rows, int64_t s, T *y, const T *x, const uint8_t *mask,
                               int64_t rows_per_batch, int64_t t_len, int causal, int use_log) {
  const T ninf = (T)-INFINITY;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * s;
    T *yr = y + r * s;
    const uint8_t *mr = mask ? mask + (r / rows_per_batch) * s : nullptr;
    int64_t limit = causal ? (r % t_len) + (s - t_len) + 1 : s;
    limit = limit > s ? s : (limit < 0 ? 0 : limit);
    T mx = ninf;
    for (int64_t j = threadIdx.x; j < limit; j += blockDim.x)
      if (!(mr && mr[j]) && xr[j] > mx) mx = xr[j];
    mx = block_max(mx);
    if (mx == ninf) { /* nothing to attend to (block-uniform branch) */
      for (int64_t j = threadIdx.x; j < s; j += blockDim.x) yr[j] = use_log ? ninf : (T)0;
      continue;
    }
    T sum = 0;
    for (int64_t j = threadIdx.x; j < limit; j += blockDim.x) {
      T e = mr && mr[j] ? (T)0 : fsq_cu_exp(xr[j] - mx);
      if (!use_log) yr[j] = e; /* the CPU stores e, then scales it */
      sum += e;
    }
    sum = block_sum(sum);
    if (use_log) {
      T lse = mx + fsq_cu_log(sum);
      for (int64_t j = threadIdx.x; j < limit; j += blockDim.x)
        yr[j] = mr && mr[j] ? ninf : xr[j] - lse;
    } else {
      T inv = (T)1 / sum;
      for (int64_t j = threadIdx.x; j < limit; j += blockDim.x) yr[j] *= inv;
    }
    for (int64_t j = limit + threadIdx.x; j < s; j += blockDim.x) yr[j] = use_log ? ninf : (T)0;
  }
}

template <typename T>
__global__ void softmax_backward_kernel(int64_t rows, int64_t s, T *dx, const T *dy, const T *y,
                                        int use_log) {
  const T ninf = (T)-INFINITY;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T *dxr = dx + r * s;
    const T *dyr = dy + r * s, *yr = y + r * s;
    T dot = 0;
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x)
      dot += use_log ? (yr[j] != ninf ? dyr[j] : (T)0) : dyr[j] * yr[j];
    dot = block_sum(dot);
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x) {
      if (use_log)
        dxr[j] += yr[j] != ninf ? dyr[j] - fsq_cu_exp(yr[j]) * dot : (T)0;
      else
        dxr[j] += yr[j] * (dyr[j] - dot);
    }
  }
}

template <typename T>
void softmax_launch(int64_t rows, int64_t s, void *y, const void *x, const uint8_t *mask,
                    int64_t rows_per_batch, int64_t t_len, int causal, int use_log) {
  if (rows <= 0 || s <= 0) return;
  softmax_kernel<T><<<row_grid(rows), row_threads(s)>>>(rows, s, (T *)y, (const T *)x, mask,
                                                         rows_per_batch, t_len, causal, use_log);
  fsq_cuda_k_record(cudaSuccess, "softmax");
}

template <typename T>
void softmax_backward_launch(int64_t rows, int64_t s, void *dx, const void *dy, const void *y,
                             int use_log) {
  if (rows <= 0 || s <= 0) return;
  softmax_backward_kernel<T><<<row_grid(rows), row_threads(s)>>>(
      rows, s, (T *)dx, (const T *)dy, (const T *)y, use_log);
  fsq_cuda_k_record(cudaSuccess, "softmax_backward");
}

/* ---- layer norm -------------------------------------------------------------- */

/* Two passes as on the CPU: mean, then the biased variance of x - mean;
 * rstd = 1 / sqrt(var + eps) (no rsqrt: it is not correctly rounded). */
template <typename T>
__global__ void layer_norm_kernel(int64_t rows, int64_t c, T *y, T *mean, T *rstd, const T *x,
                                  const T *w, const T *b, double eps) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * c;
    T *yr = y + r * c;
    T m = 0, v = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m += xr[j];
    m = block_sum(m) / (T)c;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) v += (xr[j] - m) * (xr[j] - m);
    v = block_sum(v) / (T)c;
    T rs = (T)1 / fsq_cu_sqrt(v + (T)eps);
    if (threadIdx.x == 0) {
      if (mean) mean[r] = m;
      if (rstd) rstd[r] = rs;
    }
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      T o = (xr[j] - m) * rs;
      if (w) o *= w[j];
      if (b) o += b[j];
      yr[j] = o;
    }
  }
}

/* dx += rs * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w. */
template <typename T>
__global__ void layer_norm_dx_kernel(int64_t rows, int64_t c, T *dx, const T *dy, const T *x,
                                     const T *w, const T *mean, const T *rstd) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * c, *dyr = dy + r * c;
    T *dxr = dx + r * c;
    T m = mean[r], rs = rstd[r], s1 = 0, s2 = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      T g = w ? dyr[j] * w[j] : dyr[j];
      s1 += g;
      s2 += g * (xr[j] - m) * rs;
    }
    s1 = block_sum(s1) / (T)c;
    s2 = block_sum(s2) / (T)c;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      T g = w ? dyr[j] * w[j] : dyr[j];
      dxr[j] += rs * (g - s1 - (xr[j] - m) * rs * s2);
    }
  }
}

/* dw[j] += sum_r dy[r, j] * xhat[r, j], db[j] += sum_r dy[r, j]: a block
 * owns 32 columns (coalesced) and one slice of rows; its 8 thread rows are
 * folded in shared memory, and the slices meet through atomicAdd. */
constexpr int kColTile = 32, kRowTile = 8;

template <typename T>
__global__ void layer_norm_dwdb_kernel(int64_t rows, int64_t c, T *dw, T *db, const T *dy,
                                       const T *x, const T *mean, const T *rstd) {
  __shared__ T sw[kRowTile][kColTile + 1], sb[kRowTile][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = (int64_t)blockIdx.x * kColTile + tx;
  T aw = 0, ab = 0;
  if (col < c)
    for (int64_t r = (int64_t)blockIdx.y * kRowTile + ty; r < rows;
         r += (int64_t)gridDim.y * kRowTile) {
      T g = dy[r * c + col];
      if (dw) aw += g * (x[r * c + col] - mean[r]) * rstd[r];
      ab += g;
    }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty != 0 || col >= c) return;
  for (int k = 1; k < kRowTile; k++) {
    aw += sw[k][tx];
    ab += sb[k][tx];
  }
  if (dw) atomicAdd(dw + col, aw);
  if (db) atomicAdd(db + col, ab);
}

template <typename T>
void layer_norm_launch(int64_t rows, int64_t c, void *y, void *mean, void *rstd, const void *x,
                       const void *w, const void *b, double eps) {
  if (rows <= 0) return;
  layer_norm_kernel<T><<<row_grid(rows), row_threads(c)>>>(rows, c, (T *)y, (T *)mean,
                                                            (T *)rstd, (const T *)x,
                                                            (const T *)w, (const T *)b, eps);
  fsq_cuda_k_record(cudaSuccess, "layer_norm");
}

template <typename T>
void layer_norm_dwdb_launch(int64_t rows, int64_t c, void *dw, void *db, const void *dy,
                            const void *x, const void *mean, const void *rstd) {
  int64_t gx = (c + kColTile - 1) / kColTile, slices = (rows + kRowTile - 1) / kRowTile;
  /* about 2048 blocks in all: enough to fill the GPU, few atomics per column */
  int64_t gy = 2048 / gx < 1 ? 1 : 2048 / gx;
  gy = gy < slices ? gy : slices;
  gy = gy < 65535 ? gy : 65535;
  dim3 grid((unsigned)gx, (unsigned)gy), block(kColTile, kRowTile);
  layer_norm_dwdb_kernel<T><<<grid, block>>>(rows, c, (T *)dw, (T *)db, (const T *)dy,
                                             (const T *)x, (const T *)mean, (const T *)rstd);
  fsq_cuda_k_record(cudaSuccess, "layer_norm_backward (dw, db)");
}

template <typename T>
void layer_norm_backward_launch(int64_t rows, int64_t c, void *dx, void *dw, void *db,
                                const void *dy, const void *x, const void *w, const void *mean,
                                const void *rstd) {
  if (rows <= 0 || c <= 0) return;
  if (dx) {
    layer_norm_dx_kernel<T><<<row_grid(rows), row_threads(c)>>>(
        rows, c, (T *)dx, (const T *)dy, (const T *)x, (const T *)w, (const T *)mean,
        (const T *)rstd);
    fsq_cuda_k_record(cudaSuccess, "layer_norm_backward (dx)");
  }
  if (dw || db) layer_norm_dwdb_launch<T>(rows, c, dw, db, dy, x, mean, rstd);
}

/* ---- dropout ----------------------------------------------------------------- */

/* One thread per Philox block: element i uses word i & 3 of block i >> 2
 * (fsq_rng_u32_at's layout), so the mask matches the CPU bit for bit. */
template <typename T>
__global__ void dropout_kernel(int64_t n, T *y, const T *x, T scale, uint32_t thresh,
                               uint64_t seed, uint64_t stream, int accumulate) {
  const int64_t nblk = (n + 3) >> 2;
  for (int64_t blk = grid_tid(); blk < nblk; blk += grid_stride()) {
    uint32_t words[4];
    fsq_k_philox(seed, stream, (uint64_t)blk, words);
#pragma unroll
    for (int q = 0; q < 4; q++) {
      int64_t i = blk * 4 + q;
      if (i >= n) break;
      T v = (words[q] >> 8) >= thresh ? x[i] * scale : (T)0;
      y[i] = accumulate ? y[i] + v : v;
    }
  }
}

template <typename T>
void dropout_launch(int64_t n, void *y, const void *x, double p, uint64_t seed, uint64_t stream,
                    int accumulate) {
  if (n <= 0) return;
  T scale = (T)(1.0 / (1.0 - p));
  /* keep when uniform >= p, compared on the 24-bit integer grid (as the CPU) */
  uint32_t thresh = (uint32_t)(p * 16777216.0);
  dropout_kernel<T><<<flat_grid((n + 3) >> 2), kThreads>>>(n, (T *)y, (const T *)x, scale,
                                                            thresh, seed, stream, accumulate);
  fsq_cuda_k_record(cudaSuccess, "dropout");
}

/* ---- embedding --------------------------------------------------------------- */

template <typename T>
__global__ void embedding_kernel(int64_t n, int64_t d, T *out, const T *w, const int64_t *idx,
                                 T scale) {
  for (int64_t e = grid_tid(); e < n * d; e += grid_stride()) {
    int64_t i = e / d, j = e - i * d;
    out[e] = w[idx[i] * d + j] * scale;
  }
}

/* Rows of dw repeat in idx, hence atomicAdd. */
template <typename T>
__global__ void embedding_backward_kernel(int64_t n, int64_t d, T *dw, const T *dy,
                                          const int64_t *idx, int64_t padding_idx, T scale) {
  for (int64_t e = grid_tid(); e < n * d; e += grid_stride()) {
    int64_t i = e / d, j = e - i * d, row = idx[i];
    if (row == padding_idx) continue;
    atomicAdd(dw + row * d + j, dy[e] * scale);
  }
}

template <typename T>
void embedding_launch(int64_t n, int64_t d, void *out, const void *w, const int64_t *idx,
                      double scale) {
  if (n <= 0 || d <= 0) return;
  embedding_kernel<T><<<flat_grid(n * d), kThreads>>>(n, d, (T *)out, (const T *)w, idx,
                                                       (T)scale);
  fsq_cuda_k_record(cudaSuccess, "embedding");
}

template <typename T>
void embedding_backward_launch(int64_t n, int64_t d, void *dw, const void *dy,
                               const int64_t *idx, int64_t padding_idx, double scale) {
  if (n <= 0 || d <= 0) return;
  embedding_backward_kernel<T><<<flat_grid(n * d), kThreads>>>(
      n, d, (T *)dw, (const T *)dy, idx, padding_idx, (T)scale);
  fsq_cuda_k_record(cudaSuccess, "embedding_backward");
}

/* ---- index_select and gather ------------------------------------------------- */

/* Element e of an [O, N, I] output: (o, j, k). */
struct Onk {
  int64_t o, j, k;
};
__device__ __forceinline__ Onk split_onk(int64_t e, int64_t n, int64_t inner) {
  int64_t q = e / inner, o = q / n;
  return Onk{o, q - o * n, e - q * inner};
}

/* The forward kernels move raw elements of W bytes, so every dtype works. */
template <typename W>
__global__ void index_select_kernel(int64_t outer, int64_t s, int64_t inner, int64_t n, W *out,
                                    const W *x, const int64_t *idx) {
  for (int64_t e = grid_tid(); e < outer * n * inner; e += grid_stride()) {
    Onk p = split_onk(e, n, inner);
    out[e] = x[(p.o * s + idx[p.j]) * inner + p.k];
  }
}

template <typename W>
__global__ void gather_kernel(int64_t outer, int64_t s, int64_t inner, int64_t n, W *out,
                              const W *x, const int64_t *idx) {
  for (int64_t e = grid_tid(); e < outer * n * inner; e += grid_stride()) {
    Onk p = split_onk(e, n, inner);
    out[e] = x[(p.o * s + idx[e]) * inner + p.k];
  }
}

/* Backward: indices may repeat, hence atomicAdd. */
template <typename T>
__global__ void index_select_backward_kernel(int64_t outer, int64_t s, int64_t inner, int64_t n,
                                             T *dx, const T *dy, const int64_t *idx) {
  for (int64_t e = grid_tid(); e < outer * n * inner; e += grid_stride()) {
    Onk p = split_onk(e, n, inner);
    atomicAdd(dx + (p.o * s + idx[p.j]) * inner + p.k, dy[e]);
  }
}

template <typename T>
__global__ void gather_backward_kernel(int64_t outer, int64_t s, int64_t inner, int64_t n,
                                       T *dx, const T *dy, const int64_t *idx) {
  for (int64_t e = grid_tid(); e < outer * n * inner; e += grid_stride()) {
    Onk p = split_onk(e, n, inner);
    atomicAdd(dx + (p.o * s + idx[e]) * inner + p.k, dy[e]);
  }
}

size_t dtype_bytes(fsq_dtype t) {
  switch (t) {
  case FSQ_F64:
  case FSQ_I64: return 8;
  case FSQ_F16:
  case FSQ_BF16: return 2;
  case FSQ_U8: return 1;
  default: return 4;
  }
}

/* gather = 0: index_select (idx: [N]); gather = 1: gather (idx: [O, N, I]). */
template <typename W>
void select_launch(int gather, int64_t outer, int64_t s, int64_t inner, int64_t n, void *out,
                   const void *x, const int64_t *idx) {
  int64_t total = outer * n * inner;
  if (gather)
    gather_kernel<W><<<flat_grid(total), kThreads>>>(outer, s, inner, n, (W *)out,
                                                     (const W *)x, idx);
  else
    index_select_kernel<W><<<flat_grid(total), kThreads>>>(outer, s, inner, n, (W *)out,
                                                           (const W *)x, idx);
  fsq_cuda_k_record(cudaSuccess, gather ? "gather" : "index_select");
}

void select_by_width(int gather, fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                     int64_t n, void *out, const void *x, const int64_t *idx) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  switch (dtype_bytes(t)) {
  case 8: select_launch<unsigned long long>(gather, outer, s, inner, n, out, x, idx); break;
  case 4: select_launch<uint32_t>(gather, outer, s, inner, n, out, x, idx); break;
  case 2: select_launch<uint16_t>(gather, outer, s, inner, n, out, x, idx); break;
  default: select_launch<uint8_t>(gather, outer, s, inner, n, out, x, idx); break;
  }
}

template <typename T>
void select_backward_launch(int gather, int64_t outer, int64_t s, int64_t inner, int64_t n,
                            void *dx, const void *dy, const int64_t *idx) {
  int64_t total = outer * n * inner;
  if (total <= 0) return;
  if (gather)
    gather_backward_kernel<T><<<flat_grid(total), kThreads>>>(outer, s, inner, n, (T *)dx,
                                                              (const T *)dy, idx);
  else
    index_select_backward_kernel<T><<<flat_grid(total), kThreads>>>(outer, s, inner, n,
                                                                    (T *)dx, (const T *)dy, idx);
  fsq_cuda_k_record(cudaSuccess, gather ? "gather_backward" : "index_select_backward");
}

/* ---- losses ------------------------------------------------------------------ */

/* The loss totals are double sums over rows, as on the CPU. Each row block
 * keeps its rows' share in thread 0 and leaves it in loss_part (one slot per
 * block of a grid capped at kMaxPart); loss_finalize then folds the slots in
 * a fixed order: deterministic, and no allocation per call. Kernels run in
 * order on the default stream, so one scratch area per device suffices. */
constexpr int kMaxPart = 2048;
__device__ double loss_part[2][kMaxPart]; /* [0]: nll, [1]: smooth */

template <typename T>
__global__ void loss_finalize_kernel(int parts, double epsilon, double eps_i, T *loss, T *nll) {
  double a = 0, b = 0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) {
    a += loss_part[0][i];
    b += loss_part[1][i];
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    *loss = (T)((1.0 - epsilon - eps_i) * a + eps_i * b);
    *nll = (T)a;
  }
}

/* Per row of lprobs: nll -= lprobs[target], smooth -= sum_j lprobs[j] (the
 * row sum in T, as the CPU's); ignore_index rows add nothing. */
template <typename T>
__global__ void ls_nll_rows_kernel(int64_t n, int64_t v, const T *lp, const int64_t *target,
                                   int64_t ignore_index) {
  double nll = 0, smooth = 0;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    int64_t t = target[r];
    if (t == ignore_index) continue; /* block-uniform */
    const T *row = lp + r * v;
    T acc = 0;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) acc += row[j];
    acc = block_sum(acc);
    nll -= (double)row[t];
    smooth -= (double)acc;
  }
  if (threadIdx.x == 0) {
    loss_part[0][blockIdx.x] = nll;
    loss_part[1][blockIdx.x] = smooth;
  }
}

/* Per row of logits: lse = max + log sum exp(x - max), written for every
 * row; nll += lse - x[target], smooth += V lse - sum_j x_j. */
template <typename T>
__global__ void cross_entropy_rows_kernel(int64_t n, int64_t v, const T *x,
                                          const int64_t *target, int64_t ignore_index, T *lse) {
  double nll = 0, smooth = 0;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T *row = x + r * v;
    T mx = (T)-INFINITY, sx = 0, es = 0;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      mx = row[j] > mx ? row[j] : mx;
      sx += row[j];
    }
    mx = block_max(mx);
    sx = block_sum(sx);
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) es += fsq_cu_exp(row[j] - mx);
    es = block_sum(es);
    T l = mx + fsq_cu_log(es);
    int64_t t = target[r];
    if (threadIdx.x == 0) {
      lse[r] = l;
      if (t != ignore_index) {
        nll += (double)l - (double)row[t];
        smooth += (double)v * (double)l - (double)sx;
      }
    }
  }
  if (threadIdx.x == 0) {
    loss_part[0][blockIdx.x] = nll;
    loss_part[1][blockIdx.x] = smooth;
  }
}

template <typename T>
void loss_finalize_launch(int parts, int64_t v, double epsilon, void *loss, void *nll) {
  double eps_i = epsilon / (double)(v - 1);
  loss_finalize_kernel<T><<<1, kThreads>>>(parts, epsilon, eps_i, (T *)loss, (T *)nll);
  fsq_cuda_k_record(cudaSuccess, "loss (total)");
}

template <typename T>
void ls_nll_launch(int64_t n, int64_t v, const void *lprobs, const int64_t *target,
                   double epsilon, int64_t ignore_index, void *loss, void *nll) {
  unsigned parts = n > 0 ? row_grid(n, kMaxPart) : 0;
  if (parts) {
    ls_nll_rows_kernel<T><<<parts, row_threads(v)>>>(n, v, (const T *)lprobs, target,
                                                     ignore_index);
    fsq_cuda_k_record(cudaSuccess, "label_smoothed_nll");
  }
  loss_finalize_launch<T>((int)parts, v, epsilon, loss, nll);
}

template <typename T>
void cross_entropy_launch(int64_t n, int64_t v, const void *logits, const int64_t *target,
                          double epsilon, int64_t ignore_index, void *lse, void *loss,
                          void *nll) {
  unsigned parts = n > 0 ? row_grid(n, kMaxPart) : 0;
  if (parts) {
    cross_entropy_rows_kernel<T><<<parts, row_threads(v)>>>(n, v, (const T *)logits, target,
                                                            ignore_index, (T *)lse);
    fsq_cuda_k_record(cudaSuccess, "cross_entropy");
  }
  loss_finalize_launch<T>((int)parts, v, epsilon, loss, nll);
}

/* The gradient of label_smoothed_nll: `all` on every entry of a counted row,
 * plus `at_target` at its target, rounded to T as on the CPU. */
template <typename T> struct LossGrad {
  T all, at_target, total;
};

template <typename T> LossGrad<T> loss_grad(int64_t v, double epsilon, double g_loss, double g_nll) {
  double eps_i = epsilon / (double)(v - 1);
  LossGrad<T> g;
  g.all = (T)(-g_loss * eps_i);
  g.at_target = (T)(-g_loss * (1.0 - epsilon - eps_i) - g_nll);
  g.total = (T)((double)v * (double)g.all + (double)g.at_target);
  return g;
}

template <typename T>
__global__ void ls_nll_backward_kernel(int64_t n, int64_t v, T *dlp, const int64_t *target,
                                       int64_t ignore_index, LossGrad<T> g) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    int64_t t = target[r];
    if (t == ignore_index) continue;
    T *row = dlp + r * v;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      T d = row[j] + g.all;
      if (j == t) d += g.at_target; /* the CPU adds it after the sweep */
      row[j] = d;
    }
  }
}

/* d_j (+)= all - exp(x_j - lse) * total, then + at_target at the target. */
template <typename T>
__global__ void cross_entropy_backward_kernel(int64_t n, int64_t v, T *dx, const T *x,
                                              const T *lse, const int64_t *target,
                                              int64_t ignore_index, LossGrad<T> g,
                                              int accumulate) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    T *d = dx + r * v;
    int64_t t = target[r];
    if (t == ignore_index) {
      if (!accumulate)
        for (int64_t j = threadIdx.x; j < v; j += blockDim.x) d[j] = 0;
      continue;
    }
    const T *row = x + r * v;
    T l = lse[r];
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      T e = g.all - fsq_cu_exp(row[j] - l) * g.total;
      if (accumulate) e = d[j] + e;
      if (j == t) e += g.at_target;
      d[j] = e;
    }
  }
}

template <typename T>
void ls_nll_backward_launch(int64_t n, int64_t v, void *dlprobs, const int64_t *target,
                            double epsilon, int64_t ignore_index, double g_loss, double g_nll) {
  if (n <= 0 || v <= 0) return;
  ls_nll_backward_kernel<T><<<row_grid(n), row_threads(v)>>>(
      n, v, (T *)dlprobs, target, ignore_index, loss_grad<T>(v, epsilon, g_loss, g_nll));
  fsq_cuda_k_record(cudaSuccess, "label_smoothed_nll_backward");
}

template <typename T>
void cross_entropy_backward_launch(int64_t n, int64_t v, void *dlogits, const void *logits,
                                   const void *lse, const int64_t *target, double epsilon,
                                   int64_t ignore_index, double g_loss, double g_nll,
                                   int accumulate) {
  if (n <= 0 || v <= 0) return;
  cross_entropy_backward_kernel<T><<<row_grid(n), row_threads(v)>>>(
      n, v, (T *)dlogits, (const T *)logits, (const T *)lse, target, ignore_index,
      loss_grad<T>(v, epsilon, g_loss, g_nll), accumulate);
  fsq_cuda_k_record(cudaSuccess, "cross_entropy_backward");
}

} /* namespace */

/* Float kernels: f64 as double, anything else as float (the CPU's DISPATCH). */
#define FSQ_CUDA_DISPATCH(t, fn, ...) \
  do { \
    if ((t) == FSQ_F64) fn<double>(__VA_ARGS__); \
    else fn<float>(__VA_ARGS__); \
  } while (0)

/* ---- the table entries -------------------------------------------------------- */

extern "C" {

void fsq_cuda_k_softmax(fsq_dtype t, int64_t rows, int64_t s, void *y, const void *x,
                        const uint8_t *mask, int64_t rows_per_batch, int64_t t_len, int causal,
                        int log) {
  FSQ_CUDA_DISPATCH(t, softmax_launch, rows, s, y, x, mask, rows_per_batch, t_len, causal, log);
}

void fsq_cuda_k_softmax_backward(fsq_dtype t, int64_t rows, int64_t s, void *dx, const void *dy,
                                 const void *y, int log) {
  FSQ_CUDA_DISPATCH(t, softmax_backward_launch, rows, s, dx, dy, y, log);
}

void fsq_cuda_k_layer_norm(fsq_dtype t, int64_t rows, int64_t c, void *y, void *mean, void *rstd,
                           const void *x, const void *w, const void *b, double eps) {
  FSQ_CUDA_DISPATCH(t, layer_norm_launch, rows, c, y, mean, rstd, x, w, b, eps);
}

void fsq_cuda_k_layer_norm_backward(fsq_dtype t, int64_t rows, int64_t c, void *dx, void *dw,
                                    void *db, const void *dy, const void *x, const void *w,
                                    const void *mean, const void *rstd) {
  FSQ_CUDA_DISPATCH(t, layer_norm_backward_launch, rows, c, dx, dw, db, dy, x, w, mean, rstd);
}

void fsq_cuda_k_dropout(fsq_dtype t, int64_t n, void *y, const void *x, double p, uint64_t seed,
                        uint64_t stream, int accumulate) {
  FSQ_CUDA_DISPATCH(t, dropout_launch, n, y, x, p, seed, stream, accumulate);
}

void fsq_cuda_k_embedding(fsq_dtype t, int64_t n, int64_t d, void *out, const void *w,
                          const int64_t *idx, double scale) {
  FSQ_CUDA_DISPATCH(t, embedding_launch, n, d, out, w, idx, scale);
}

void fsq_cuda_k_embedding_backward(fsq_dtype t, int64_t n, int64_t d, void *dw, const void *dy,
                                   const int64_t *idx, int64_t padding_idx, double scale) {
  FSQ_CUDA_DISPATCH(t, embedding_backward_launch, n, d, dw, dy, idx, padding_idx, scale);
}

void fsq_cuda_k_index_select(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *out,
                             const void *x, const int64_t *idx, int64_t n) {
  select_by_width(0, t, outer, s, inner, n, out, x, idx);
}

void fsq_cuda_k_index_select_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                                      void *dx, const void *dy, const int64_t *idx, int64_t n) {
  FSQ_CUDA_DISPATCH(t, select_backward_launch, 0, outer, s, inner, n, dx, dy, idx);
}

void fsq_cuda_k_gather(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n, void *out,
                       const void *x, const int64_t *idx) {
  select_by_width(1, t, outer, s, inner, n, out, x, idx);
}

void fsq_cuda_k_gather_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n,
                                void *dx, const void *dy, const int64_t *idx) {
  FSQ_CUDA_DISPATCH(t, select_backward_launch, 1, outer, s, inner, n, dx, dy, idx);
}

void fsq_cuda_k_label_smoothed_nll(fsq_dtype t, int64_t n, int64_t v, const void *lprobs,
                                   const int64_t *target, double epsilon, int64_t ignore_index,
                                   void *loss, void *nll) {
  FSQ_CUDA_DISPATCH(t, ls_nll_launch, n, v, lprobs, target, epsilon, ignore_index, loss, nll);
}

void fsq_cuda_k_label_smoothed_nll_backward(fsq_dtype t, int64_t n, int64_t v, void *dlprobs,
                                            const int64_t *target, double epsilon,
                                            int64_t ignore_index, double g_loss, double g_nll) {
  FSQ_CUDA_DISPATCH(t, ls_nll_backward_launch, n, v, dlprobs, target, epsilon, ignore_index,
                    g_loss, g_nll);
}

void fsq_cuda_k_cross_entropy(fsq_dtype t, int64_t n, int64_t v, const void *logits,
                              const int64_t *target, double epsilon, int64_t ignore_index,
                              void *lse, void *loss, void *nll) {
  FSQ_CUDA_DISPATCH(t, cross_entropy_launch, n, v, logits, target, epsilon, ignore_index, lse,
                    loss, nll);
}

void fsq_cuda_k_cross_entropy_backward(fsq_dtype t, int64_t n, int64_t v, void *dlogits,
                                       const void *logits, const void *lse,
                                       const int64_t *target, double epsilon,
                                       int64_t ignore_index, double g_loss, double g_nll,
                                       int accumulate) {
  FSQ_CUDA_DISPATCH(t, cross_entropy_backward_launch, n, v, dlogits, logits, lse, target,
                    epsilon, ignore_index, g_loss, g_nll, accumulate);
}

} /* extern "C" */
