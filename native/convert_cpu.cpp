// Rows of a numeric array, in whatever memory order it has, as one C-contiguous float32 block (CPU).
//
// Why: R hands its arrays over in column-major order (the samples' axis varies fastest), and torch wants each
// sample's values together. NumPy's `ascontiguousarray(part, dtype=float32)` does that cast and reordering through
// its generic strided iterator: 8.7 ms for the 10,000 Fashion-MNIST test images in batches of 256, against 3.5 ms
// for the same values in row-major order, and the whole-array conversion that fit() makes is twice as slow as well.
// This reads R's layout in runs of up to 1,024 neighbouring rows: 8 values' runs are loaded (the next 8 values'
// runs prefetched meanwhile), converted and transposed in registers, and stored as 8 rows of 8 values; blocks of at
// least 128 rows go to torch's threads when the array is large. The 10,000 test images in batches of 256 convert
// in 3.9-4.3 ms this way on one thread (NumPy's strided cast 6.7-7.0, its cast of the same values in row-major
// order 3.3-3.8), 2.3 ms on two; the 60,000 training images at once in 22 ms (NumPy 45-48 and 19-20), 13 ms with
// the non-temporal stores that outputs past 16 MiB take (AVX-512; torch's copy of the same values in row-major
// order: 21 ms). The same pass says whether every value is finite in float32 (rows_to_float32_checked): fit()'s
// check of its inputs without a second pass over them.
#include <ATen/Parallel.h>
#include <torch/extension.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "conv.h"

