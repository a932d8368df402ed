// k-means on the CPU: Lloyd's assignment step fused with the M-step sums, and k-means++'s candidate distances.
//
// Why native: with torch ops, a Lloyd iteration is a skinny GEMM (rows x k centers) for the distances, an argmin,
// and an index_add_ for the new centers' sums: the GEMM alone (60,000 x 784 times 784 x 10, float32) ran at
// ~12 GB/s of data read on these cores, while one streaming read of the same 188 MB runs at 30-90 GB/s. Here each
// block of rows is read once from memory: its dot products with every center (register-blocked, the centers stay
// in L1/L2), the argmin, and the add of each row into its cluster's sum happen while the rows are in L1.
// Templated on float / double: float64 data are computed in float64.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "conv.h"

namespace pydlr {
namespace {

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(64)));
  static constexpr int W = 16;
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(64)));
  static constexpr int W = 8;
};

template <typename T>
PYDLR_INLINE typename Simd<T>::V vld(const T* p) {
  typename Simd<T>::V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Sum of the lanes by halving (a plain loop over the lanes compiles to a serial chain of scalar adds, which took
// as long as the dot products themselves at d = 784).
template <typename T>
PYDLR_INLINE T hsum(typename Simd<T>::V v) {
  typedef T V4 __attribute__((vector_size(4 * sizeof(T))));
  typedef T V2 __attribute__((vector_size(2 * sizeof(T))));
  V4 q;
  if constexpr (Simd<T>::W == 16) {
    typedef T V8 __attribute__((vector_size(8 * sizeof(T))));
    const V8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  } else {
    q = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  }
  const V2 p = __builtin_shufflevector(q, q, 0, 1) + __builtin_shufflevector(q, q, 2, 3);
  return p[0] + p[1];
}

// Rows per register block, and the most centers per block: R * C accumulators + R rows + 1 center <= 32 registers.
constexpr int kRows = 4;
constexpr int kMaxC = 6;

// out[r * ldo + j] = x_r . c_j for R rows of x (row stride d) and C centers (row stride d). With `next`, the R
// rows there are prefetched along the way: without it the loads of x stalled on memory for half of the time.
template <typename T, int R, int C>
PYDLR_INLINE void dots(const T* __restrict x, const T* __restrict c, int64_t d, T* __restrict out, int64_t ldo,
                       const T* next) {
  using V = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C; ++j) acc[r][j] = V{};
  const int64_t dv = d / W * W;
  for (int64_t f = 0; f < dv; f += W) {
    V xv[R];
    for (int r = 0; r < R; ++r) xv[r] = vld(x + r * d + f);
    if (next) {
      for (int r = 0; r < R; ++r) __builtin_prefetch(next + r * d + f);
    }
    for (int j = 0; j < C; ++j) {
      const V cv = vld(c + j * d + f);
      for (int r = 0; r < R; ++r) acc[r][j] += xv[r] * cv;
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < C; ++j) {
      T s = hsum<T>(acc[r][j]);
      for (int64_t f = dv; f < d; ++f) s += x[r * d + f] * c[j * d + f];
      out[r * ldo + j] = s;
    }
  }
}

template <typename T, int R>
PYDLR_INLINE void dots_c(int C, const T* x, const T* c, int64_t d, T* out, int64_t ldo, const T* next) {
  switch (C) {
    case 1: return dots<T, R, 1>(x, c, d, out, ldo, next);
    case 2: return dots<T, R, 2>(x, c, d, out, ldo, next);
    case 3: return dots<T, R, 3>(x, c, d, out, ldo, next);
    case 4: return dots<T, R, 4>(x, c, d, out, ldo, next);
    case 5: return dots<T, R, 5>(x, c, d, out, ldo, next);
    default: return dots<T, R, 6>(x, c, d, out, ldo, next);
  }
}

// Dot products of R rows with all k centers (row stride of out: k), in groups of at most kMaxC centers of
// balanced sizes (k = 10: 5 + 5, not 6 + 4). The first group prefetches the R rows at `next` (null: none).
template <typename T, int R>
PYDLR_INLINE void dots_all(const T* x, const T* c, int64_t k, int64_t d, T* out, const T* next) {
  const int64_t groups = (k + kMaxC - 1) / kMaxC;
  const int64_t size = (k + groups - 1) / groups;
  for (int64_t j0 = 0; j0 < k; j0 += size) {
    const int C = static_cast<int>(std::min(size, k - j0));
    dots_c<T, R>(C, x, c + j0 * d, d, out + j0, k, j0 == 0 ? next : nullptr);
  }
}

template <typename T>
PYDLR_INLINE void add_row(T* __restrict acc, const T* __restrict x, int64_t d) {
  for (int64_t f = 0; f < d; ++f) acc[f] += x[f];
}

// One worker's share of a Lloyd step: labels, distances and (accumulate) per-cluster sums and counts.
struct StepOut {
  std::vector<double> sums;
  std::vector<int64_t> counts;
  int64_t changed = 0;
};

// Float rows are summed in a float block buffer, flushed into the slab's float64 sums every kFlush rows: the
// per-row add stays in the data's width, and rounding grows with kFlush, not with n.
constexpr int64_t kFlush = 1024;

template <typename T>
PYDLR_CLONES void lloyd_slab(const T* x, const T* x_sq, const T* c, const T* c_sq, int64_t k, int64_t d,
                             int64_t a, int64_t b, int64_t* labels, T* min_dist, bool accumulate, StepOut& out) {
  std::vector<T> dot(kRows * k);
  std::vector<T> part;
  if (accumulate) {
    if constexpr (!std::is_same_v<T, double>) part.assign(k * d, T(0));
  }
  T* acc = nullptr;
  if (accumulate) {
    if constexpr (std::is_same_v<T, double>) {
      acc = out.sums.data();
    } else {
      acc = part.data();
    }
  }
  int64_t since_flush = 0;
  for (int64_t i0 = a; i0 < b; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, b - i0);
    if (rows == kRows) {
      dots_all<T, kRows>(x + i0 * d, c, k, d, dot.data(), i0 + 3 * kRows <= b ? x + (i0 + 2 * kRows) * d : nullptr);
    } else {
      for (int64_t r = 0; r < rows; ++r) dots_all<T, 1>(x + (i0 + r) * d, c, k, d, dot.data() + r * k, nullptr);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      const T* dr = dot.data() + r * k;
      T best = c_sq[0] - T(2) * dr[0];
      int64_t bj = 0;
      for (int64_t j = 1; j < k; ++j) {
        const T v = c_sq[j] - T(2) * dr[j];
        if (v < best) {
          best = v;
          bj = j;
        }
      }
      min_dist[i] = std::max(T(0), x_sq[i] + best);
      if (accumulate) {
        out.changed += labels[i] != bj;
        ++out.counts[bj];
        add_row(acc + bj * d, x + i * d, d);
      }
      labels[i] = bj;
    }
    if constexpr (!std::is_same_v<T, double>) {
      since_flush += rows;
      if (accumulate && (since_flush >= kFlush || i0 + rows >= b)) {
        for (int64_t e = 0; e < k * d; ++e) {
          out.sums[e] += part[e];
          part[e] = T(0);
        }
        since_flush = 0;
      }
    }
  }
}

