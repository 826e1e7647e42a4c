// The recurrent step's product on AVX-512: C (m, n) = A (m, k) @ B (k, n), with
// B packed once per sequence into panels of 16 columns (one zmm register).
//
// Every step of a sequence multiplies the same recurrent kernel U by a few
// rows of state: BLAS repacks U per call (or, packed once, still pays its
// driver), oneDNN's matmul costs ~16 us per call to find its primitive. Here
// U is laid out once, and each step is a register-tiled loop over it:
//
//   float32:  panel p holds columns [16p, 16p + 16), k-major: P[p][kk][0..16);
//             acc[r][q] += broadcast(A[r][kk]) * P[p + q][kk]      (FMA)
//   bfloat16: pairs of k interleaved, P[p][kk/2][0..16][2] (one zmm of 32 bf16);
//             acc[r][q] += dot2(broadcast(A2[r][kk/2]), P[p + q][kk/2])
//             (vdpbf16ps: two products per lane, float32 accumulation), where
//             A2 holds each row of A rounded to bfloat16, pairs of k as 32 bits.
//
// A tile is up to kRows rows by kPanels panels of accumulators (24 of the 32
// zmm registers for float32); panels past n are zero-padded so that only the
// stores of the last panel are masked. The result is float32 in both cases.
//
// x86-64 with GCC >= 10 or clang >= 9 (target attributes, no -march flag):
// the caller checks available() / available_bf16() at run time and falls back
// elsewhere (RNNKIT_STEP_GEMM undefined: only the packing helpers exist).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__clang__) ? __clang_major__ >= 9 : defined(__GNUC__) && __GNUC__ >= 10)
#include <immintrin.h>
#define RNNKIT_STEP_GEMM 1
#endif

namespace step_gemm {

constexpr int64_t kLanes = 16;  // float32 lanes of a zmm: the panel width

inline int64_t panels(int64_t n) { return (n + kLanes - 1) / kLanes; }
// Elements of a packed operand: float32 panels (k rows), or bfloat16 panels (k rounded up to pairs).
inline int64_t packed_size(int64_t n, int64_t k, bool bf16) {
  return panels(n) * kLanes * (bf16 ? (k + 1) / 2 * 2 : k);
}

// Lay out op(B) (k, n) as panels of 16 columns, zero past n (and past k in
// the last pair): float32 P[p][kk][16] (Pair = 1), bfloat16 bits
// P[p][kk/2][16][2] (Pair = 2). op(B)[kk][j] is B[kk * ld + j], or with
// `trans` (B stored (n, k)) B[j * ld + kk]. Once per sequence.
template <int Pair, typename E>
inline void pack_panels(const E* B, int64_t ld, bool trans, int64_t k, int64_t n, E* out) {
  const int64_t kp = (k + Pair - 1) / Pair * Pair;  // k padded to whole pairs
  const int64_t panel = kp * kLanes;
  std::memset(out, 0, sizeof(E) * panels(n) * panel);
  for (int64_t p = 0; p < panels(n); ++p) {  // one panel at a time: it stays in L1 while being written
    E* dst = out + p * panel;
    const int64_t lanes = std::min(kLanes, n - p * kLanes);
    if (trans) {
      for (int64_t l = 0; l < lanes; ++l) {
        const E* src = B + (p * kLanes + l) * ld;
        for (int64_t kk = 0; kk < k; ++kk) dst[(kk / Pair) * kLanes * Pair + l * Pair + kk % Pair] = src[kk];
      }
    } else {
      for (int64_t kk = 0; kk < k; ++kk) {
        const E* src = B + kk * ld + p * kLanes;
        E* row = dst + (kk / Pair) * kLanes * Pair + kk % Pair;
        for (int64_t l = 0; l < lanes; ++l) row[l * Pair] = src[l];
      }
    }
  }
}

inline void pack(const float* B, int64_t ld, bool trans, int64_t k, int64_t n, float* out) {
  pack_panels<1>(B, ld, trans, k, n, out);
}

inline void pack_bf16(const uint16_t* B, int64_t ld, bool trans, int64_t k, int64_t n, uint16_t* out) {
  pack_panels<2>(B, ld, trans, k, n, out);
}

#ifdef RNNKIT_STEP_GEMM

#define RNNKIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define RNNKIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

inline bool available() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }
inline bool available_bf16() { return available() && __builtin_cpu_supports("avx512bf16"); }

constexpr int kRows = 6;    // rows of a register tile
constexpr int kPanels = 4;  // panels of a register tile: 6 x 4 = 24 accumulators

// Stores of the last panel keep only the columns below n.
RNNKIT_AVX512 inline __mmask16 lane_mask(int64_t rest) {
  return rest >= kLanes ? __mmask16(0xffff) : __mmask16((1u << rest) - 1);
}