namespace pydlr {
namespace {

constexpr int64_t kTile = 16;
// Rows a parallel task takes at least, and the rows the register transposes read a value's run of in one go
// (8 KiB runs of float64: the whole 60,000-image training set of Fashion-MNIST converts in 22 ms against 26 with
// 128-row runs, 28 with 2,048).
constexpr int64_t kBlockRows = 128;
constexpr int64_t kRunRows = 1024;
// Values per parallel task, at least: a predict batch (256 images of 28 x 28: 200,704 values, two blocks of 128
// rows) splits over two threads; a training batch of 64 images stays on the calling thread. The 10,000 test
// images in batches of 256: 2.3 ms on two threads against 5.6 on one (idle, 2026-12-05). While another process
// held the second core the two threads took 16 ms against 5.2, but predict() as a whole took 400-900 ms there
// against 170 idle (the model's own parallel regions wait the same way), so the conversion's share stays small.
constexpr int64_t kGrainValues = 1 << 16;
// Outputs from this size on are written with non-temporal stores (transpose_rows_stream).
constexpr int64_t kStreamBytes = int64_t{1} << 24;

// Every kernel below also says whether all the float32 values it wrote are finite (the inputs' check, made in the
// same pass, while the values are in registers): a NaN, an infinity or a float64 beyond float32's range (infinite
// once cast) makes it false.

// out[r, f] = src[(start + r) * row_stride + offsets[f]] for r < rows: the general case, one row at a time.
template <typename T>
PYDLR_CLONES bool gather_rows(const T* __restrict src, int64_t row_stride, const int64_t* __restrict offsets,
                              int64_t features, int64_t first, int64_t last, float* __restrict out) {
  int bad = 0;
  for (int64_t r = first; r < last; ++r) {
    const T* row = src + r * row_stride;
    float* dst = out + r * features;
    for (int64_t f = 0; f < features; ++f) {
      dst[f] = static_cast<float>(row[offsets[f]]);
      bad |= !std::isfinite(dst[f]);
    }
  }
  return bad == 0;
}

// The same when each row's values are contiguous (offsets[f] == f): a straight cast the compiler vectorises.
template <typename T>
PYDLR_CLONES bool cast_rows(const T* __restrict src, int64_t row_stride, int64_t features, int64_t first,
                            int64_t last, float* __restrict out) {
  int bad = 0;
  for (int64_t r = first; r < last; ++r) {
    const T* row = src + r * row_stride;
    float* dst = out + r * features;
#pragma omp simd reduction(| : bad)
    for (int64_t f = 0; f < features; ++f) {
      const float v = static_cast<float>(row[f]);
      dst[f] = v;
      bad |= !std::isfinite(v);
    }
  }
  return bad == 0;
}

// Rows adjacent in memory (row stride 1, R's order): each value of a block of kBlockRows rows is a run of
// neighbours in memory. The block is read kTile such runs at a time (whole cache lines, in order, which the
// prefetcher follows) and written kTile values a row. The scalar version; transpose_rows_avx2 below is the same
// with 8 x 8 register transposes.
template <typename T>
PYDLR_CLONES bool transpose_rows(const T* __restrict src, const int64_t* __restrict offsets, int64_t features,
                                 int64_t r0, int64_t r1, int64_t f0, int64_t f1, float* __restrict out) {
  alignas(64) float tile[kBlockRows][kTile];
  int bad = 0;
  for (int64_t b0 = r0; b0 < r1; b0 += kBlockRows) {
    const int64_t nr = std::min(kBlockRows, r1 - b0);
    for (int64_t c0 = f0; c0 < f1; c0 += kTile) {
      const int64_t nf = std::min(kTile, f1 - c0);
      for (int64_t j = 0; j < nf; ++j) {
        const T* column = src + offsets[c0 + j] + b0;
        for (int64_t k = 0; k < nr; ++k) {
          tile[k][j] = static_cast<float>(column[k]);
          bad |= !std::isfinite(tile[k][j]);
        }
      }
      for (int64_t k = 0; k < nr; ++k) {
        std::memcpy(out + (b0 + k) * features + c0, tile[k], static_cast<size_t>(nf) * sizeof(float));
      }
    }
  }
  return bad == 0;
}

#if defined(__x86_64__)
template <typename T>
__attribute__((target("avx2"))) inline __m256 load8(const T* p);
template <>
__attribute__((target("avx2"))) inline __m256 load8<double>(const double* p) {
  return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(p + 4)), _mm256_cvtpd_ps(_mm256_loadu_pd(p)));
}
template <>
__attribute__((target("avx2"))) inline __m256 load8<float>(const float* p) {
  return _mm256_loadu_ps(p);
}
template <>
__attribute__((target("avx2"))) inline __m256 load8<int32_t>(const int32_t* p) {
  return _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// bad: the or of v - v over the values converted (0 for a finite v, NaN for a NaN or an infinity).
__attribute__((target("avx2"))) inline bool all_finite(__m256 bad) {
  return _mm256_movemask_ps(_mm256_cmp_ps(bad, bad, _CMP_UNORD_Q)) == 0;
}

// v[j]: value j's 8 neighbouring rows; r[i]: row i's 8 values.
__attribute__((target("avx2"))) inline void transpose8x8(const __m256* v, __m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// 8 values (columns) x 8 neighbouring rows: loaded as 8 column vectors, transposed in registers, stored as 8 rows.
template <typename T>
__attribute__((target("avx2"))) bool transpose_rows_avx2(const T* __restrict src, const int64_t* __restrict offsets,
                                                         int64_t features, int64_t r0, int64_t r1,
                                                         float* __restrict out) {
  const int64_t f8 = features / 8 * 8;
  __m256 bad = _mm256_setzero_ps();
  for (int64_t b0 = r0; b0 + 8 <= r1; b0 += kRunRows) {
    const int64_t b1 = b0 + (std::min(kRunRows, r1 - b0) / 8) * 8;
    for (int64_t c0 = 0; c0 < f8; c0 += 8) {
      const T* col[8];
      const T* next[8];  // the next 8 values' runs, fetched while these are transposed (runs of a 256-row
                         // batch are 2 KB apart by a whole column: too short for the hardware prefetcher)
      for (int j = 0; j < 8; ++j) {
        col[j] = src + offsets[c0 + j];
        next[j] = c0 + 8 < f8 ? src + offsets[c0 + 8 + j] : col[j];
      }
      for (int64_t k = b0; k < b1; k += 8) {
        for (int j = 0; j < 8; ++j) _mm_prefetch(reinterpret_cast<const char*>(next[j] + k), _MM_HINT_T0);
        const __m256 v[8] = {load8<T>(col[0] + k), load8<T>(col[1] + k), load8<T>(col[2] + k), load8<T>(col[3] + k),
                             load8<T>(col[4] + k), load8<T>(col[5] + k), load8<T>(col[6] + k), load8<T>(col[7] + k)};
        __m256 r[8];
        transpose8x8(v, r);
        float* o = out + k * features + c0;
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(o + i * features, r[i]);
        for (int j = 0; j < 8; ++j) bad = _mm256_or_ps(bad, _mm256_sub_ps(v[j], v[j]));
      }
    }
  }
  return all_finite(bad);
}

// The same for outputs far larger than the caches (a whole training set): 16 values x 8 rows a step, so that each
// row's 16 values are one whole, aligned cache line, written with a non-temporal store: the line is not read
// before it is written (a third of the traffic of the cached stores) and the output does not evict the input's
// runs. Needs features % 16 == 0 and a 64-byte-aligned out (checked by the caller).
template <typename T>
__attribute__((target("avx512f,avx2"))) bool transpose_rows_stream(const T* __restrict src,
                                                                   const int64_t* __restrict offsets,
                                                                   int64_t features, int64_t r0, int64_t r1,
                                                                   float* __restrict out) {
  __m256 bad = _mm256_setzero_ps();
  for (int64_t b0 = r0; b0 + 8 <= r1; b0 += kRunRows) {
    const int64_t b1 = b0 + (std::min(kRunRows, r1 - b0) / 8) * 8;
    for (int64_t c0 = 0; c0 < features; c0 += 16) {
      const T* col[16];
      const T* next[16];
      for (int j = 0; j < 16; ++j) {
        col[j] = src + offsets[c0 + j];
        next[j] = c0 + 16 < features ? src + offsets[c0 + 16 + j] : col[j];
      }
      for (int64_t k = b0; k < b1; k += 8) {
        for (int j = 0; j < 16; ++j) _mm_prefetch(reinterpret_cast<const char*>(next[j] + k), _MM_HINT_T0);
        __m256 v[16], lo[8], hi[8];
        for (int j = 0; j < 16; ++j) v[j] = load8<T>(col[j] + k);
        transpose8x8(v, lo);
        transpose8x8(v + 8, hi);
        float* o = out + k * features + c0;
        for (int i = 0; i < 8; ++i) {
          const __m512d both = _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo[i])),
                                                  _mm256_castps_pd(hi[i]), 1);
          _mm512_stream_ps(o + i * features, _mm512_castpd_ps(both));
        }
        for (int j = 0; j < 16; ++j) bad = _mm256_or_ps(bad, _mm256_sub_ps(v[j], v[j]));
      }
    }
  }
  _mm_sfence();  // the streamed lines are visible before the caller reads them
  return all_finite(bad);
}