// mins[j, i] = min(closest[i], ||x_i - p_j||^2) and pots[j] = sum_i mins[j, i] (float64) over this slab.
template <typename T>
PYDLR_CLONES void pp_slab(const T* x, const T* x_sq, const T* p, const T* p_sq, const T* closest, int64_t m,
                          int64_t d, int64_t n, int64_t a, int64_t b, T* mins, double* pots) {
  std::vector<T> dot(kRows * m);
  for (int64_t i0 = a; i0 < b; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, b - i0);
    if (rows == kRows) {
      dots_all<T, kRows>(x + i0 * d, p, m, d, dot.data(), i0 + 3 * kRows <= b ? x + (i0 + 2 * kRows) * d : nullptr);
    } else {
      for (int64_t r = 0; r < rows; ++r) dots_all<T, 1>(x + (i0 + r) * d, p, m, d, dot.data() + r * m, nullptr);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      for (int64_t j = 0; j < m; ++j) {
        const T dist = std::max(T(0), x_sq[i] + p_sq[j] - T(2) * dot[r * m + j]);
        const T v = std::min(dist, closest[i]);
        mins[j * n + i] = v;
        pots[j] += v;
      }
    }
  }
}

// Workers: one per thread, each with at least ~2**22 multiply-adds: a mini-batch step (4096 x 16, k = 10) runs
// on the calling thread, as waking the other threads cost more than the step on a loaded machine (a 1,000,000 x
// 16 mini-batch fit took 12 ms a step with 2 workers). Workers take blocks of rows from a shared cursor rather
// than fixed halves: on a shared machine a descheduled thread would otherwise hold the other at the end.
int64_t slab_count(int64_t n, int64_t work_per_row) {
  const int64_t by_work = n * std::max<int64_t>(1, work_per_row) >> 22;
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), by_work));
}