// C[0..R)[j0 .. j0 + 16Q) of one tile, float32: `P` points at panel j0 / 16.
template <int R, int Q>
RNNKIT_AVX512 inline void tile(const float* A, int64_t lda, const float* P, int64_t k, float* C, int64_t ldc,
                               int64_t rest) {
  __m512 acc[R][Q];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_setzero_ps();
  const int64_t stride = k * kLanes;  // one panel
  for (int64_t kk = 0; kk < k; ++kk) {
    __m512 b[Q];
    for (int q = 0; q < Q; ++q) b[q] = _mm512_loadu_ps(P + q * stride + kk * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + kk]);
      for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_fmadd_ps(a, b[q], acc[r][q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q)
      _mm512_mask_storeu_ps(C + r * ldc + q * kLanes, lane_mask(rest - q * kLanes), acc[r][q]);
}

// bfloat16: A2 (R rows of (k + 1) / 2 pairs, row stride lda2), P bfloat16 panels.
template <int R, int Q>
RNNKIT_AVX512_BF16 inline void tile_bf16(const uint32_t* A2, int64_t lda2, const uint16_t* P, int64_t k2, float* C,
                                         int64_t ldc, int64_t rest) {
  __m512 acc[R][Q];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_setzero_ps();
  const int64_t stride = k2 * 2 * kLanes;  // one panel
  for (int64_t kk = 0; kk < k2; ++kk) {
    __m512bh b[Q];
    for (int q = 0; q < Q; ++q) b[q] = (__m512bh)_mm512_loadu_si512(P + q * stride + kk * 2 * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(A2[r * lda2 + kk]));
      for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], a, b[q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q)
      _mm512_mask_storeu_ps(C + r * ldc + q * kLanes, lane_mask(rest - q * kLanes), acc[r][q]);
}

// A tile's instances by rows and panels: table[r - 1][q - 1].
#define RNNKIT_ROW(F, R) {F<R, 1>, F<R, 2>, F<R, 3>, F<R, 4>}
#define RNNKIT_TABLE(F) {RNNKIT_ROW(F, 1), RNNKIT_ROW(F, 2), RNNKIT_ROW(F, 3), RNNKIT_ROW(F, 4), RNNKIT_ROW(F, 5), \
                         RNNKIT_ROW(F, 6)}
using TileF32 = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t);
using TileBf16 = void (*)(const uint32_t*, int64_t, const uint16_t*, int64_t, float*, int64_t, int64_t);

// Panels [p0, p1) of C = A @ B: groups of kPanels panels outside (a group's
// slice of B is read once per row tile, from L1 or L2), row tiles inside.
template <typename Op, typename Pk, typename Tile>
inline void sweep(const Tile (&tiles)[kRows][kPanels], const Op* A, int64_t lda, const Pk* P, int64_t panel,
                  int64_t m, int64_t n, int64_t kk, float* C, int64_t ldc, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; p += kPanels) {
    const int64_t q = std::min<int64_t>(kPanels, p1 - p);
    for (int64_t i = 0; i < m; i += kRows) {
      const int64_t r = std::min<int64_t>(kRows, m - i);
      tiles[r - 1][q - 1](A + i * lda, lda, P + p * panel, kk, C + i * ldc + p * kLanes, ldc, n - p * kLanes);
    }
  }
}

// C (m, n) = A (m, k) @ B, P = pack(B); only the columns of panels [p0, p1).
inline void mul(const float* A, int64_t lda, const float* P, int64_t m, int64_t n, int64_t k, float* C, int64_t ldc,
                int64_t p0, int64_t p1) {
  static constexpr TileF32 tiles[kRows][kPanels] = RNNKIT_TABLE(tile);
  sweep(tiles, A, lda, P, k * kLanes, m, n, k, C, ldc, p0, p1);
}

// Round A (m, k) to bfloat16 (nearest even) into A2: rows of (k + 1) / 2 pairs, a zero past k.
RNNKIT_AVX512_BF16 inline void round_rows(const float* A, int64_t lda, int64_t m, int64_t k, uint32_t* A2) {
  const int64_t k2 = (k + 1) / 2;
  for (int64_t i = 0; i < m; ++i) {
    uint16_t* row = reinterpret_cast<uint16_t*>(A2 + i * k2);
    for (int64_t j = 0; j < k; j += kLanes) {
      const __mmask16 keep = lane_mask(k - j);
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(keep, A + i * lda + j));
      _mm256_mask_storeu_epi16(row + j, keep, (__m256i)h);
    }
    if (k % 2) row[k] = 0;
  }
}

// C (m, n) = bf16(A) (m, k) @ B, P = pack_bf16(B), A2 = round_rows(A); panels [p0, p1).
inline void mul_bf16(const uint32_t* A2, const uint16_t* P, int64_t m, int64_t n, int64_t k, float* C, int64_t ldc,
                     int64_t p0, int64_t p1) {
  static constexpr TileBf16 tiles[kRows][kPanels] = RNNKIT_TABLE(tile_bf16);
  const int64_t k2 = (k + 1) / 2;
  sweep(tiles, A2, k2, P, k2 * 2 * kLanes, m, n, k2, C, ldc, p0, p1);
}
#undef RNNKIT_TABLE
#undef RNNKIT_ROW

#endif  // RNNKIT_STEP_GEMM

}  // namespace step_gemm
