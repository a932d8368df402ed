// k-means on the CPU: Lloyd's assignment step fused with the M-step sums, and k-means++'s candidate distances.
//
// Why native: with torch ops, a Lloyd iteration is a skinny GEMM (rows x k centers) for the distances, an argmin,
// and an index_add_ for the new centers' sums: the GEMM alone (60,000 x 784 times 784 x 10, float32) ran at
// ~12 GB/s of data read on these cores, while one streaming read of the same 188 MB runs at 30-90 GB/s. Here each
// block of rows is read once from memory: its dot products with every center (register-blocked, the centers stay
// in L1/L2), the argmin, and the add of each row into its cluster's float64 sum happen while the rows are in L1.
// The bounded step (Hamerly's bounds, below) computes the same labels and reads only the rows whose closest center
// may have changed: a late iteration on Fashion-MNIST reads ~1-3% of them, so it is no longer bound by the
// arithmetic of every distance. Templated on float / double: float64 data are computed in float64.
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

// out[r * ldo + j] = x_r . c_j for the R rows at xr[0..R) and C centers (row stride d). With `next`, the R rows
// there are prefetched along the way: without it the loads of x stalled on memory for half of the time. A row's
// dot products do not depend on R, C or where the row lies (same operations in the same order): the bounded step,
// which gathers the rows it evaluates, gets bit for bit the values of the plain step.
template <typename T, int R, int C>
PYDLR_INLINE void dots(const T* const* xr, const T* __restrict c, int64_t d, T* __restrict out, int64_t ldo,
                       const T* const* next) {
  using V = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C; ++j) acc[r][j] = V{};
  const int64_t dv = d / W * W;
  for (int64_t f = 0; f < dv; f += W) {
    V xv[R];
    for (int r = 0; r < R; ++r) xv[r] = vld(xr[r] + f);
    if (next) {
      for (int r = 0; r < R; ++r) __builtin_prefetch(next[r] + f);
    }
    for (int j = 0; j < C; ++j) {
      const V cv = vld(c + j * d + f);
      for (int r = 0; r < R; ++r) acc[r][j] += xv[r] * cv;
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < C; ++j) {
      T s = hsum<T>(acc[r][j]);
      for (int64_t f = dv; f < d; ++f) s += xr[r][f] * c[j * d + f];
      out[r * ldo + j] = s;
    }
  }
}

template <typename T, int R>
PYDLR_INLINE void dots_c(int C, const T* const* xr, const T* c, int64_t d, T* out, int64_t ldo,
                         const T* const* next) {
  switch (C) {
    case 1: return dots<T, R, 1>(xr, c, d, out, ldo, next);
    case 2: return dots<T, R, 2>(xr, c, d, out, ldo, next);
    case 3: return dots<T, R, 3>(xr, c, d, out, ldo, next);
    case 4: return dots<T, R, 4>(xr, c, d, out, ldo, next);
    case 5: return dots<T, R, 5>(xr, c, d, out, ldo, next);
    default: return dots<T, R, 6>(xr, c, d, out, ldo, next);
  }
}

// Dot products of the R rows at xr with all k centers (row stride of out: k), in groups of at most kMaxC centers
// of balanced sizes (k = 10: 5 + 5, not 6 + 4). The first group prefetches the R rows at `next` (null: none).
template <typename T, int R>
PYDLR_INLINE void dots_all(const T* const* xr, const T* c, int64_t k, int64_t d, T* out, const T* const* next) {
  const int64_t groups = (k + kMaxC - 1) / kMaxC;
  const int64_t size = (k + groups - 1) / groups;
  for (int64_t j0 = 0; j0 < k; j0 += size) {
    const int C = static_cast<int>(std::min(size, k - j0));
    dots_c<T, R>(C, xr, c + j0 * d, d, out + j0, k, j0 == 0 ? next : nullptr);
  }
}

// Dot products of rows [i0, i0 + rows) of x (rows <= kRows) with all k centers; `next_ok`: the kRows rows two
// blocks ahead exist and are prefetched.
template <typename T>
PYDLR_INLINE void dots_rows(const T* x, int64_t i0, int64_t rows, bool next_ok, const T* c, int64_t k, int64_t d,
                            T* out) {
  if (rows == kRows) {
    const T* xr[kRows];
    const T* nx[kRows];
    for (int r = 0; r < kRows; ++r) {
      xr[r] = x + (i0 + r) * d;
      nx[r] = next_ok ? x + (i0 + 2 * kRows + r) * d : nullptr;
    }
    dots_all<T, kRows>(xr, c, k, d, out, next_ok ? nx : nullptr);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr[1] = {x + (i0 + r) * d};
      dots_all<T, 1>(xr, c, k, d, out + r * k, nullptr);
    }
  }
}