int64_t block_rows(int64_t n, int64_t workers) {
  return std::max<int64_t>(kRows, std::min<int64_t>(1024, (n + workers - 1) / workers));
}

void check_data(const char* op, const at::Tensor& x, const at::Tensor& x_sq) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous() &&
                  (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "pydlr ", op, ": x must be a contiguous 2-d CPU float32 or float64 tensor; got ", x.sizes(), " ",
              x.scalar_type(), " on ", x.device());
  TORCH_CHECK(x_sq.device().is_cpu() && x_sq.is_contiguous() && x_sq.scalar_type() == x.scalar_type() &&
                  x_sq.dim() == 1 && x_sq.size(0) == x.size(0),
              "pydlr ", op, ": x_sq must be a contiguous CPU tensor of ", x.size(0), " values of x's dtype");
}

void check_points(const char* op, const char* name, const at::Tensor& c, const at::Tensor& x) {
  TORCH_CHECK(c.device().is_cpu() && c.dim() == 2 && c.is_contiguous() && c.scalar_type() == x.scalar_type() &&
                  c.size(0) >= 1 && c.size(1) == x.size(1),
              "pydlr ", op, ": ", name, " must be a contiguous CPU (m, ", x.size(1), ") tensor of x's dtype with m >= 1; got ",
              c.sizes(), " ", c.scalar_type());
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, int64_t> kmeans_step_cpu(const at::Tensor& x, const at::Tensor& x_sq,
                                                            const at::Tensor& centers, const at::Tensor& labels,
                                                            const at::Tensor& min_dist, bool accumulate) {
  check_data("kmeans_step", x, x_sq);
  check_points("kmeans_step", "centers", centers, x);
  const int64_t n = x.size(0), d = x.size(1), k = centers.size(0);
  TORCH_CHECK(labels.device().is_cpu() && labels.is_contiguous() && labels.scalar_type() == at::kLong &&
                  labels.numel() == n,
              "pydlr kmeans_step: labels must be a contiguous CPU int64 tensor of ", n, " values");
  TORCH_CHECK(min_dist.device().is_cpu() && min_dist.is_contiguous() && min_dist.scalar_type() == x.scalar_type() &&
                  min_dist.numel() == n,
              "pydlr kmeans_step: min_dist must be a contiguous CPU tensor of ", n, " values of x's dtype");
  const int64_t slabs = slab_count(n, d * k);
  std::vector<StepOut> parts(slabs);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_step", [&] {
    const scalar_t* c = centers.const_data_ptr<scalar_t>();
    std::vector<scalar_t> c_sq(k);
    for (int64_t j = 0; j < k; ++j) {
      scalar_t s = 0;
      for (int64_t f = 0; f < d; ++f) s += c[j * d + f] * c[j * d + f];
      c_sq[j] = s;
    }
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* xs = x_sq.const_data_ptr<scalar_t>();
    int64_t* lab = labels.mutable_data_ptr<int64_t>();
    scalar_t* md = min_dist.mutable_data_ptr<scalar_t>();
    std::atomic<int64_t> cursor{0};
    const int64_t block = block_rows(n, slabs);
    at::parallel_for(0, slabs, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        if (accumulate) {
          parts[s].sums.assign(k * d, 0.0);
          parts[s].counts.assign(k, 0);
        }
        for (int64_t a; (a = cursor.fetch_add(block, std::memory_order_relaxed)) < n;) {
          lloyd_slab<scalar_t>(xp, xs, c, c_sq.data(), k, d, a, std::min(a + block, n), lab, md, accumulate,
                               parts[s]);
        }
      }
    });
  });
  at::Tensor sums = at::zeros({accumulate ? k : 0, d}, x.options().dtype(at::kDouble));
  at::Tensor counts = at::zeros({accumulate ? k : 0}, x.options().dtype(at::kLong));
  int64_t changed = 0;
  if (accumulate) {
    double* sp = sums.mutable_data_ptr<double>();
    int64_t* cp = counts.mutable_data_ptr<int64_t>();
    for (const StepOut& p : parts) {
      for (int64_t e = 0; e < k * d; ++e) sp[e] += p.sums[e];
      for (int64_t j = 0; j < k; ++j) cp[j] += p.counts[j];
      changed += p.changed;
    }
  }
  return {sums, counts, changed};
}