// Row-major rows (a whole float64 training set from Python) into an output past kStreamBytes: out[i] = src[i] over
// the flat range, 16 values a step with whole-line non-temporal stores where out is 64-byte aligned (the scalar
// cast for the few values before and after).
template <typename T>
__attribute__((target("avx512f,avx2"))) bool cast_flat_stream(const T* __restrict src, int64_t i0, int64_t i1,
                                                              float* __restrict out) {
  int bad = 0;
  int64_t i = i0;
  for (; i < i1 && reinterpret_cast<uintptr_t>(out + i) % 64 != 0; ++i) {
    out[i] = static_cast<float>(src[i]);
    bad |= !std::isfinite(out[i]);
  }
  __m512 check = _mm512_setzero_ps();
  for (; i + 16 <= i1; i += 16) {
    __m512 v;
    if constexpr (std::is_same_v<T, double>) {
      const __m256 lo = _mm512_cvtpd_ps(_mm512_loadu_pd(src + i)), hi = _mm512_cvtpd_ps(_mm512_loadu_pd(src + i + 8));
      v = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
    } else {
      v = _mm512_loadu_ps(src + i);
    }
    _mm512_stream_ps(out + i, v);
    check = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(check),
                                                 _mm512_castps_si512(_mm512_sub_ps(v, v))));
  }
  for (; i < i1; ++i) {
    out[i] = static_cast<float>(src[i]);
    bad |= !std::isfinite(out[i]);
  }
  _mm_sfence();
  return bad == 0 && _mm512_cmp_ps_mask(check, check, _CMP_UNORD_Q) == 0;
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

// Rows r0:r1 of R's order: the register transposes for whole 8 x 8 squares where the CPU has AVX2 and the type
// has a vector load (streamed 16 x 8 when `stream`: stream_ok), the scalar tiles for the rest (the last rows and
// values, or every row otherwise).
template <typename T>
bool transpose_range(const T* src, const int64_t* offsets, int64_t features, int64_t r0, int64_t r1, float* out,
                     bool stream) {
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float> || std::is_same_v<T, int32_t>) {
    if (has_avx2() && features >= 8) {
      bool finite = stream ? transpose_rows_stream<T>(src, offsets, features, r0, r1, out)
                           : transpose_rows_avx2<T>(src, offsets, features, r0, r1, out);
      const int64_t f8 = features / 8 * 8;
      // The values past the last whole 8 of every row, then the rows past the last whole 8 of every block.
      if (f8 < features) finite &= transpose_rows<T>(src, offsets, features, r0, r1, f8, features, out);
      for (int64_t b0 = r0; b0 < r1; b0 += kRunRows) {
        const int64_t b1 = std::min(b0 + kRunRows, r1);
        const int64_t tail = b0 + (b1 - b0) / 8 * 8;
        if (tail < b1) finite &= transpose_rows<T>(src, offsets, features, tail, b1, 0, f8, out);
      }
      return finite;
    }
  }
#endif
  return transpose_rows<T>(src, offsets, features, r0, r1, 0, features, out);
}

// Whether the streaming kernels write this output (transpose_rows_stream, cast_flat_stream): larger than the caches
// (a predict batch, read again at once, keeps cached stores), whole aligned lines, and a CPU with AVX-512.
bool stream_ok(int64_t rows, int64_t features, const float* out) {
#if defined(__x86_64__)
  return rows * features * static_cast<int64_t>(sizeof(float)) >= kStreamBytes && features % 16 == 0 &&
         reinterpret_cast<uintptr_t>(out) % 64 == 0 && has_avx2() && has_avx512();
#else
  return false;
#endif
}

