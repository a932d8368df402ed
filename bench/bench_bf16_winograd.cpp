// The GEMM stage of pydlr's Winograd F(4x4, 3x3) forward (native/winograd_cpu.cpp: 36 GEMMs [tiles x C] x [C x OC]
// a block of 64 tiles) in float32 FMA against the same GEMMs on bfloat16 pairs with AVX512-BF16's vdpbf16ps
// (float32 accumulation): how much a bf16 Winograd could save on the seed's 32->64 layer, one thread.
// Prints per-block microseconds, GFLOP/s, and the cost of converting the transformed input to bf16.
//
// Build and run (a CPU with avx512_bf16): g++ -O3 -march=native -o /tmp/bf16_gemm bench/bench_bf16_winograd.cpp && /tmp/bf16_gemm
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

typedef float vf16 __attribute__((vector_size(64)));
static inline vf16 vload(const float* p) { vf16 v; std::memcpy(&v, p, 64); return v; }
static inline void vstore(float* p, vf16 v) { std::memcpy(p, &v, 64); }

// The float32 register tile of winograd_cpu.cpp's gemm_rows (R rows x 4 vectors of 16 columns).
template <int R>
static inline void rows_f32(int64_t C, int64_t OC, const float* u, const float* w, float* m, int64_t t0) {
  vf16 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vf16{};
  for (int64_t c = 0; c < C; ++c) {
    vf16 wv[4];
    for (int v = 0; v < 4; ++v) wv[v] = vload(w + c * OC + 16 * v);
    for (int r = 0; r < R; ++r) {
      const float ur = u[(t0 + r) * C + c];
      for (int v = 0; v < 4; ++v) acc[r][v] += wv[v] * ur;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) vstore(m + (t0 + r) * OC + 16 * v, acc[r][v]);
}

// The same tile on bf16: u as [tiles][C/2] pairs of bf16, w as [C/2][OC][2] (pairs of input channels interleaved).
template <int R>
static inline void rows_bf16(int64_t C2, int64_t OC, const uint32_t* u, const __m512i* w, float* m, int64_t t0) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C2; ++c) {
    __m512bh wv[4];
    for (int v = 0; v < 4; ++v) wv[v] = (__m512bh)_mm512_loadu_si512(w + c * 4 + v);
    for (int r = 0; r < R; ++r) {
      const __m512bh ur = (__m512bh)_mm512_set1_epi32((int)u[(t0 + r) * C2 + c]);
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ur, wv[v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(m + (t0 + r) * OC + 16 * v, acc[r][v]);
}

template <typename F>
static double micros(F f, int iters = 2000) {
  f();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
}

int main() {
  const int64_t nt = 64, C = 32, OC = 64, K = 36;  // a block of 64 tiles of the seed's 32->64 layer
  std::vector<float> u(K * nt * C), w(K * C * OC), m(K * nt * OC);
  for (auto& x : u) x = std::rand() / (float)RAND_MAX;
  for (auto& x : w) x = std::rand() / (float)RAND_MAX;
  std::vector<uint32_t> ub(K * nt * C / 2);
  std::vector<__m512i> wb(K * C / 2 * 4);
  const double tf = micros([&] {
    for (int64_t k = 0; k < K; ++k) {
      const float *uk = u.data() + k * nt * C, *wk = w.data() + k * C * OC;
      float* mk = m.data() + k * nt * OC;
      int64_t t0 = 0;
      for (; t0 + 6 <= nt; t0 += 6) rows_f32<6>(C, OC, uk, wk, mk, t0);
      for (; t0 < nt; ++t0) rows_f32<1>(C, OC, uk, wk, mk, t0);
    }
  });
  const double tb = micros([&] {
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t* uk = ub.data() + k * nt * C / 2;
      const __m512i* wk = wb.data() + k * C / 2 * 4;
      float* mk = m.data() + k * nt * OC;
      int64_t t0 = 0;
      for (; t0 + 6 <= nt; t0 += 6) rows_bf16<6>(C / 2, OC, uk, wk, mk, t0);
      for (; t0 < nt; ++t0) rows_bf16<1>(C / 2, OC, uk, wk, mk, t0);
    }
  });
  const double tc = micros([&] {
    for (int64_t i = 0; i < K * nt * C; i += 32) {
      const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(u.data() + i + 16), _mm512_loadu_ps(u.data() + i));
      _mm512_storeu_si512(ub.data() + i / 2, (__m512i)b);
    }
  });
  const double flop = 2.0 * K * nt * C * OC;
  std::printf("36 GEMMs of a 64-tile block (C=32, OC=64), one thread: float32 %.1f us (%.0f GFLOP/s), "
              "bf16 %.1f us (%.0f GFLOP/s), input to bf16 %.1f us\n",
              tf, flop / tf / 1e3, tb, flop / tb / 1e3, tc);
  std::printf("the seed's 32->64 forward at batch 64 (576 tiles, 9 blocks): float32 %.0f us, bf16 %.0f us "
              "(+ %.0f us conversion), one thread\n", 9 * tf, 9 * tb, 9 * tc);
  return 0;
}