std::tuple<at::Tensor, at::Tensor> kmeans_pp_dists_cpu(const at::Tensor& x, const at::Tensor& x_sq,
                                                       const at::Tensor& points, const at::Tensor& closest) {
  check_data("kmeans_pp_dists", x, x_sq);
  check_points("kmeans_pp_dists", "points", points, x);
  TORCH_CHECK(closest.device().is_cpu() && closest.is_contiguous() && closest.scalar_type() == x.scalar_type() &&
                  closest.numel() == x.size(0),
              "pydlr kmeans_pp_dists: closest must be a contiguous CPU tensor of ", x.size(0), " values of x's dtype");
  const int64_t n = x.size(0), d = x.size(1), m = points.size(0);
  const int64_t slabs = slab_count(n, d * m);
  at::Tensor mins = at::empty({m, n}, x.options());
  std::vector<double> pots(slabs * m, 0.0);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_pp_dists", [&] {
    const scalar_t* p = points.const_data_ptr<scalar_t>();
    std::vector<scalar_t> p_sq(m);
    for (int64_t j = 0; j < m; ++j) {
      scalar_t s = 0;
      for (int64_t f = 0; f < d; ++f) s += p[j * d + f] * p[j * d + f];
      p_sq[j] = s;
    }
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* xs = x_sq.const_data_ptr<scalar_t>();
    const scalar_t* cl = closest.const_data_ptr<scalar_t>();
    scalar_t* out = mins.mutable_data_ptr<scalar_t>();
    std::atomic<int64_t> cursor{0};
    const int64_t block = block_rows(n, slabs);
    at::parallel_for(0, slabs, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        for (int64_t a; (a = cursor.fetch_add(block, std::memory_order_relaxed)) < n;) {
          pp_slab<scalar_t>(xp, xs, p, p_sq.data(), cl, m, d, n, a, std::min(a + block, n), out, pots.data() + s * m);
        }
      }
    });
  });
  at::Tensor pot = at::zeros({m}, x.options().dtype(at::kDouble));
  double* pp = pot.mutable_data_ptr<double>();
  for (int64_t s = 0; s < slabs; ++s)
    for (int64_t j = 0; j < m; ++j) pp[j] += pots[s * m + j];
  return {mins, pot};
}

}  // namespace pydlr