template <typename T>
bool convert(const at::Tensor& src, int64_t start, int64_t rows, const std::vector<int64_t>& offsets,
             bool contiguous_rows, float* out) {
  const T* base = src.const_data_ptr<T>() + start * src.stride(0);
  const int64_t features = static_cast<int64_t>(offsets.size());
  const int64_t row_stride = src.stride(0);
  const bool stream = stream_ok(rows, features, out);
  std::atomic<bool> finite{true};
  if (row_stride == 1 && features > 1) {
    const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
    const int64_t grain = std::max<int64_t>(1, kGrainValues / (kBlockRows * features));
    at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
      if (!transpose_range<T>(base, offsets.data(), features, b0 * kBlockRows, std::min(b1 * kBlockRows, rows), out,
                              stream)) {
        finite.store(false, std::memory_order_relaxed);
      }
    });
    return finite.load();
  }
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    if (stream && contiguous_rows && row_stride == features) {
      at::parallel_for(0, rows * features, kGrainValues, [&](int64_t i0, int64_t i1) {
        if (!cast_flat_stream<T>(base, i0, i1, out)) finite.store(false, std::memory_order_relaxed);
      });
      return finite.load();
    }
  }
#endif
  const int64_t grain = std::max<int64_t>(1, kGrainValues / std::max<int64_t>(features, 1));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    const bool ok = contiguous_rows ? cast_rows<T>(base, row_stride, features, r0, r1, out)
                                    : gather_rows<T>(base, row_stride, offsets.data(), features, r0, r1, out);
    if (!ok) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

}  // namespace

std::tuple<at::Tensor, bool> rows_to_float32_checked_cpu(const at::Tensor& src, int64_t start, int64_t stop) {
  TORCH_CHECK(src.device().is_cpu(), "pydlr::rows_to_float32: src must be a CPU tensor, got ", src.device());
  TORCH_CHECK(src.dim() >= 1, "pydlr::rows_to_float32: src must have a first (samples) axis, got a 0-d tensor");
  const int64_t n = src.size(0);
  TORCH_CHECK(0 <= start && start <= stop && stop <= n, "pydlr::rows_to_float32: rows ", start, ":", stop,
              " are not within the ", n, " rows of src");
  for (int64_t d = 0; d < src.dim(); ++d) {
    TORCH_CHECK(src.stride(d) >= 0, "pydlr::rows_to_float32: negative strides are not supported (axis ", d, ")");
  }
  std::vector<int64_t> shape(src.sizes().begin(), src.sizes().end());
  shape[0] = stop - start;
  at::Tensor out = at::empty(shape, src.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous));
  const int64_t rows = stop - start;
  const int64_t features = rows == 0 ? 0 : out.numel() / rows;
  if (rows == 0 || features == 0) return {out, true};

  // Each value's offset within a row, in row-major order of the remaining axes.
  std::vector<int64_t> offsets(static_cast<size_t>(features));
  bool contiguous_rows = true;
  {
    std::vector<int64_t> index(static_cast<size_t>(src.dim()), 0);
    int64_t offset = 0;
    for (int64_t f = 0; f < features; ++f) {
      offsets[f] = offset;
      contiguous_rows = contiguous_rows && offset == f;
      for (int64_t d = src.dim() - 1; d >= 1; --d) {  // odometer over axes 1..dim-1
        offset += src.stride(d);
        if (++index[d] < src.size(d)) break;
        offset -= src.stride(d) * src.size(d);
        index[d] = 0;
      }
    }
  }
  float* dst = out.mutable_data_ptr<float>();
  bool finite = true;
  switch (src.scalar_type()) {
    case at::kDouble: finite = convert<double>(src, start, rows, offsets, contiguous_rows, dst); break;
    case at::kFloat: finite = convert<float>(src, start, rows, offsets, contiguous_rows, dst); break;
    case at::kInt: finite = convert<int32_t>(src, start, rows, offsets, contiguous_rows, dst); break;
    case at::kLong: finite = convert<int64_t>(src, start, rows, offsets, contiguous_rows, dst); break;
    case at::kShort: finite = convert<int16_t>(src, start, rows, offsets, contiguous_rows, dst); break;
    case at::kByte: finite = convert<uint8_t>(src, start, rows, offsets, contiguous_rows, dst); break;
    default:
      TORCH_CHECK(false, "pydlr::rows_to_float32: src must be float64, float32, int64, int32, int16 or uint8, got ",
                  src.scalar_type());
  }
  return {out, finite};
}

at::Tensor rows_to_float32_cpu(const at::Tensor& src, int64_t start, int64_t stop) {
  return std::get<0>(rows_to_float32_checked_cpu(src, start, stop));
}

}  // namespace pydlr