// The closest and second closest centers from a row's dot products: scores c_sq[j] - 2 x.c_j (the row's own
// squared norm is common to all), the first index of the smallest score, and the second smallest score (+inf
// when k = 1). Both steps take their labels from here, so they break ties alike.
template <typename T>
PYDLR_INLINE int64_t nearest(const T* dr, const T* c_sq, int64_t k, T& best, T& second) {
  best = c_sq[0] - T(2) * dr[0];
  second = std::numeric_limits<T>::infinity();
  int64_t bj = 0;
  for (int64_t j = 1; j < k; ++j) {
    const T v = c_sq[j] - T(2) * dr[j];
    if (v < best) {
      second = best;
      best = v;
      bj = j;
    } else if (v < second) {
      second = v;
    }
  }
  return bj;
}

// Squared norms of the k centers (row stride d), summed in float64 and rounded once: the error of a score
// (see bound_margin) then has no term growing with d from the centers' norms.
template <typename T>
std::vector<T> center_sq_norms(const T* c, int64_t k, int64_t d) {
  std::vector<T> out(k);
  for (int64_t j = 0; j < k; ++j) {
    double s = 0;
    for (int64_t f = 0; f < d; ++f) s += static_cast<double>(c[j * d + f]) * c[j * d + f];
    out[j] = static_cast<T>(s);
  }
  return out;
}

// acc += x, in float64 for both float widths.
template <typename T>
PYDLR_INLINE void add_row(double* __restrict acc, const T* __restrict x, int64_t d) {
  for (int64_t f = 0; f < d; ++f) acc[f] += x[f];
}

// One worker's share of a Lloyd step: labels, distances and (accumulate) per-cluster sums and counts.
struct StepOut {
  std::vector<double> sums;
  std::vector<int64_t> counts;
  int64_t changed = 0;
};

// The per-cluster sums are float64 for float rows too, as the bounded step's: both algorithms then get the same
// float32 centers (the sums differ only in the order of float64 adds), hence the same labels on any data.
template <typename T>
PYDLR_CLONES void lloyd_slab(const T* x, const T* x_sq, const T* c, const T* c_sq, int64_t k, int64_t d,
                             int64_t a, int64_t b, int64_t* labels, T* min_dist, bool accumulate, StepOut& out) {
  std::vector<T> dot(kRows * k);
  double* acc = accumulate ? out.sums.data() : nullptr;
  for (int64_t i0 = a; i0 < b; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, b - i0);
    dots_rows(x, i0, rows, i0 + 3 * kRows <= b, c, k, d, dot.data());
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      T best, second;
      const int64_t bj = nearest(dot.data() + r * k, c_sq, k, best, second);
      min_dist[i] = std::max(T(0), x_sq[i] + best);
      if (accumulate) {
        out.changed += labels[i] != bj;
        ++out.counts[bj];
        add_row(acc + bj * d, x + i * d, d);
      }
      labels[i] = bj;
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
    dots_rows(x, i0, rows, i0 + 3 * kRows <= b, p, m, d, dot.data());
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

// --- Lloyd with Hamerly's bounds ----------------------------------------------------------------------------------
// Exact Lloyd (the same labels as the plain step, iteration by iteration) that reads only the rows whose closest
// center may have changed. Each row keeps an upper bound u on its distance to its center and a lower bound l on its
// distance to every other center (float64, Euclidean); when the centers move by shift_j, u grows by its center's
// shift and l shrinks by the largest shift of the others (triangle inequality). A row is skipped when
// max(l, sep_a - u) (sep_a: distance from its center to the nearest other center) exceeds u by more than the
// rounding of the plain step's scores: then the plain step, which compares those rounded scores, would keep the label
// too. The other rows get the plain step's scores (same kernel, same order: the same values bit for bit), their
// label from `nearest`, and fresh bounds. The per-cluster sums are updated only for rows that change cluster
// (float64), so later iterations read neither the skipped rows nor the unchanged ones.

// Bound on the rounding error of a score c_sq[j] - 2 x.c_j as computed by `dots` + `nearest`, as a factor of
// (||x|| + max_j ||c_j||)^2: the dot products are sums of d / W products per lane (a multiply and an add each
// without FMA), a halving sum of log2(W) adds and d % W scalar ones, then the score's own two roundings (c_sq is
// rounded once from float64). The standard gamma_m = m u / (1 - m u) bound with u = the unit roundoff, doubled.
template <typename T>
double score_error_factor(int64_t d) {
  constexpr int W = Simd<T>::W;
  const double m = 2.0 * (d / W + d % W) + std::log2(static_cast<double>(W)) + 4.0;
  const double u = std::numeric_limits<T>::epsilon() / 2.0;
  return 2.0 * m * u / (1.0 - m * u);
}

// Per-iteration facts about the centers that every row's bound test reads.
struct CenterFacts {
  std::vector<double> sep;   // distance from center j to its nearest other center (lowered by a relative slack)
  std::vector<double> drop;  // the largest shift among the other centers: how far a row's lower bound falls
  double c_max = 0;          // largest center norm
};

// sep_j costs k^2 d / 2 float64 multiply-adds: computed only while that stays small against an iteration's n k d
// (k <= n / 64); otherwise sep_j = 0, and rows are skipped on their lower bound alone.
template <typename T>
CenterFacts center_facts(const T* c, const T* c_sq, const double* shift, int64_t k, int64_t d, int64_t n) {
  CenterFacts f;
  f.sep.assign(k, k > 1 ? 0.0 : std::numeric_limits<double>::infinity());
  f.drop.assign(k, 0.0);
  for (int64_t j = 0; j < k; ++j) f.c_max = std::max(f.c_max, std::sqrt(static_cast<double>(c_sq[j])));
  f.c_max *= 1.0 + 1e-6;  // c_sq was rounded to T
  int64_t top = -1;        // the center with the largest shift, then the largest shift among the others
  for (int64_t j = 0; j < k; ++j)
    if (top < 0 || shift[j] > shift[top]) top = j;
  double second = 0;
  for (int64_t j = 0; j < k; ++j)
    if (j != top) second = std::max(second, shift[j]);
  for (int64_t j = 0; j < k; ++j) f.drop[j] = j == top ? second : shift[top];
  if (k > 1 && k * 64 <= n) {
    std::vector<double> dist(k * k, 0.0);
    at::parallel_for(0, k, 1, [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a)
        for (int64_t b = 0; b < k; ++b) {
          if (b == a) continue;
          double s = 0;
          for (int64_t e = 0; e < d; ++e) {
            const double t = static_cast<double>(c[a * d + e]) - c[b * d + e];
            s += t * t;
          }
          dist[a * k + b] = std::sqrt(s);
        }
    });
    for (int64_t a = 0; a < k; ++a) {
      double m = std::numeric_limits<double>::infinity();
      for (int64_t b = 0; b < k; ++b)
        if (b != a) m = std::min(m, dist[a * k + b]);
      f.sep[a] = m * (1.0 - 1e-9);
    }
  }
  return f;
}

struct BoundedOut {
  std::vector<double> sums;  // changes of the per-cluster sums (k x d), allocated at the first change
  std::vector<int64_t> counts;
  int64_t changed = 0, evaluated = 0;
};

// The score c_sq[j] - 2 x.c_j of row x and center j, the same value as in the scores of all centers.
template <typename T>
PYDLR_INLINE T own_score(const T* xi, const T* c, const T* c_sq, int64_t j, int64_t d) {
  const T* xr[1] = {xi};
  T dot;
  dots<T, 1, 1>(xr, c + j * d, d, &dot, 1, nullptr);
  return c_sq[j] - T(2) * dot;
}

// Bounds on the distance from a score: the score's rounding (err) taken away or added, then the square root's
// own rounding by a relative 1e-12.
PYDLR_INLINE double bound_above(double score, double norm, double err) {
  return std::sqrt(std::max(0.0, norm + score) + err) * (1.0 + 1e-12);
}
PYDLR_INLINE double bound_below(double score, double norm, double err) {
  return std::sqrt(std::max(0.0, norm + score - err)) * (1.0 - 1e-12);
}

struct BoundState {
  int64_t* labels;
  double* upper;
  double* lower;
  double* norms;  // squared row norms in float64 (written where labels < 0)
};

// New label and bounds of row i from its scores; the cluster sums follow a change of label.
template <typename T>
PYDLR_INLINE void bounded_update(const T* xi, int64_t i, const T* dr, const T* c_sq, int64_t k, int64_t d,
                                 double err_factor, double c_max, BoundState st, BoundedOut& out) {
  const int64_t old = st.labels[i];
  if (old < 0) {
    double s = 0;
    for (int64_t f = 0; f < d; ++f) s += static_cast<double>(xi[f]) * xi[f];
    st.norms[i] = s;
  }
  T best, second;
  const int64_t bj = nearest(dr, c_sq, k, best, second);
  const double xs = st.norms[i];
  const double nx = std::sqrt(xs) + c_max;
  const double e = err_factor * nx * nx;
  st.upper[i] = bound_above(best, xs, e);
  st.lower[i] = bound_below(second, xs, e);
  ++out.evaluated;
  if (bj == old) return;
  st.labels[i] = bj;
  ++out.changed;
  if (out.sums.empty()) {
    out.sums.assign(k * d, 0.0);
    out.counts.assign(k, 0);
  }
  add_row(out.sums.data() + bj * d, xi, d);
  ++out.counts[bj];
  if (old >= 0) {
    double* from = out.sums.data() + old * d;
    for (int64_t f = 0; f < d; ++f) from[f] -= xi[f];
    --out.counts[old];
  }
}

// Rows [a, b): bound tests first (rows that pass are skipped), then the other rows' scores kRows rows at a time.
template <typename T>
PYDLR_CLONES void bounded_slab(const T* x, const T* c, const T* c_sq, const double* shift, const CenterFacts& cf,
                               int64_t k, int64_t d, int64_t a, int64_t b, double err_factor, BoundState st,
                               std::vector<int64_t>& todo, BoundedOut& out) {
  todo.clear();
  const double test_factor = 2.0 * err_factor * (1.0 + 1e-9);
  for (int64_t i = a; i < b; ++i) {
    const int64_t lab = st.labels[i];
    if (lab >= 0) {
      const double u = st.upper[i] + shift[lab];
      const double l = st.lower[i] - cf.drop[lab];
      st.upper[i] = u;
      st.lower[i] = l;
      const double nx = std::sqrt(st.norms[i]) + cf.c_max;
      const double margin = test_factor * nx * nx;
      const double z = std::max(l, cf.sep[lab] - u);
      // No second test on u recomputed from the row's own center (Hamerly's): it read the row for 1 / k of
      // its scores, one row at a time, and made Fashion-MNIST's iterations slower (8.9 against 5.5 ms an
      // iteration, one run each on the shared machine).
      if (z > u && (z - u) * (z + u) > margin) continue;
    }
    todo.push_back(i);
  }
  std::vector<T> dots_buf(kRows * k);
  const int64_t m = static_cast<int64_t>(todo.size());
  int64_t t = 0;
  for (; t + kRows <= m; t += kRows) {
    const T* xr[kRows];
    const T* nx[kRows];
    const bool more = t + 2 * kRows <= m;
    for (int r = 0; r < kRows; ++r) {
      xr[r] = x + todo[t + r] * d;
      nx[r] = more ? x + todo[t + kRows + r] * d : nullptr;
    }
    dots_all<T, kRows>(xr, c, k, d, dots_buf.data(), more ? nx : nullptr);
    for (int r = 0; r < kRows; ++r)
      bounded_update(xr[r], todo[t + r], dots_buf.data() + r * k, c_sq, k, d, err_factor, cf.c_max, st, out);
  }
  for (; t < m; ++t) {
    const T* xr[1] = {x + todo[t] * d};
    dots_all<T, 1>(xr, c, k, d, dots_buf.data(), nullptr);
    bounded_update(xr[0], todo[t], dots_buf.data(), c_sq, k, d, err_factor, cf.c_max, st, out);
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
    const std::vector<scalar_t> c_sq = center_sq_norms(c, k, d);
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
    const std::vector<scalar_t> p_sq = center_sq_norms(p, m, d);
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

namespace {
// min_dist[i] = the plain step's squared distance of row i to center labels[i] (same scores, bit for bit).
template <typename T>
PYDLR_CLONES void own_dists_slab(const T* x, const T* x_sq, const T* c, const T* c_sq, const int64_t* labels,
                                 int64_t d, int64_t a, int64_t b, T* min_dist) {
  for (int64_t i = a; i < b; ++i) {
    if (i + 2 < b) __builtin_prefetch(x + (i + 2) * d);
    min_dist[i] = std::max(T(0), x_sq[i] + own_score(x + i * d, c, c_sq, labels[i], d));
  }
}
}  // namespace

void kmeans_own_dists_cpu(const at::Tensor& x, const at::Tensor& x_sq, const at::Tensor& centers,
                          const at::Tensor& labels, const at::Tensor& min_dist) {
  check_data("kmeans_own_dists", x, x_sq);
  check_points("kmeans_own_dists", "centers", centers, x);
  const int64_t n = x.size(0), d = x.size(1), k = centers.size(0);
  TORCH_CHECK(labels.device().is_cpu() && labels.is_contiguous() && labels.scalar_type() == at::kLong &&
                  labels.numel() == n,
              "pydlr kmeans_own_dists: labels must be a contiguous CPU int64 tensor of ", n, " values");
  TORCH_CHECK(min_dist.device().is_cpu() && min_dist.is_contiguous() && min_dist.scalar_type() == x.scalar_type() &&
                  min_dist.numel() == n,
              "pydlr kmeans_own_dists: min_dist must be a contiguous CPU tensor of ", n, " values of x's dtype");
  const int64_t* lab = labels.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(lab[i] >= 0 && lab[i] < k, "pydlr kmeans_own_dists: labels must lie in [0, ", k, "); row ", i,
                " has ", lab[i]);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_own_dists", [&] {
    const scalar_t* c = centers.const_data_ptr<scalar_t>();
    const std::vector<scalar_t> c_sq = center_sq_norms(c, k, d);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* xs = x_sq.const_data_ptr<scalar_t>();
    scalar_t* md = min_dist.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, std::max<int64_t>(1024, (1 << 20) / std::max<int64_t>(1, d)), [&](int64_t a, int64_t b) {
      own_dists_slab<scalar_t>(xp, xs, c, c_sq.data(), lab, d, a, b, md);
    });
  });
}

std::tuple<int64_t, int64_t> kmeans_bounded_step_cpu(const at::Tensor& x, const at::Tensor& centers,
                                                     const at::Tensor& shift, const at::Tensor& labels,
                                                     const at::Tensor& upper, const at::Tensor& lower,
                                                     const at::Tensor& norms, const at::Tensor& sums,
                                                     const at::Tensor& counts) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous() &&
                  (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "pydlr kmeans_bounded_step: x must be a contiguous 2-d CPU float32 or float64 tensor; got ", x.sizes(),
              " ", x.scalar_type(), " on ", x.device());
  check_points("kmeans_bounded_step", "centers", centers, x);
  const int64_t n = x.size(0), d = x.size(1), k = centers.size(0);
  auto check_vec = [&](const at::Tensor& t, const char* name, at::ScalarType type, int64_t size) {
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == type && t.numel() == size,
                "pydlr kmeans_bounded_step: ", name, " must be a contiguous CPU ", type, " tensor of ", size,
                " values; got ", t.sizes(), " ", t.scalar_type());
  };
  check_vec(shift, "shift", at::kDouble, k);
  check_vec(labels, "labels", at::kLong, n);
  check_vec(upper, "upper", at::kDouble, n);
  check_vec(lower, "lower", at::kDouble, n);
  check_vec(norms, "norms", at::kDouble, n);
  check_vec(sums, "sums", at::kDouble, k * d);
  check_vec(counts, "counts", at::kLong, k);
  const int64_t* lab_in = labels.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(lab_in[i] >= -1 && lab_in[i] < k, "pydlr kmeans_bounded_step: labels must lie in [-1, ", k,
                "); row ", i, " has ", lab_in[i]);
  const int64_t slabs = slab_count(n, d * k);
  std::vector<BoundedOut> parts(slabs);
  const BoundState st{labels.mutable_data_ptr<int64_t>(), upper.mutable_data_ptr<double>(),
                      lower.mutable_data_ptr<double>(), norms.mutable_data_ptr<double>()};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_bounded_step", [&] {
    const scalar_t* c = centers.const_data_ptr<scalar_t>();
    const std::vector<scalar_t> c_sq = center_sq_norms(c, k, d);
    const CenterFacts cf = center_facts(c, c_sq.data(), shift.const_data_ptr<double>(), k, d, n);
    const double err_factor = score_error_factor<scalar_t>(d);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    std::atomic<int64_t> cursor{0};
    const int64_t block = block_rows(n, slabs);
    at::parallel_for(0, slabs, 1, [&](int64_t s0, int64_t s1) {
      std::vector<int64_t> todo;
      todo.reserve(block);
      for (int64_t s = s0; s < s1; ++s) {
        for (int64_t a; (a = cursor.fetch_add(block, std::memory_order_relaxed)) < n;) {
          bounded_slab<scalar_t>(xp, c, c_sq.data(), shift.const_data_ptr<double>(), cf, k, d, a,
                                 std::min(a + block, n), err_factor, st, todo, parts[s]);
        }
      }
    });
  });
  double* sp = sums.mutable_data_ptr<double>();
  int64_t* cp = counts.mutable_data_ptr<int64_t>();
  int64_t changed = 0, evaluated = 0;
  for (const BoundedOut& p : parts) {
    changed += p.changed;
    evaluated += p.evaluated;
    if (p.sums.empty()) continue;
    for (int64_t e = 0; e < k * d; ++e) sp[e] += p.sums[e];
    for (int64_t j = 0; j < k; ++j) cp[j] += p.counts[j];
  }
  return {changed, evaluated};
}

}  // namespace pydlr
