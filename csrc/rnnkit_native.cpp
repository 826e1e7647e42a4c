// rnnkit's fused sequence engine: the whole time loop of a built-in cell, in C++.
//
// The Python side (src/rnnkit/kernels/native.py) calls `forward` once per
// sequence and cell with the time-major input x (T, B, F). It computes the
// input projection of every step as one GEMM, xw = x W, then per step
//
//     mm = h_in @ U                          one GEMM into a reused buffer
//     state = pointwise(xw_t + b, mm, ...)   one fused pass over the batch rows
//
// and `backward` runs backprop through time the same way (per step one GEMM
// with U^T and one fused pass), then each weight gradient (W, U, biases) as
// one product or reduction over all steps, and the input gradient as one GEMM.
// `step` is a separate single-step path for generation at small batch.
//
// Numbers: float64 uses std::exp/std::tanh (matches torch to ~1e-15);
// float32 uses a vectorizable exp (Cephes polynomial, ~1 ulp) for sigmoid
// (max 1.5e-7 relative) and a rational tanh (max 4e-7 relative, measured),
// well inside the 1e-5 the tests ask for.
//
// Masks (Keras semantics, as rnnkit.reference_loop): at a masked step a row
// keeps its state; its output repeats the previous output, which is the state
// h once the row has had a valid step, zeros before that (or always zeros with
// zero_output_for_mask).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "step_gemm.h"

namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
// One copy of each pointwise step per instruction set; the loader picks the
// best one for the CPU at run time (GCC function multiversioning). The
// x86-64 levels, not bare "avx2": that one alone leaves out FMA.
#define RNNKIT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RNNKIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RNNKIT_CLONES
#endif
#define RNNKIT_INLINE inline __attribute__((always_inline))

// Cell codes, shared with kernels/native.py.
enum Cell : int64_t { SIMPLE = 0, GRU_AFTER = 1, GRU_BEFORE = 2, LSTM = 3 };
// Activation codes (SimpleRNN's activation; the gated cells use tanh/sigmoid).
enum Act : int64_t { TANH = 0, SIGMOID = 1, RELU = 2, LINEAR = 3 };

// ------------------------------------------------------------ fast math
// exp(x) for float: Cody-Waite range reduction, degree-6 polynomial, 2^n by
// building the exponent bits. Branch-free so the loops vectorize.
RNNKIT_INLINE float exp_fast(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln 2)
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

RNNKIT_INLINE float sigmoid_of(float x) { return 1.f / (1.f + exp_fast(-x)); }
RNNKIT_INLINE double sigmoid_of(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// tanh(x) = x P(x^2) / Q(x^2), a rational fit of ours (least squares on the
// relative error over (0, 9], reweighted; benchmarks/fit_tanh.py derives it and
// measures at most 4e-7 relative error). No exp and one division: 8% faster
// SimpleRNN and 3% faster LSTM sequences than tanh through exp_fast (measured).
// Odd by construction, so small |x| keeps its relative accuracy; beyond
// |x| = 9 tanh rounds to +-1 in float32.
RNNKIT_INLINE float tanh_of(float x) {
  x = x < -9.f ? -9.f : (x > 9.f ? 9.f : x);
  const float x2 = x * x;
  float p = 1.924241760e-11f;
  p = p * x2 + -1.318236415e-08f;
  p = p * x2 + 9.406470470e-06f;
  p = p * x2 + 2.936402176e-03f;
  p = p * x2 + 1.293394482e-01f;
  p = p * x2 + 9.999999748e-01f;
  float q = 2.302375595e-04f;
  q = q * x2 + 2.382768703e-02f;
  q = q * x2 + 4.626725203e-01f;
  q = q * x2 + 1.f;
  const float t = x * p / q;
  return t > 1.f ? 1.f : (t < -1.f ? -1.f : t);
}
RNNKIT_INLINE double tanh_of(double x) { return std::tanh(x); }

template <int A, typename T>
RNNKIT_INLINE T act(T x) {
  if constexpr (A == TANH) return tanh_of(x);
  else if constexpr (A == SIGMOID) return sigmoid_of(x);
  else if constexpr (A == RELU) return x > T(0) ? x : T(0);
  else return x;
}

// The activation's derivative, from its output y.
template <int A, typename T>
RNNKIT_INLINE T dact(T y) {
  if constexpr (A == TANH) return T(1) - y * y;
  else if constexpr (A == SIGMOID) return y * (T(1) - y);
  else if constexpr (A == RELU) return y > T(0) ? T(1) : T(0);
  else return T(1);
}

// ------------------------------------------------------ step arguments
// Pointers into one time step; every matrix is row-major (B, width).
template <typename T>
struct Step {
  int64_t B, U;
  int64_t b0, b1;     // the rows this call handles (threads split the batch)
  const T* xw;        // (B, G) projected input x_t W, without the bias
  const T* bin;       // (G,) input bias (zeros when the cell has none)
  const T* mm;        // (B, G) or (B, 2U) for GRU_BEFORE: h_in @ U (phase 1)
  const T* mm2;       // (B, U) GRU_BEFORE phase 2: (r * h_in) @ U_h
  const T* brec;      // (G,) GRU_AFTER recurrent bias (zeros when none)
  const T* hprev;     // (B, U) state before the step
  const T* cprev;     // (B, U) LSTM memory before the step
  T* h;               // (B, U) state after the step
  T* c;               // (B, U) LSTM memory after the step
  T* y;               // (B, U) output (== h without a mask)
  T* gates;           // (B, K) what backward needs (see each cell)
  T* rh;              // (B, U) GRU_BEFORE: r * h_in
  T* hin;             // (B, U) h * recurrent-dropout mask, for the next matmul; or null
  const T* rd;        // (B, U) recurrent-dropout mask, or null
  const bool* m;      // (B,) step mask, or null
  const bool* seen;   // (B,) has the row had a valid step before this one
  bool zero_out;
};

// A masked row: keep the state, repeat the previous output (or zeros).
template <typename T>
RNNKIT_INLINE void keep_row(const Step<T>& s, int64_t b, int64_t K) {
  const int64_t U = s.U;
  std::memcpy(s.h + b * U, s.hprev + b * U, U * sizeof(T));
  if (s.c) std::memcpy(s.c + b * U, s.cprev + b * U, U * sizeof(T));
  if (s.y != s.h) {
    if (s.zero_out || !s.seen[b]) std::memset(s.y + b * U, 0, U * sizeof(T));
    else std::memcpy(s.y + b * U, s.hprev + b * U, U * sizeof(T));
  }
  if (s.hin) {
    for (int64_t j = 0; j < U; ++j) s.hin[b * U + j] = s.hprev[b * U + j] * s.rd[b * U + j];
  }
  // Saved values of a masked row are never read by backward; zero them so the
  // weight-gradient matmuls never see uninitialized memory (0 * NaN = NaN).
  if (s.gates) std::memset(s.gates + b * K, 0, K * sizeof(T));
  if (s.rh) std::memset(s.rh + b * U, 0, U * sizeof(T));
}

template <typename T>
RNNKIT_INLINE void finish_row(const Step<T>& s, int64_t b) {
  const int64_t U = s.U;
  if (s.y != s.h) std::memcpy(s.y + b * U, s.h + b * U, U * sizeof(T));
  if (s.hin) {
    T* __restrict hin = s.hin + b * U;
    const T* __restrict h = s.h + b * U;
    const T* __restrict rd = s.rd + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) hin[j] = h[j] * rd[j];
  }
}

// SimpleRNN: h = act(x W + b + h_in U). Saves nothing beyond h.
template <int A, typename T>
RNNKIT_INLINE void simple_fwd(const Step<T>& s) {
  const int64_t U = s.U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) { keep_row(s, b, 0); continue; }
    const T* __restrict xw = s.xw + b * U;
    const T* __restrict bi = s.bin;
    const T* __restrict mm = s.mm + b * U;
    T* __restrict h = s.h + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) h[j] = act<A>(xw[j] + bi[j] + mm[j]);
    finish_row(s, b);
  }
}

// LSTM, gates i, f, c, o, from x W + b + h_in U.
// Saves the activated gates (i, f, g, o), tanh(c) and c.
template <typename T>
RNNKIT_INLINE void lstm_fwd(const Step<T>& s) {
  const int64_t U = s.U, G = 4 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) { keep_row(s, b, 5 * U); continue; }
    const T* __restrict xw = s.xw + b * G;
    const T* __restrict bi = s.bin;
    const T* __restrict mm = s.mm + b * G;
    const T* __restrict cp = s.cprev + b * U;
    T* __restrict gt = s.gates + b * 5 * U;
    T* __restrict c = s.c + b * U;
    T* __restrict h = s.h + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T i = sigmoid_of(xw[j] + bi[j] + mm[j]);
      const T f = sigmoid_of(xw[U + j] + bi[U + j] + mm[U + j]);
      const T g = tanh_of(xw[2 * U + j] + bi[2 * U + j] + mm[2 * U + j]);
      const T o = sigmoid_of(xw[3 * U + j] + bi[3 * U + j] + mm[3 * U + j]);
      const T cn = f * cp[j] + i * g;
      gt[j] = i, gt[U + j] = f, gt[2 * U + j] = g, gt[3 * U + j] = o;
      const T tc = tanh_of(cn);
      c[j] = cn;
      gt[4 * U + j] = tc;
      h[j] = o * tc;
    }
    finish_row(s, b);
  }
}

// GRU, reset_after=True, gates z, r, h. Saves (z, r, hh, hn) with
// hn = (h_in U + b_rec)_h, the term the reset gate multiplies.
template <typename T>
RNNKIT_INLINE void gru_after_fwd(const Step<T>& s) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) { keep_row(s, b, 4 * U); continue; }
    const T* __restrict xw = s.xw + b * G;
    const T* __restrict bi = s.bin;
    const T* __restrict br = s.brec;
    const T* __restrict mm = s.mm + b * G;
    const T* __restrict hp = s.hprev + b * U;
    T* __restrict gt = s.gates + b * 4 * U;
    T* __restrict h = s.h + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T z = sigmoid_of(xw[j] + bi[j] + mm[j] + br[j]);
      const T r = sigmoid_of(xw[U + j] + bi[U + j] + mm[U + j] + br[U + j]);
      const T hn = mm[2 * U + j] + br[2 * U + j];
      const T hh = tanh_of(xw[2 * U + j] + bi[2 * U + j] + r * hn);
      gt[j] = z, gt[U + j] = r, gt[2 * U + j] = hh, gt[3 * U + j] = hn;
      h[j] = z * hp[j] + (T(1) - z) * hh;
    }
    finish_row(s, b);
  }
}

// GRU, reset_after=False, phase 1: z, r from h_in U_zr, and rh = r * h_in for
// the second matmul. Saves (z, r, hh) in gates (hh filled by phase 2).
template <typename T>
RNNKIT_INLINE void gru_before_fwd1(const Step<T>& s) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) continue;  // phase 2 keeps the row
    const T* __restrict xw = s.xw + b * G;
    const T* __restrict bi = s.bin;
    const T* __restrict mm = s.mm + b * 2 * U;
    const T* __restrict hi = (s.rd ? s.hin : s.hprev) + b * U;  // h_in of this step
    T* __restrict gt = s.gates + b * G;
    T* __restrict rh = s.rh + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T z = sigmoid_of(xw[j] + bi[j] + mm[j]);
      const T r = sigmoid_of(xw[U + j] + bi[U + j] + mm[U + j]);
      gt[j] = z, gt[U + j] = r;
      rh[j] = r * hi[j];
    }
  }
}

template <typename T>
RNNKIT_INLINE void gru_before_fwd2(const Step<T>& s) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) { keep_row(s, b, G); continue; }
    const T* __restrict xw = s.xw + b * G;
    const T* __restrict bi = s.bin;
    const T* __restrict mm2 = s.mm2 + b * U;
    const T* __restrict hp = s.hprev + b * U;
    T* __restrict gt = s.gates + b * G;
    T* __restrict h = s.h + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T z = gt[j];
      const T hh = tanh_of(xw[2 * U + j] + bi[2 * U + j] + mm2[j]);
      gt[2 * U + j] = hh;
      h[j] = z * hp[j] + (T(1) - z) * hh;
    }
    finish_row(s, b);
  }
}

// ----------------------------------------------------- backward steps
// Per row, the gradient reaching the state h_t is
//     gh = rd * mm + keep + dy_t
// where mm = (next step's recurrent-input gradient) @ U^T (zero rows where
// that step was masked), keep holds the terms that bypass that matmul (the
// GRU's z * gh, or a masked row's pass-through), dy_t the output's gradient.
template <typename T>
struct Back {
  int64_t B, U;
  int64_t b0, b1;
  const T* dy;        // (B, U) gradient of this step's output (row stride dy_rs), or null
  int64_t dy_rs;
  const T* mm;        // (B, U) (next step's dHU) @ U^T
  const T* mm2;       // (B, U) GRU_BEFORE: dph @ U_h^T
  T* keep;            // (B, U) in: from the next step; out: for the previous step
  T* dc;              // (B, U) LSTM: gradient on c_t in, on c_{t-1} out
  const T* rd;        // (B, U) recurrent-dropout mask, or null
  const T* gates;     // saved gates of this step
  const T* h;         // (B, U) state after this step (SimpleRNN's act output)
  const T* hprev;     // (B, U) state before this step
  const T* cprev;     // (B, U)
  const T* hin;       // (B, U) GRU_BEFORE: h_in of this step
  T* dxw;             // (B, G) gradient of the projected input
  T* dhu;             // (B, G) gradient of h_in U (+ b_rec); == dxw except GRU_AFTER
  const bool* m;
  const bool* seen;
  bool zero_out;
};

// gh for row b into `out` (length U); for a masked row also sets keep and zeros dxw/dhu.
template <typename T>
RNNKIT_INLINE bool grad_h(const Back<T>& s, int64_t b, T* __restrict out, int64_t G) {
  const int64_t U = s.U;
  const T* __restrict mm = s.mm + b * U;
  T* __restrict keep = s.keep + b * U;
  const T* __restrict dy = s.dy ? s.dy + b * s.dy_rs : nullptr;
  if (s.rd) {
    const T* __restrict rd = s.rd + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) out[j] = rd[j] * mm[j] + keep[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) out[j] = mm[j] + keep[j];
  }
  const bool valid = !s.m || s.m[b];
  if (valid) {
    if (dy) {
#pragma omp simd
      for (int64_t j = 0; j < U; ++j) out[j] += dy[j];
    }
    return true;
  }
  // Masked: state passes through; the repeated output routes its gradient to
  // the state (which equals the last valid output) once the row has one.
  if (dy && !s.zero_out && s.seen[b]) {
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) out[j] += dy[j];
  }
  std::memcpy(keep, out, U * sizeof(T));
  std::memset(s.dxw + b * G, 0, G * sizeof(T));
  if (s.dhu != s.dxw) std::memset(s.dhu + b * G, 0, G * sizeof(T));
  return false;
}

template <int A, typename T>
RNNKIT_INLINE void simple_bwd(const Back<T>& s, T* gh) {
  const int64_t U = s.U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (!grad_h(s, b, gh, U)) continue;
    const T* __restrict h = s.h + b * U;
    T* __restrict dz = s.dxw + b * U;
    T* __restrict keep = s.keep + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      dz[j] = gh[j] * dact<A>(h[j]);
      keep[j] = T(0);
    }
  }
}

template <typename T>
RNNKIT_INLINE void lstm_bwd(const Back<T>& s, T* gh) {
  const int64_t U = s.U, G = 4 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (!grad_h(s, b, gh, G)) continue;
    const T* __restrict gt = s.gates + b * 5 * U;
    const T* __restrict cp = s.cprev + b * U;
    T* __restrict dcs = s.dc + b * U;
    T* __restrict dz = s.dxw + b * G;
    T* __restrict keep = s.keep + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T i = gt[j], f = gt[U + j], g = gt[2 * U + j], o = gt[3 * U + j];
      const T tc = gt[4 * U + j];
      const T dc = dcs[j] + gh[j] * o * (T(1) - tc * tc);
      dz[j] = dc * g * i * (T(1) - i);
      dz[U + j] = dc * cp[j] * f * (T(1) - f);
      dz[2 * U + j] = dc * i * (T(1) - g * g);
      dz[3 * U + j] = gh[j] * tc * o * (T(1) - o);
      dcs[j] = dc * f;
      keep[j] = T(0);
    }
  }
}

template <typename T>
RNNKIT_INLINE void gru_after_bwd(const Back<T>& s, T* gh) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (!grad_h(s, b, gh, G)) continue;
    const T* __restrict gt = s.gates + b * 4 * U;
    const T* __restrict hp = s.hprev + b * U;
    T* __restrict dx = s.dxw + b * G;
    T* __restrict dh = s.dhu + b * G;
    T* __restrict keep = s.keep + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T z = gt[j], r = gt[U + j], hh = gt[2 * U + j], hn = gt[3 * U + j];
      const T dph = gh[j] * (T(1) - z) * (T(1) - hh * hh);
      const T dpz = gh[j] * (hp[j] - hh) * z * (T(1) - z);
      const T dpr = dph * hn * r * (T(1) - r);
      dx[j] = dpz, dx[U + j] = dpr, dx[2 * U + j] = dph;
      dh[j] = dpz, dh[U + j] = dpr, dh[2 * U + j] = dph * r;
      keep[j] = gh[j] * z;
    }
  }
}

// GRU reset_after=False, phase 1 (before dph @ U_h^T): dph, dpz, keep = z * gh.
template <typename T>
RNNKIT_INLINE void gru_before_bwd1(const Back<T>& s, T* gh) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (!grad_h(s, b, gh, G)) continue;
    const T* __restrict gt = s.gates + b * G;
    const T* __restrict hp = s.hprev + b * U;
    T* __restrict dx = s.dxw + b * G;
    T* __restrict keep = s.keep + b * U;
#pragma omp simd
    for (int64_t j = 0; j < U; ++j) {
      const T z = gt[j], hh = gt[2 * U + j];
      dx[j] = gh[j] * (hp[j] - hh) * z * (T(1) - z);
      dx[2 * U + j] = gh[j] * (T(1) - z) * (T(1) - hh * hh);
      keep[j] = gh[j] * z;
    }
  }
}

// Phase 2 (after mm2 = dph @ U_h^T = d(r * h_in)): dpr, and keep += rd * r * mm2.
template <typename T>
RNNKIT_INLINE void gru_before_bwd2(const Back<T>& s) {
  const int64_t U = s.U, G = 3 * U;
  for (int64_t b = s.b0; b < s.b1; ++b) {
    if (s.m && !s.m[b]) continue;
    const T* __restrict gt = s.gates + b * G;
    const T* __restrict hi = s.hin + b * U;
    const T* __restrict m2 = s.mm2 + b * U;
    T* __restrict dx = s.dxw + b * G;
    T* __restrict keep = s.keep + b * U;
    if (s.rd) {
      const T* __restrict rd = s.rd + b * U;
#pragma omp simd
      for (int64_t j = 0; j < U; ++j) {
        const T r = gt[U + j];
        dx[U + j] = m2[j] * hi[j] * r * (T(1) - r);
        keep[j] += rd[j] * r * m2[j];
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < U; ++j) {
        const T r = gt[U + j];
        dx[U + j] = m2[j] * hi[j] * r * (T(1) - r);
        keep[j] += r * m2[j];
      }
    }
  }
}

// --------------------------------------- multiversioned step drivers
// Non-template entry points so GCC can clone them per instruction set; the
// always-inline templates above are compiled into each clone.
#define RNNKIT_DEFINE(T)                                                                      \
  RNNKIT_CLONES void fwd_step(const Step<T>& s, int64_t cell, int64_t a, int phase) {         \
    switch (cell) {                                                                           \
      case SIMPLE:                                                                            \
        if (a == TANH) simple_fwd<TANH>(s);                                                   \
        else if (a == SIGMOID) simple_fwd<SIGMOID>(s);                                        \
        else if (a == RELU) simple_fwd<RELU>(s);                                              \
        else simple_fwd<LINEAR>(s);                                                           \
        break;                                                                                \
      case LSTM: lstm_fwd(s); break;                                                          \
      case GRU_AFTER: gru_after_fwd(s); break;                                                \
      default:                                                                                \
        if (phase == 1) gru_before_fwd1(s);                                                   \
        else gru_before_fwd2(s);                                                              \
    }                                                                                         \
  }                                                                                           \
  RNNKIT_CLONES void bwd_step(const Back<T>& s, T* gh, int64_t cell, int64_t a, int phase) {  \
    switch (cell) {                                                                           \
      case SIMPLE:                                                                            \
        if (a == TANH) simple_bwd<TANH>(s, gh);                                               \
        else if (a == SIGMOID) simple_bwd<SIGMOID>(s, gh);                                    \
        else if (a == RELU) simple_bwd<RELU>(s, gh);                                          \
        else simple_bwd<LINEAR>(s, gh);                                                       \
        break;                                                                                \
      case LSTM: lstm_bwd(s, gh); break;                                                      \
      case GRU_AFTER: gru_after_bwd(s, gh); break;                                            \
      default:                                                                                \
        if (phase == 1) gru_before_bwd1(s, gh);                                               \
        else gru_before_bwd2(s);                                                              \
    }                                                                                         \
  }

RNNKIT_DEFINE(float)
RNNKIT_DEFINE(double)

// ------------------------------------------------ flush-to-zero mode
// Gradients that decay back through a long sequence become subnormal floats,
// and arithmetic on subnormals runs 10-100x slower on x86 (microcode assists):
// issue 14 measured a 1,000-step LSTM training step at 5.8 s, 0.36 s flushed.
// So every entry point runs with subnormal results flushed to zero and
// subnormal inputs read as zero (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on aarch64)
// and gives each thread back the mode it had. The FP mode is per thread: the
// calling thread, each at::parallel_for body and each thread BLAS or oneDNN
// runs on (torch's OpenMP pool) sets it for itself. Off with
// rnnkit.kernels.flush_denormals(False) (set_flush_denormals below).
std::atomic<bool> g_flush{true};

#if defined(__x86_64__)
constexpr uint32_t kFlushBits = (1u << 15) | (1u << 6);  // MXCSR FTZ, DAZ
uint32_t fp_mode() { return _mm_getcsr(); }
void set_fp_mode(uint32_t m) { _mm_setcsr(m); }
#elif defined(__aarch64__)
constexpr uint64_t kFlushBits = uint64_t(1) << 24;  // FPCR.FZ (inputs and results)
uint64_t fp_mode() { uint64_t m; __asm__ __volatile__("mrs %0, fpcr" : "=r"(m)); return m; }
void set_fp_mode(uint64_t m) { __asm__ __volatile__("msr fpcr, %0" : : "r"(m)); }
#else
constexpr uint32_t kFlushBits = 0;  // no known switch: subnormals stay (correct, maybe slow)
uint32_t fp_mode() { return 0; }
void set_fp_mode(uint32_t) {}
#endif
using FpMode = decltype(fp_mode());

// Per thread: how many flush scopes are open, and the mode before the first.
thread_local int tl_flush_depth = 0;
thread_local FpMode tl_saved_mode = 0;

void flush_enter() {
  if (tl_flush_depth++ == 0) {
    tl_saved_mode = fp_mode();
    set_fp_mode(tl_saved_mode | kFlushBits);
  }
}
void flush_leave() {
  if (tl_flush_depth > 0 && --tl_flush_depth == 0) set_fp_mode(tl_saved_mode);
}

// This thread, for one scope (a call, or one parallel_for body).
struct ThreadFlush {
  const bool on = g_flush.load(std::memory_order_relaxed);
  ThreadFlush() { if (on) flush_enter(); }
  ~ThreadFlush() { if (on) flush_leave(); }
  ThreadFlush(const ThreadFlush&) = delete;
  ThreadFlush& operator=(const ThreadFlush&) = delete;
};

// f on the calling thread and on every other thread of torch's OpenMP pool:
// the threads MKL's GEMMs and oneDNN's kernels run on, which no
// parallel_for body of ours reaches. (The extension's OpenMP is torch's
// libgomp, one pool; libgomp reuses the same threads for every team.)
template <typename F>
void on_pool(F f) {
  f();
#ifdef _OPENMP
  if (omp_in_parallel()) return;  // inside a parallel region: the pool is busy, nested teams are serial
  const int n = at::get_num_threads();
#pragma omp parallel num_threads(n)
  {
    if (omp_get_thread_num() != 0) f();
  }
#endif
}

// The calling thread and the pool, for one sequence call (forward, backward).
struct PoolFlush {
  const bool on = g_flush.load(std::memory_order_relaxed);
  PoolFlush() { if (on) on_pool(flush_enter); }
  ~PoolFlush() { if (on) on_pool(flush_leave); }
  PoolFlush(const PoolFlush&) = delete;
  PoolFlush& operator=(const PoolFlush&) = delete;
};

// ----------------------------------------------------------- helpers
template <typename T>
T* ptr(const at::Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; }

int64_t gate_width(int64_t cell) { return cell == LSTM ? 4 : (cell == SIMPLE ? 1 : 3); }
int64_t saved_width(int64_t cell) { return cell == LSTM ? 5 : cell == GRU_AFTER ? 4 : (cell == SIMPLE ? 0 : 3); }

// Split the batch rows of a pointwise step over torch's intra-op threads;
// small steps (generation at batch 1) stay on the calling thread.
template <typename T>
void fwd_par(const Step<T>& s, int64_t cell, int64_t a, int phase) {
  const int64_t grain = std::max<int64_t>(1, 16384 / (s.U * gate_width(cell)));
  at::parallel_for(0, s.B, grain, [&](int64_t b0, int64_t b1) {
    ThreadFlush flush;
    Step<T> part = s;
    part.b0 = b0, part.b1 = b1;
    fwd_step(part, cell, a, phase);
  });
}

template <typename T>
void bwd_par(const Back<T>& s, T* gh, int64_t cell, int64_t a, int phase) {
  const int64_t grain = std::max<int64_t>(1, 16384 / (s.U * gate_width(cell)));
  at::parallel_for(0, s.B, grain, [&](int64_t b0, int64_t b1) {
    ThreadFlush flush;
    Back<T> part = s;
    part.b0 = b0, part.b1 = b1;
    bwd_step(part, gh + b0 * s.U, cell, a, phase);  // gh: per-row scratch, one row per chunk
  });
}

// The recurrence is independent across batch rows, forward and backward.
// With enough rows, each thread takes one contiguous block and runs the whole
// time loop for it (single-threaded GEMMs on its rows, its own pointwise
// pass): no synchronization per step, where splitting each step costs two
// parallel regions (and their barriers) per step. Below kMinBlockRows rows
// per thread (or with one thread) the sequence runs as one block with the
// per-step split instead.
constexpr int64_t kMinBlockRows = 32;

// torch turns MKL's dynamic threading off, so an MKL GEMM called inside a
// parallel region may start nested threads of its own (more threads than
// cores). A block's GEMMs belong to its thread alone: this sets MKL's
// thread-local count to 1 for the block. Weak, so a torch built without MKL
// still loads the extension.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));  // mkl_service.h's C name

struct OneBlasThread {
  int previous = 0;
  OneBlasThread() { if (MKL_Set_Num_Threads_Local) previous = MKL_Set_Num_Threads_Local(1); }
  ~OneBlasThread() { if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(previous); }
};

int64_t row_blocks(int64_t B) {
  const int64_t threads = at::get_num_threads();
  if (threads < 2 || at::in_parallel_region()) return 1;
  return std::max<int64_t>(1, std::min(threads, B / kMinBlockRows));
}

// ------------------------------------------------------- small work: one thread
// Splitting a step over threads costs a fork and a join (barriers) per step:
// a few microseconds on an idle machine, milliseconds on a loaded one (a
// thread waiting at a barrier waits for the scheduler to run its sibling).
// Below SERIAL_WORK multiply-adds per step (B * units * G, the recurrent
// product; G = gates * units) a call runs on the calling thread alone: no
// parallel_for, MKL's thread-local count 1, subnormals flushed on this thread
// only (no pool-wide region either). The threshold is where splitting starts
// to pay on an idle machine (kernels/native.py SERIAL_WORK, 2^17, measured);
// decided per call; set_serial_work changes it.
std::atomic<int64_t> g_serial_work{int64_t(1) << 17};  // kernels/native.py SERIAL_WORK sets it at import

int64_t step_work(int64_t cell, int64_t B, int64_t units) { return B * units * gate_width(cell) * units; }

bool runs_serial(int64_t cell, int64_t B, int64_t units) {
  return at::get_num_threads() < 2 || at::in_parallel_region() ||
         step_work(cell, B, units) < g_serial_work.load(std::memory_order_relaxed);
}

// oneDNN (the per-step products, torch's bfloat16 matmuls) starts as many
// OpenMP threads as the calling thread's OpenMP setting allows outside a
// parallel region: a serial call sets it to 1 for its scope.
struct OneOmpThread {
#ifdef _OPENMP
  const int previous = omp_get_max_threads();
  OneOmpThread() { omp_set_num_threads(1); }
  ~OneOmpThread() { omp_set_num_threads(previous); }
#endif
};

// One sequence call's scope: its threads and their FP mode.
struct CallScope {
  const bool serial;
  std::optional<ThreadFlush> self;
  std::optional<OneBlasThread> one_blas;
  std::optional<OneOmpThread> one_omp;
  std::optional<PoolFlush> pool;
  explicit CallScope(bool serial) : serial(serial) {
    if (serial) self.emplace(), one_blas.emplace(), one_omp.emplace();
    else pool.emplace();
  }
};

// ---------------------------------------------------------- buffer cache
// The sequence buffers (states, gates, input gradients) are megabytes each
// and every call needs them afresh. glibc hands such blocks back to the OS
// on free, so each call page-faults them in again: measured with perf at 10-15%
// of a training step on this project's 2-core VM. This cache keeps a few
// freed blocks (at most kCacheBlocks, kCacheBytes in all) for the next call.
// Only this file's own buffers go through it; a tensor from it behaves like
// any other (its memory returns to the cache when the last user drops it).
constexpr size_t kCacheMin = size_t(1) << 18;     // smaller blocks: plain at::empty
constexpr size_t kCacheBytes = size_t(256) << 20;
constexpr size_t kCacheBlocks = 32;

class BufferCache {
 public:
  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
    size_t n = c10::elementSize(c10::typeMetaToScalarType(opts.dtype()));
    for (auto d : sizes) n *= static_cast<size_t>(d);
    if (n < kCacheMin) return at::empty(sizes, opts);
    void* p = take(n);
    if (!p) {
      p = std::aligned_alloc(64, (n + 63) / 64 * 64);
      TORCH_CHECK(p, "rnnkit native: out of memory allocating ", n, " bytes");
    }
    return at::from_blob(p, sizes, [this, n](void* q) { give(q, n); }, opts);
  }

 private:
  void* take(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].first == n) {
        void* p = free_[i].second;
        held_ -= n;
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        return p;
      }
    }
    return nullptr;
  }
  // Keep the newest blocks: evict the oldest until this one fits (shapes change
  // between models; stale sizes must not pin the cache forever).
  void give(void* p, size_t n) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (n <= kCacheBytes) {
        while (!free_.empty() && (free_.size() >= kCacheBlocks || held_ + n > kCacheBytes)) {
          held_ -= free_.front().first;
          evicted.push_back(free_.front().second);
          free_.erase(free_.begin());
        }
        free_.emplace_back(n, p);
        held_ += n;
        p = nullptr;
      }
    }
    for (void* q : evicted) std::free(q);
    std::free(p);  // a block larger than the whole cache (free(nullptr) is a no-op)
  }
  std::mutex mu_;
  std::vector<std::pair<size_t, void*>> free_;
  size_t held_ = 0;
};

// Never destroyed: tensors may outlive static destruction at interpreter exit.
BufferCache& cache() {
  static BufferCache* c = new BufferCache();
  return *c;
}

// ------------------------------------------------------------------ GEMM
// C (m, n) = A (m, k) @ op(B), row-major with row strides lda/ldb/ldc; op(B)
// is B (k, n), or with trans_b the transpose of a B stored as (n, k).
// The per-step products are small (64-128 rows): at::mm_out's dispatch and
// the tensor views around it cost ~2 us per call, ~10% of the product itself
// (measured), so this calls BLAS directly when torch exports it (its MKL
// does), and falls back to at::mm_out on views of the same memory.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

template <typename T>
void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
          int64_t ldc) {
  if (m == 0 || n == 0) return;
  constexpr bool f32 = std::is_same_v<T, float>;
  if ((f32 ? (void*)sgemm_ : (void*)dgemm_) != nullptr) {
    // Row-major C = A op(B) is column-major C^T = op(B)^T A^T: BLAS sees each
    // row-major matrix as its transpose, so the operands swap places.
    const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T one = 1, zero = 0;
    const char* ta = trans_b ? "T" : "N";
    if constexpr (f32) sgemm_(ta, "N", &M, &N, &K, &one, B, &la, A, &lb, &zero, C, &lc);
    else dgemm_(ta, "N", &M, &N, &K, &one, B, &la, A, &lb, &zero, C, &lc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {m, k}, {lda, 1}, opts);
  at::Tensor b = trans_b ? at::from_blob(const_cast<T*>(B), {n, k}, {ldb, 1}, opts).t()
                         : at::from_blob(const_cast<T*>(B), {k, n}, {ldb, 1}, opts);
  at::Tensor c = at::from_blob(C, {m, n}, {ldc, 1}, opts);
  at::mm_out(c, a, b);
}

// ------------------------------------------------------------- bfloat16
// Under torch.autocast("cpu", dtype=torch.bfloat16) the layer passes its
// kernels as bfloat16: each product rounds its float32 left operand to
// bfloat16 and multiplies through at::mm (oneDNN: AVX512-BF16/AMX where the
// CPU has them, float32 accumulation, a bfloat16 result as every autocast
// matmul gives), and the result joins the float32 pointwise pass; the state
// and the gates stay float32. MKL's gemm_bf16bf16f32 (float32 result) was
// measured 5-30x slower here (it repacks the weights on every call; AMD
// EPYC), at::mm on bfloat16 2x faster than float32 from 32 rows, slower
// below: products of fewer than kBf16MinRows rows use the bfloat16-rounded
// weights in float32 instead.
constexpr int64_t kBf16MinRows = 16;

// float32 -> bfloat16 bits, rounded to nearest even (what at::BFloat16 does)
RNNKIT_INLINE uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// C (m, n) = bf16(A) (m, k) @ op(B), B bfloat16 bits; A rounded into `scratch` (m * k).
void gemm_bf16(bool trans_b, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const uint16_t* B,
               int64_t ldb, float* C, int64_t ldc, uint16_t* scratch) {
  if (m == 0 || n == 0) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) scratch[i * k + j] = bf16_bits(A[i * lda + j]);
  const auto bf = at::TensorOptions().dtype(at::kBFloat16);
  at::Tensor a = at::from_blob(scratch, {m, k}, bf);
  at::Tensor b = trans_b ? at::from_blob(const_cast<uint16_t*>(B), {n, k}, {ldb, 1}, bf).t()
                         : at::from_blob(const_cast<uint16_t*>(B), {k, n}, {ldb, 1}, bf);
  at::from_blob(C, {m, n}, {ldc, 1}, at::TensorOptions().dtype(at::kFloat)).copy_(at::mm(a, b));
}

// A weight matrix of T, or its bfloat16 copy under autocast (then `rounded`
// is that copy in float32, for products too small to gain from bfloat16).
// `mul` is C = A @ op(this + off).
template <typename T>
struct Weights {
  at::Tensor tensor;  // as passed: T, or bfloat16 under autocast
  const T* full = nullptr;
  const uint16_t* half = nullptr;
  at::Tensor rounded;
  explicit Weights(const at::Tensor& w) : tensor(w) {
    if (w.scalar_type() == at::kBFloat16) {
      half = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
      rounded = w.to(c10::CppTypeToScalarType<T>::value);
      full = rounded.data_ptr<T>();
    } else {
      full = w.data_ptr<T>();
    }
  }
  void mul(bool trans_b, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, int64_t off, int64_t ld, T* C,
           int64_t ldc, uint16_t* scratch) const {
    if constexpr (std::is_same_v<T, float>) {
      if (half && m >= kBf16MinRows) return gemm_bf16(trans_b, m, n, k, A, lda, half + off, ld, C, ldc, scratch);
    }
    gemm<T>(trans_b, m, n, k, A, lda, full + off, ld, C, ldc);
  }
};

// ------------------------------------------------------- packed weights
// Each step multiplies the same recurrent kernel. sgemm copies ("packs")
// its weight operand into its own blocked layout on every call: for an
// LSTM at 128 units that is 256 KB per step, a large part of a 128-row
// product. So the per-step products use the weights laid out once per
// sequence and block of rows: by rnnkit's own AVX-512 kernel (step_gemm.h,
// g_ukernel_max_rows below) where the CPU has one, else by one of two
// libraries torch carries:
//
// * oneDNN's matmul (torch's mkldnn::_reorder_linear_weight once, then
//   mkldnn::_linear_pointwise per step, reached through the dispatcher:
//   they are registered operators with no C++ function of their own).
//   Measured on this AMD Zen 4, one thread, us per LSTM product h @ U:
//   float32 242 against MKL's packed 317 at 32 rows and 256 units, 1282
//   against 1661 at 64 rows and 512 units; bfloat16 93 against 161
//   (at::mm with the weights as given) and 613 against 736. Each call costs
//   ~16 us of its own (primitive lookup), so it loses at one row (56 against
//   28) and for small weights: from set_dnnl_min_rows rows (per dtype) and
//   set_dnnl_min_weights elements, measured in kernels/native.py. Its result
//   is a fresh tensor, copied into the step's buffer (a few us).
//   oneDNN runs on torch's OpenMP threads: inside our parallel_for blocks
//   it runs on the block's thread alone (oneDNN takes one thread inside a
//   parallel region), and serial calls limit OpenMP to the calling thread
//   (CallScope).
// * MKL's pack API (cblas_sgemm_pack, exported by torch's libtorch_cpu)
//   for the other float32 products from set_pack_min_rows rows, and under
//   autocast for those of fewer than kBf16MinRows rows (which multiply the
//   bfloat16-rounded weights in float32).
//
// Weak symbols and a lookup that may fail: without them (a torch without
// MKL or oneDNN) every step calls Weights::mul as before.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
}
// CBLAS enum values (mkl_cblas.h)
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

// Blocks of fewer rows multiply unpacked (set_pack_min_rows; the Python
// side sets the measured value, kernels/native.py PACK_MIN_ROWS).
std::atomic<int64_t> g_pack_min_rows{1};
// Blocks of at least this many rows use oneDNN: [0] float32, [1] bfloat16
// (set_dnnl_min_rows; kernels/native.py DNNL_MIN_ROWS), and only for weights
// of at least g_dnnl_min_weights elements (set_dnnl_min_weights): smaller
// products do not repay oneDNN's ~16 us per call. Off until set.
std::atomic<int64_t> g_dnnl_min_rows[2] = {int64_t(1) << 62, int64_t(1) << 62};
std::atomic<int64_t> g_dnnl_min_weights{0};
// Blocks of at most this many rows use step_gemm.h's AVX-512 kernel: [0]
// float32, [1] bfloat16 (set_ukernel_max_rows; kernels/native.py
// UKERNEL_MAX_ROWS), where the CPU has AVX-512 (and AVX512-BF16 for [1]).
// It goes before oneDNN and MKL. Off until set.
std::atomic<int64_t> g_ukernel_max_rows[2] = {0, 0};

bool ukernel_available(bool half) {
#ifdef RNNKIT_STEP_GEMM
  static const bool f32 = step_gemm::available(), bf16 = step_gemm::available_bf16();
  return half ? bf16 : f32;
#else
  (void)half;
  return false;
#endif
}

// torch's oneDNN linear operators, or null where this torch has none.
struct DnnlLinear {
  c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, std::optional<int64_t>)> reorder;
  c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                      c10::string_view, c10::List<std::optional<at::Scalar>>,
                                      std::optional<c10::string_view>)>
      linear;
};

const DnnlLinear* dnnl_linear() {
  static const DnnlLinear* ops = []() -> const DnnlLinear* {
    if (!at::hasMKLDNN()) return nullptr;
    auto& d = c10::Dispatcher::singleton();
    const auto reorder = d.findSchema({"mkldnn::_reorder_linear_weight", ""});
    const auto linear = d.findSchema({"mkldnn::_linear_pointwise", ""});
    if (!reorder || !linear) return nullptr;
    return new DnnlLinear{
        reorder->typed<at::Tensor(const at::Tensor&, std::optional<int64_t>)>(),
        linear->typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                 c10::string_view, c10::List<std::optional<at::Scalar>>,
                                 std::optional<c10::string_view>)>()};
  }();
  return at::globalContext().userEnabledMkldnn() ? ops : nullptr;
}

// One per-step product of a sequence: C (m, n) = A (m, k) @ op(B) for a fixed
// row count m, where B = the weights' columns [off, off + (trans_b ? k : n)),
// stored (n, k) with trans_b, else (k, n), row stride ld. `use`: the sequence
// is long enough to pay for laying the weights out (else Weights::mul).
template <typename T>
struct StepProduct {
  const Weights<T>& w;
  const bool trans_b;
  const int64_t m, n, k, off, ld;
  float* packed = nullptr;  // MKL's layout
  at::Tensor dnnl_w;        // oneDNN's layout
  const DnnlLinear* dnnl = nullptr;
  void* panels = nullptr;     // step_gemm's layout (float32 or bfloat16 panels)
  uint32_t* rounded = nullptr;  // step_gemm's bfloat16 copy of A

  StepProduct(bool use, const Weights<T>& w, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t off, int64_t ld)
      : w(w), trans_b(trans_b), m(m), n(n), k(k), off(off), ld(ld) {
    if constexpr (std::is_same_v<T, float>) {
      if (!use || m * n * k == 0) return;
      const bool half = w.half != nullptr;
      if (m <= g_ukernel_max_rows[half].load(std::memory_order_relaxed) && ukernel_available(half)) {
        panels = aligned(step_gemm::packed_size(n, k, half) * (half ? 2 : 4));
        if (half) {
          step_gemm::pack_bf16(w.half + off, ld, trans_b, k, n, static_cast<uint16_t*>(panels));
          rounded = static_cast<uint32_t*>(aligned(m * ((k + 1) / 2) * 4));
        } else {
          step_gemm::pack(w.full + off, ld, trans_b, k, n, static_cast<float*>(panels));
        }
        return;
      }
      const bool big = m >= g_dnnl_min_rows[half].load(std::memory_order_relaxed) &&
                       n * k >= g_dnnl_min_weights.load(std::memory_order_relaxed);
      dnnl = big ? dnnl_linear() : nullptr;
      if (dnnl) {
        // oneDNN's linear weight is (out, in) = (n, k): B itself with trans_b, else its transpose
        at::Tensor b = w.tensor.narrow(1, off, trans_b ? k : n);
        dnnl_w = dnnl->reorder.call((trans_b ? b : b.t()).contiguous(), m);
      } else if ((!half || m < kBf16MinRows) && cblas_sgemm_pack &&
                 m >= g_pack_min_rows.load(std::memory_order_relaxed)) {  // float32, or bfloat16-rounded weights
        const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, int(m), int(n), int(k));
        packed = static_cast<float*>(aligned(bytes));
        cblas_sgemm_pack(kRowMajor, kBMatrix, trans_b ? kTrans : kNoTrans, int(m), int(n), int(k), 1.0f,
                         w.full + off, int(ld), packed);
      }
    }
  }
  ~StepProduct() {
    std::free(packed);
    std::free(panels);
    std::free(rounded);
  }
  StepProduct(const StepProduct&) = delete;
  StepProduct& operator=(const StepProduct&) = delete;

  // `scratch`: m * k bfloat16 for the rounded A under autocast.
  void mul(const T* A, int64_t lda, T* C, int64_t ldc, uint16_t* scratch) const {
    if constexpr (std::is_same_v<T, float>) {
#ifdef RNNKIT_STEP_GEMM
      if (panels) {
        mul_panels(A, lda, C, ldc);
        return;
      }
#endif
      if (dnnl) {
        mul_dnnl(A, lda, C, ldc, scratch);
        return;
      }
      if (packed) {
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, int(m), int(n), int(k), A, int(lda), packed, int(ld), 0.0f,
                            C, int(ldc));
        return;
      }
    }
    w.mul(trans_b, m, n, k, A, lda, off, ld, C, ldc, scratch);
  }

 private:
  static void* aligned(size_t bytes) {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    TORCH_CHECK(p, "rnnkit native: out of memory packing weights");
    return p;
  }

#ifdef RNNKIT_STEP_GEMM
  // step_gemm's kernel, the columns split over the threads when the caller
  // is not one already (a split step: one product for all rows).
  void mul_panels(const float* A, int64_t lda, float* C, int64_t ldc) const {
    if (rounded) step_gemm::round_rows(A, lda, m, k, rounded);
    auto cols = [&](int64_t p0, int64_t p1) {
      if (rounded) step_gemm::mul_bf16(rounded, static_cast<const uint16_t*>(panels), m, n, k, C, ldc, p0, p1);
      else step_gemm::mul(A, lda, static_cast<const float*>(panels), m, n, k, C, ldc, p0, p1);
    };
    const int64_t np = step_gemm::panels(n);
    if (at::in_parallel_region() || at::get_num_threads() < 2) cols(0, np);
    else at::parallel_for(0, np, step_gemm::kPanels, cols);
  }
#endif

  void mul_dnnl(const float* A, int64_t lda, float* C, int64_t ldc, uint16_t* scratch) const {
    at::Tensor a;
    if (w.half) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) scratch[i * k + j] = bf16_bits(A[i * lda + j]);
      a = at::from_blob(scratch, {m, k}, at::TensorOptions().dtype(at::kBFloat16));
    } else {
      a = at::from_blob(const_cast<float*>(A), {m, k}, {lda, 1}, at::TensorOptions().dtype(at::kFloat));
    }
    const at::Tensor y =
        dnnl->linear.call(a, dnnl_w, std::nullopt, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
    if (w.half) {
      const uint16_t* yp = reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>());
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const uint32_t u = uint32_t(yp[i * n + j]) << 16;
          std::memcpy(C + i * ldc + j, &u, sizeof u);
        }
    } else {
      const float* yp = y.data_ptr<float>();
      for (int64_t i = 0; i < m; ++i) std::memcpy(C + i * ldc, yp + i * n, n * sizeof(float));
    }
  }
};

// a @ b for the whole-sequence products of backward: bfloat16 operands under autocast.
at::Tensor mm_as(const at::Tensor& a, const at::Tensor& b, bool half) {
  if (!half) return at::mm(a, b);
  return at::mm(a.to(at::kBFloat16), b.to(at::kBFloat16)).to(at::kFloat);
}

// --------------------------------------------------------------- forward
// x (T, B, F) time-major; W (F, G); U (units, G). The time loop, with the
// input projection xw = x W (the biases join in the pointwise pass) computed
// a chunk of steps ahead: one product per chunk into a buffer of about
// kChunkBytes that is still in cache when the steps read it. (One product
// over the whole sequence wrote a (T, B, G) buffer to memory and read it back:
// 131 MB at batch 32, 1,000 steps, 256 LSTM units, measured a quarter of an
// inference call, a third under autocast with its bfloat16 copy.)
constexpr int64_t kChunkBytes = int64_t(1) << 19;

template <typename T>
std::vector<at::Tensor> forward_impl(int64_t cell, int64_t a, const at::Tensor& x, const at::Tensor& W,
                                     const at::Tensor& bin, const at::Tensor& U, const at::Tensor& brec,
                                     const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& mask,
                                     const at::Tensor& rd, bool zero_out, bool save, bool need_y, bool serial) {
  const int64_t T_ = x.size(0), B = x.size(1), F = x.size(2), units = h0.size(1);
  const int64_t G = gate_width(cell) * units, K = saved_width(cell);
  const auto opts = x.options();
  const bool lstm = cell == LSTM, before = cell == GRU_BEFORE;
  need_y = need_y || mask.defined();  // a masked last output is not always h_T

  // The layer passes a transposed view: one copy into a reused buffer
  // (a fresh one page-faults in on every call, measured 0.5 ms at this size).
  at::Tensor X = x.is_contiguous() ? x : cache().empty({T_, B, F}, opts).copy_(x);
  const Weights<T> Wm(W), Um(U);
  const bool half = Um.half != nullptr;
  const int64_t step_bytes = std::max<int64_t>(1, B * G * int64_t(sizeof(T)));
  const int64_t chunk = std::clamp<int64_t>(kChunkBytes / step_bytes, 1, std::max<int64_t>(1, T_));
  at::Tensor bz = bin.defined() ? bin : at::zeros({G}, opts);
  at::Tensor brz = cell == GRU_AFTER ? (brec.defined() ? brec : at::zeros({G}, opts)) : at::Tensor();

  // Hs[0] = h0, Hs[t + 1] = the state after step t: backward reads h_{t-1}
  // as Hs[t] without a copy. Without a mask the outputs are Hs[1:].
  at::Tensor Hs = cache().empty({T_ + 1, B, units}, opts);
  Hs[0].copy_(h0);
  at::Tensor Y = mask.defined() ? cache().empty({T_, B, units}, opts) : Hs.narrow(0, 1, T_);
  const int64_t TS = save ? T_ : 1;  // saved steps (1 = scratch)
  at::Tensor Cs = lstm ? cache().empty({save ? T_ : 2, B, units}, opts) : at::Tensor();
  at::Tensor Gates = K ? cache().empty({TS, B, K * units}, opts) : at::Tensor();
  at::Tensor RH = before ? cache().empty({TS, B, units}, opts) : at::Tensor();
  const int64_t mw = before ? 2 * units : G;  // width of the step's first product
  at::Tensor mm = cache().empty({B, mw}, opts);
  at::Tensor mm2 = before ? at::empty({B, units}, opts) : at::Tensor();
  at::Tensor hin = rd.defined() ? h0 * rd : at::Tensor();
  at::Tensor hin_next = rd.defined() ? at::empty({B, units}, opts) : at::Tensor();
  at::Tensor seen = mask.defined() ? at::cumsum(mask.to(at::kInt), 0).gt(0) : at::Tensor();

  const T *Xp = X.data_ptr<T>(), *rdp = ptr<T>(rd), *c0p = ptr<T>(c0);
  T *Hp = Hs.data_ptr<T>(), *Yp = Y.data_ptr<T>(), *Cp = ptr<T>(Cs), *Gp = ptr<T>(Gates), *RHp = ptr<T>(RH);
  T *mmp = mm.data_ptr<T>(), *mm2p = ptr<T>(mm2);
  const bool* maskp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  const bool* seenp = mask.defined() ? seen.data_ptr<bool>() : nullptr;
  const int64_t BU = B * units;

  // The time loop for rows [b0, b1). `split`: each step's GEMM and pointwise
  // pass use all threads (two parallel regions per step); else the caller is
  // one thread that owns these rows for the whole sequence.
  auto run_rows = [&](int64_t b0, int64_t b1, bool split) {
    const int64_t nb = b1 - b0;
    T* hin_l = ptr<T>(hin);  // this step's h * dropout mask; swapped per step, per thread
    T* hin_n = ptr<T>(hin_next);
    // This block's rows of `chunk` steps of x W (the other rows unused). With every row, the chunk's
    // rows of x are contiguous: one product per chunk; a block of rows projects step by step.
    const bool whole = nb == B;
    const int64_t pm = whole ? chunk * B : nb;
    at::Tensor xwc = at::empty({chunk, B, G}, opts);
    T* xwp = xwc.data_ptr<T>();
    // bfloat16 copies of each product's left operand (autocast)
    at::Tensor scratch = half ? at::empty({std::max(pm * F, nb * G)}, at::kBFloat16) : at::Tensor();
    uint16_t* scr = half ? reinterpret_cast<uint16_t*>(scratch.data_ptr<at::BFloat16>()) : nullptr;
    const StepProduct<T> proj(whole ? T_ > chunk : T_ > 1, Wm, false, pm, G, F, 0, G);
    const StepProduct<T> prod(T_ > 1, Um, false, nb, mw, units, 0, G);
    const StepProduct<T> prod2(before && T_ > 1, Um, false, nb, units, units, 2 * units, G);  // GRU_BEFORE's r h U_h
    for (int64_t t = 0; t < T_; ++t) {
      if (t % chunk == 0) {
        const int64_t steps = std::min(chunk, T_ - t);
        if (!whole) {
          for (int64_t k = 0; k < steps; ++k)
            proj.mul(Xp + (t + k) * B * F + b0 * F, F, xwp + k * B * G + b0 * G, G, scr);
        } else if (steps == chunk) {
          proj.mul(Xp + t * B * F, F, xwp, G, scr);
        } else {  // the last, shorter chunk
          Wm.mul(false, steps * B, G, F, Xp + t * B * F, F, 0, G, xwp, G, scr);
        }
      }
      const int64_t ts = save ? t : 0;
      const T* hprev = Hp + t * BU;
      const T* hin_t = (rdp ? hin_l : hprev) + b0 * units;
      prod.mul(hin_t, units, mmp + b0 * mw, mw, scr);
      Step<T> s{};
      s.B = B, s.U = units, s.b0 = b0, s.b1 = b1;
      s.xw = xwp + (t % chunk) * B * G;
      s.bin = bz.data_ptr<T>();
      s.mm = mmp;
      s.brec = ptr<T>(brz);
      s.hprev = hprev;
      if (lstm) {
        s.cprev = t == 0 ? c0p : Cp + (save ? t - 1 : (t - 1) % 2) * BU;
        s.c = Cp + (save ? t : t % 2) * BU;
      }
      s.h = Hp + (t + 1) * BU;
      s.y = Yp + t * BU;
      s.gates = K ? Gp + ts * B * K * units : nullptr;
      s.rh = before ? RHp + ts * BU : nullptr;
      s.hin = hin_n;
      s.rd = rdp;
      s.m = maskp ? maskp + t * B : nullptr;
      // seen[t] counts step t itself; a masked row's "before t" equals it.
      s.seen = seenp ? seenp + t * B : nullptr;
      s.zero_out = zero_out;
      if (before) {
        Step<T> s1 = s;  // phase 1 reads h_in of this step from s.hin when dropout is on
        s1.hin = hin_l;
        if (split) fwd_par(s1, cell, a, 1);
        else fwd_step(s1, cell, a, 1);
        prod2.mul(s.rh + b0 * units, units, mm2p + b0 * units, units, scr);
        s.mm2 = mm2p;
      }
      if (split) fwd_par(s, cell, a, 2);
      else fwd_step(s, cell, a, 2);
      std::swap(hin_l, hin_n);
    }
  };
  const int64_t blocks = serial ? 1 : row_blocks(B);
  if (blocks == 1) {
    run_rows(0, B, !serial);
  } else {
    at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
      at::NoGradGuard no_grad;  // worker threads start with grad mode on (the fallback GEMM's out= refuses it)
      ThreadFlush flush;
      OneBlasThread one_blas;
      for (int64_t k = k0; k < k1; ++k) run_rows(k * B / blocks, (k + 1) * B / blocks, false);
    });
  }
  at::Tensor hT = Hs[T_].clone();
  at::Tensor cT = lstm ? Cs[save ? T_ - 1 : (T_ - 1) % 2].clone() : at::Tensor();
  if (!need_y) Y = at::Tensor();
  if (!save) return {Y, hT, cT};
  return {Y, hT, cT, X, Hs, Cs, Gates, RH};
}

std::vector<at::Tensor> forward(int64_t cell, int64_t a, const at::Tensor& x, const at::Tensor& W,
                                const c10::optional<at::Tensor>& bin, const at::Tensor& U,
                                const c10::optional<at::Tensor>& brec, const at::Tensor& h0,
                                const c10::optional<at::Tensor>& c0, const c10::optional<at::Tensor>& mask,
                                const c10::optional<at::Tensor>& rd, bool zero_out, bool save, bool need_y) {
  TORCH_CHECK(x.dim() == 3, "x: expected a (T, B, F) tensor");
  TORCH_CHECK(x.device().is_cpu(), "x: the native kernels run on CPU tensors");
  const CallScope scope(runs_serial(cell, x.size(1), h0.size(1)));
  auto c = [](const c10::optional<at::Tensor>& t) { return t && t->defined() ? t->contiguous() : at::Tensor(); };
  if (x.scalar_type() == at::kDouble) {
    TORCH_CHECK(W.scalar_type() == at::kDouble && U.scalar_type() == at::kDouble, "W, U: expected float64 with a float64 x");
    return forward_impl<double>(cell, a, x, W.contiguous(), c(bin), U.contiguous(), c(brec), h0.contiguous(), c(c0),
                                c(mask), c(rd), zero_out, save, need_y, scope.serial);
  }
  TORCH_CHECK(x.scalar_type() == at::kFloat, "x: expected float32 or float64");
  TORCH_CHECK(W.scalar_type() == U.scalar_type() && (W.scalar_type() == at::kFloat || W.scalar_type() == at::kBFloat16),
              "W, U: expected both float32 or both bfloat16 (autocast) with a float32 x");
  return forward_impl<float>(cell, a, x, W.contiguous(), c(bin), U.contiguous(), c(brec), h0.contiguous(), c(c0),
                             c(mask), c(rd), zero_out, save, need_y, scope.serial);
}

// -------------------------------------------------------------- backward
// Returns dX (or undefined unless need_dx), dW, db_in (or undefined), dU,
// db_rec (or undefined), dh0, dc0 (or undefined). X is forward's contiguous x.
template <typename T>
std::vector<at::Tensor> backward_impl(int64_t cell, int64_t a, const at::Tensor& dY, const at::Tensor& dhT,
                                      const at::Tensor& dcT, const at::Tensor& X, const at::Tensor& W,
                                      const at::Tensor& U, bool has_bin, bool has_brec, bool need_dx,
                                      const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& mask,
                                      const at::Tensor& rd, bool zero_out, const at::Tensor& Hs, const at::Tensor& Cs,
                                      const at::Tensor& Gates, const at::Tensor& RH, bool serial) {
  const int64_t T_ = Hs.size(0) - 1, B = Hs.size(1), units = Hs.size(2), F = X.size(2);
  const int64_t G = gate_width(cell) * units, BU = B * units;
  const auto opts = Hs.options();
  const bool lstm = cell == LSTM, before = cell == GRU_BEFORE, after = cell == GRU_AFTER;

  at::Tensor dXW = cache().empty({T_, B, G}, opts);
  at::Tensor dHU = after ? cache().empty({T_, B, G}, opts) : dXW;
  at::Tensor mm = at::zeros({B, units}, opts);
  at::Tensor mm2 = before ? at::empty({B, units}, opts) : at::Tensor();
  at::Tensor keep = dhT.defined() ? dhT.clone() : at::zeros({B, units}, opts);
  at::Tensor dc = lstm ? (dcT.defined() ? dcT.clone() : at::zeros({B, units}, opts)) : at::Tensor();
  at::Tensor gh = at::empty({B, units}, opts);  // scratch: the gradient reaching h_t, per row
  // h_in of every step (the recurrent product's left operand)
  at::Tensor Hprev = Hs.narrow(0, 0, T_);  // h_{t-1} for every step
  at::Tensor Hin = Hprev;
  if (rd.defined()) {
    Hin = cache().empty({T_, B, units}, opts);
    at::mul_out(Hin, Hprev, rd);
  }
  at::Tensor seen = mask.defined() ? at::cumsum(mask.to(at::kInt), 0).gt(0) : at::Tensor();

  const Weights<T> Um(U);
  const bool half = Um.half != nullptr;
  at::Tensor scratch = half ? at::empty({B * G}, at::kBFloat16) : at::Tensor();  // per block of rows, as in forward
  uint16_t* scr = half ? reinterpret_cast<uint16_t*>(scratch.data_ptr<at::BFloat16>()) : nullptr;
  const T *rdp = ptr<T>(rd), *c0p = ptr<T>(c0), *Hp = Hs.data_ptr<T>();
  const T *Cp = ptr<T>(Cs), *Gp = ptr<T>(Gates), *Hinp = Hin.data_ptr<T>();
  const T* dyp = dY.defined() ? dY.data_ptr<T>() : nullptr;
  T *dxwp = dXW.data_ptr<T>(), *dhup = dHU.data_ptr<T>(), *mmp = mm.data_ptr<T>(), *mm2p = ptr<T>(mm2);
  const bool* maskp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  const bool* seenp = mask.defined() ? seen.data_ptr<bool>() : nullptr;
  const int64_t K = saved_width(cell);

  // Backprop through time for rows [b0, b1); `split` as in forward.
  auto run_rows = [&](int64_t b0, int64_t b1, bool split) {
    const int64_t nb = b1 - b0;
    // GRU_BEFORE: dz_h U_h^T, then the gates' 2 units columns; the other cells: dz U^T
    const StepProduct<T> prod(T_ > 1, Um, true, nb, units, before ? 2 * units : G, 0, G);
    const StepProduct<T> prod2(before && T_ > 1, Um, true, nb, units, units, 2 * units, G);
    for (int64_t t = T_ - 1; t >= 0; --t) {
      Back<T> s{};
      s.B = B, s.U = units, s.b0 = b0, s.b1 = b1;
      s.dy = dyp ? dyp + t * dY.stride(0) : nullptr;
      s.dy_rs = dyp ? dY.stride(1) : 0;
      s.mm = mmp;
      s.keep = keep.data_ptr<T>();
      s.dc = lstm ? dc.data_ptr<T>() : nullptr;
      s.rd = rdp;
      s.gates = K ? Gp + t * B * K * units : nullptr;
      s.h = Hp + (t + 1) * BU;
      s.hprev = Hp + t * BU;
      if (lstm) s.cprev = t == 0 ? c0p : Cp + (t - 1) * BU;
      s.hin = Hinp + t * BU;
      s.dxw = dxwp + t * B * G;
      s.dhu = dhup + t * B * G;
      s.m = maskp ? maskp + t * B : nullptr;
      s.seen = seenp ? seenp + t * B : nullptr;
      s.zero_out = zero_out;
      T* gh_r = gh.data_ptr<T>() + b0 * units;  // one row of scratch per thread
      if (split) bwd_par(s, gh.data_ptr<T>(), cell, a, 1);
      else bwd_step(s, gh_r, cell, a, 1);
      T* dxw_r = s.dxw + b0 * G;
      uint16_t* scr_r = half ? scr + b0 * G : nullptr;
      if (before) {
        prod2.mul(dxw_r + 2 * units, G, mm2p + b0 * units, units, scr_r);
        s.mm2 = mm2p;
        if (split) bwd_par(s, gh.data_ptr<T>(), cell, a, 2);
        else bwd_step(s, gh_r, cell, a, 2);
        prod.mul(dxw_r, G, mmp + b0 * units, units, scr_r);
      } else {
        prod.mul(s.dhu + b0 * G, G, mmp + b0 * units, units, scr_r);
      }
    }
  };
  const int64_t blocks = serial ? 1 : row_blocks(B);
  if (blocks == 1) {
    run_rows(0, B, !serial);
  } else {
    at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
      at::NoGradGuard no_grad;  // worker threads start with grad mode on (the fallback GEMM's out= refuses it)
      ThreadFlush flush;
      OneBlasThread one_blas;
      for (int64_t k = k0; k < k1; ++k) run_rows(k * B / blocks, (k + 1) * B / blocks, false);
    });
  }
  at::Tensor dh0 = rd.defined() ? mm * rd + keep : mm + keep;
  // The weights' gradients: one product over all steps each.
  const int64_t N = T_ * B;
  at::Tensor d2 = dXW.view({N, G});
  at::Tensor dW = mm_as(X.view({N, F}).t(), d2, half);
  at::Tensor db_in = has_bin ? d2.sum(0) : at::Tensor();
  at::Tensor dX;
  if (need_dx) {
    dX = cache().empty({T_, B, F}, opts);
    at::Tensor dX2 = dX.view({N, F});
    if (half) dX2.copy_(mm_as(d2, W.t(), true));
    else at::mm_out(dX2, d2, W.t());
  }
  at::Tensor Hin2 = Hin.reshape({N, units});
  at::Tensor dU;
  if (before) {
    dU = at::cat({mm_as(Hin2.t(), d2.narrow(1, 0, 2 * units), half),
                  mm_as(RH.view({N, units}).t(), d2.narrow(1, 2 * units, units), half)}, 1);
  } else {
    dU = mm_as(Hin2.t(), dHU.view({N, G}), half);
  }
  at::Tensor db_rec = has_brec ? dHU.view({N, G}).sum(0) : at::Tensor();
  return {dX, dW, db_in, dU, db_rec, dh0, dc};
}

std::vector<at::Tensor> backward(int64_t cell, int64_t a, const c10::optional<at::Tensor>& dY,
                                 const c10::optional<at::Tensor>& dhT, const c10::optional<at::Tensor>& dcT,
                                 const at::Tensor& X, const at::Tensor& W, const at::Tensor& U, bool has_bin,
                                 bool has_brec, bool need_dx, const at::Tensor& h0,
                                 const c10::optional<at::Tensor>& c0, const c10::optional<at::Tensor>& mask,
                                 const c10::optional<at::Tensor>& rd, bool zero_out, const at::Tensor& Hs,
                                 const c10::optional<at::Tensor>& Cs, const c10::optional<at::Tensor>& Gates,
                                 const c10::optional<at::Tensor>& RH) {
  const CallScope scope(runs_serial(cell, Hs.size(1), Hs.size(2)));
  auto c = [](const c10::optional<at::Tensor>& t) { return t && t->defined() ? t->contiguous() : at::Tensor(); };
  // dY arrives as the transpose of the (B, T, U) output gradient: read it in
  // place when its rows are contiguous, instead of copying it.
  at::Tensor dy = dY && dY->defined() && dY->stride(2) == 1 ? *dY : c(dY);
  TORCH_CHECK(W.scalar_type() == U.scalar_type() && (W.scalar_type() == Hs.scalar_type() ||
              (Hs.scalar_type() == at::kFloat && W.scalar_type() == at::kBFloat16)),
              "W, U: expected the state's dtype, or bfloat16 (autocast) with float32");
  if (Hs.scalar_type() == at::kDouble)
    return backward_impl<double>(cell, a, dy, c(dhT), c(dcT), X, W.contiguous(), U.contiguous(), has_bin, has_brec,
                                 need_dx, h0.contiguous(), c(c0), c(mask), c(rd), zero_out, Hs, c(Cs), c(Gates), c(RH), scope.serial);
  return backward_impl<float>(cell, a, dy, c(dhT), c(dcT), X, W.contiguous(), U.contiguous(), has_bin, has_brec,
                              need_dx, h0.contiguous(), c(c0), c(mask), c(rd), zero_out, Hs, c(Cs), c(Gates), c(RH),
                              scope.serial);
}

// ------------------------------------------------- small-batch single step
// Generation runs batch 1 (or a few rows) one step at a time: there the step
// is bound by reading the weights, and at::mm's setup costs as much as the
// arithmetic. This path fuses the whole step: the units are cut into tiles of
// kTile; for a tile, every gate's columns of [x h] @ [W; U] accumulate in
// registers (4 gates * 32 floats = 8 AVX-512 registers) while the weight rows
// stream past once, then the cell's pointwise math finishes those units.
// Threads take contiguous runs of tiles, so each keeps its slice of the
// weights in its own cache from step to step.
template <typename T>
constexpr int64_t kTile = 256 / sizeof(T);  // 64 floats or 32 doubles: 4 gates' accumulators in 16 AVX-512 registers

template <typename T>
struct Small {
  int64_t B, F, U, act;
  const T *x, *W, *bin, *Uw, *brec, *h, *c;
  T *hn, *cn;
};

// Units [j0, j0 + n) of row b, n <= kTile; N = kTile when known at compile
// time (the loops unroll and the accumulators stay in registers), 0 for a
// shorter last tile.
template <int CELL, int A, int64_t N, typename T>
RNNKIT_INLINE void small_tile(const Small<T>& s, int64_t b, int64_t j0, int64_t n_) {
  constexpr int NG = CELL == LSTM ? 4 : (CELL == SIMPLE ? 1 : 3);
  constexpr int HG = CELL == GRU_AFTER ? 2 : NG;  // gates whose h-part joins acc; GRU_AFTER keeps hn apart
  const int64_t n = N ? N : n_, U = s.U, G = NG * U;
  T acc[NG][kTile<T>];
  T accr[kTile<T>];  // GRU_AFTER: h_in U_h + b_rec_h, which the reset gate multiplies
  for (int g = 0; g < NG; ++g)
    for (int64_t j = 0; j < n; ++j) acc[g][j] = s.bin ? s.bin[g * U + j0 + j] : T(0);
  for (int64_t j = 0; j < n; ++j) accr[j] = s.brec ? s.brec[2 * U + j0 + j] : T(0);
  for (int64_t k = 0; k < s.F; ++k) {
    const T xk = s.x[b * s.F + k];
    const T* __restrict w = s.W + k * G + j0;
    for (int g = 0; g < NG; ++g) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) acc[g][j] += xk * w[g * U + j];
    }
  }
  for (int64_t k = 0; k < U; ++k) {
    const T hk = s.h[b * U + k];
    const T* __restrict u = s.Uw + k * G + j0;
    for (int g = 0; g < HG; ++g) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) acc[g][j] += hk * u[g * U + j];
    }
    if constexpr (CELL == GRU_AFTER) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) accr[j] += hk * u[2 * U + j];
    }
  }
  const T* __restrict hp = s.h + b * U + j0;
  T* __restrict hn = s.hn + b * U + j0;
  if constexpr (CELL == SIMPLE) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) hn[j] = act<A>(acc[0][j]);
  } else if constexpr (CELL == LSTM) {
    const T* __restrict cp = s.c + b * U + j0;
    T* __restrict cn = s.cn + b * U + j0;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T i = sigmoid_of(acc[0][j]), f = sigmoid_of(acc[1][j]);
      const T g = tanh_of(acc[2][j]), o = sigmoid_of(acc[3][j]);
      const T c = f * cp[j] + i * g;
      cn[j] = c;
      hn[j] = o * tanh_of(c);
    }
  } else {  // GRU_AFTER
    const T* __restrict br = s.brec;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T z = sigmoid_of(acc[0][j] + (br ? br[j0 + j] : T(0)));
      const T r = sigmoid_of(acc[1][j] + (br ? br[U + j0 + j] : T(0)));
      const T hh = tanh_of(acc[2][j] + r * accr[j]);
      hn[j] = z * hp[j] + (T(1) - z) * hh;
    }
  }
}

template <int CELL, int A, typename T>
RNNKIT_INLINE void small_tiles(const Small<T>& s, int64_t t0, int64_t t1) {
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j0 = t * kTile<T>, n = std::min(kTile<T>, s.U - j0);
      if (n == kTile<T>) small_tile<CELL, A, kTile<T>>(s, b, j0, n);
      else small_tile<CELL, A, 0>(s, b, j0, n);
    }
  }
}

#define RNNKIT_DEFINE_SMALL(T)                                                             \
  RNNKIT_CLONES void small_step(const Small<T>& s, int64_t cell, int64_t t0, int64_t t1) { \
    if (cell == LSTM) small_tiles<LSTM, TANH>(s, t0, t1);                                  \
    else if (cell == GRU_AFTER) small_tiles<GRU_AFTER, TANH>(s, t0, t1);                   \
    else if (s.act == TANH) small_tiles<SIMPLE, TANH>(s, t0, t1);                          \
    else if (s.act == SIGMOID) small_tiles<SIMPLE, SIGMOID>(s, t0, t1);                    \
    else if (s.act == RELU) small_tiles<SIMPLE, RELU>(s, t0, t1);                          \
    else small_tiles<SIMPLE, LINEAR>(s, t0, t1);                                           \
  }
RNNKIT_DEFINE_SMALL(float)
RNNKIT_DEFINE_SMALL(double)

template <typename T>
std::vector<at::Tensor> step_small(int64_t cell, int64_t a, const at::Tensor& x, const at::Tensor& W,
                                   const at::Tensor& bin, const at::Tensor& Uw, const at::Tensor& brec,
                                   const at::Tensor& h, const at::Tensor& c) {
  at::Tensor hn = at::empty_like(h);
  at::Tensor cn = cell == LSTM ? at::empty_like(c) : at::Tensor();
  Small<T> s{x.size(0), x.size(1), h.size(1), a,
             x.data_ptr<T>(), W.data_ptr<T>(), ptr<T>(bin), Uw.data_ptr<T>(), ptr<T>(brec), h.data_ptr<T>(),
             ptr<T>(c), hn.data_ptr<T>(), ptr<T>(cn)};
  const int64_t tiles = (s.U + kTile<T> - 1) / kTile<T>;
  // Two or more threads only above the small-work threshold (runs_serial).
  const int64_t grain = runs_serial(cell, s.B, s.U) ? tiles : 1;
  at::parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) {
    ThreadFlush flush;
    small_step(s, cell, t0, t1);
  });
  return {hn, cn};
}

// One step of a cell without autograd or masks, for generation loops:
// returns (h, c) (c undefined except for the LSTM). x (B, in). A (2, G)
// b_in is the GRU reset_after bias as the cell keeps it: (input, recurrent)
// rows, split here (views made in Python cost ~0.7 us a step, measured).
std::vector<at::Tensor> step(int64_t cell, int64_t a, const at::Tensor& x, const at::Tensor& W,
                             const c10::optional<at::Tensor>& b_in, const at::Tensor& U,
                             const c10::optional<at::Tensor>& brec, const at::Tensor& h,
                             const c10::optional<at::Tensor>& c) {
  at::NoGradGuard no_grad;
  ThreadFlush flush;  // generation's small steps: the calling thread (the pool enters per call in forward)
  auto def = [](const c10::optional<at::Tensor>& t) { return t && t->defined() ? t->contiguous() : at::Tensor(); };
  at::Tensor bi = def(b_in), br = def(brec), cc = def(c);
  if (bi.defined() && bi.dim() == 2) {
    br = bi[1];
    bi = bi[0];
  }
  const bool small = x.size(0) <= 8 && cell != GRU_BEFORE && x.is_contiguous() && W.is_contiguous() &&
                     U.is_contiguous() && h.is_contiguous();
  if (small) {
    if (x.scalar_type() == at::kDouble) return step_small<double>(cell, a, x, W, bi, U, br, h, cc);
    return step_small<float>(cell, a, x, W, bi, U, br, h, cc);
  }
  auto out = forward(cell, a, x.unsqueeze(0), W, bi, U, br, h, cc, c10::nullopt, c10::nullopt, false, false, false);
  return {out[1], out[2]};
}

// The switch, and the pool-wide scope for the torch ops rnnkit calls (oneDNN's LSTM).
bool set_flush_denormals(bool on) { return g_flush.exchange(on); }
int64_t set_serial_work(int64_t n) { return g_serial_work.exchange(n); }
int64_t set_pack_min_rows(int64_t n) { return g_pack_min_rows.exchange(n); }
int64_t set_dnnl_min_rows(bool bf16, int64_t n) { return g_dnnl_min_rows[bf16].exchange(n); }
int64_t set_dnnl_min_weights(int64_t n) { return g_dnnl_min_weights.exchange(n); }
int64_t set_ukernel_max_rows(bool bf16, int64_t n) { return g_ukernel_max_rows[bf16].exchange(n); }
bool dnnl_available() { return dnnl_linear() != nullptr; }

// One route for the per-step products, the others off, for this scope:
// "ukernel" (step_gemm.h), "dnnl" (oneDNN's matmul), "mkl" (MKL's packed
// sgemm; under bfloat16 at::mm from kBf16MinRows rows), "plain" (sgemm or
// at::mm per call, nothing laid out).
struct OneRoute {
  const int64_t uk0, uk1, dn0, dn1, pack;
  explicit OneRoute(const std::string& route)
      : uk0(g_ukernel_max_rows[0]), uk1(g_ukernel_max_rows[1]), dn0(g_dnnl_min_rows[0]), dn1(g_dnnl_min_rows[1]),
        pack(g_pack_min_rows) {
    const int64_t never = int64_t(1) << 62;
    TORCH_CHECK(route == "ukernel" || route == "dnnl" || route == "mkl" || route == "plain",
                "route: expected 'ukernel', 'dnnl', 'mkl' or 'plain', got '", route, "'");
    TORCH_CHECK(route != "ukernel" || ukernel_available(false), "route 'ukernel': this CPU has no AVX-512");
    TORCH_CHECK(route != "dnnl" || dnnl_linear(), "route 'dnnl': torch's oneDNN linear operators are unavailable");
    const bool uk = route == "ukernel", dn = route == "dnnl";
    g_ukernel_max_rows[0] = g_ukernel_max_rows[1] = uk ? never : 0;
    g_dnnl_min_rows[0] = g_dnnl_min_rows[1] = dn ? 1 : never;
    g_pack_min_rows = route == "plain" ? never : 1;
  }
  ~OneRoute() {
    g_ukernel_max_rows[0] = uk0, g_ukernel_max_rows[1] = uk1, g_dnnl_min_rows[0] = dn0, g_dnnl_min_rows[1] = dn1;
    g_pack_min_rows = pack;
  }
};

// C = A @ B (or A @ B^T with trans_b) as one per-step product of a sequence
// by `route`: A float32 (m, k); B float32, or bfloat16 (A then rounded to
// bfloat16 as under autocast). For tests and benchmarks.
at::Tensor step_product(const at::Tensor& A, const at::Tensor& B, bool trans_b, const std::string& route) {
  TORCH_CHECK(A.dim() == 2 && A.scalar_type() == at::kFloat, "A: expected a 2-d float32 tensor, got ", A.sizes(),
              " ", A.scalar_type());
  TORCH_CHECK(B.dim() == 2 && (B.scalar_type() == at::kFloat || B.scalar_type() == at::kBFloat16),
              "B: expected a 2-d float32 or bfloat16 tensor, got ", B.sizes(), " ", B.scalar_type());
  const int64_t m = A.size(0), k = A.size(1), n = B.size(trans_b ? 0 : 1);
  TORCH_CHECK(B.size(trans_b ? 1 : 0) == k, "B: expected ", k, " ", trans_b ? "columns" : "rows", ", got ",
              B.size(trans_b ? 1 : 0));
  at::NoGradGuard no_grad;
  const OneRoute one(route);
  const at::Tensor a = A.contiguous(), b = B.contiguous();
  const Weights<float> w(b);
  const StepProduct<float> prod(true, w, trans_b, m, n, k, 0, b.size(1));
  at::Tensor C = at::empty({m, n}, A.options());
  at::Tensor scratch = at::empty({std::max<int64_t>(1, m * k)}, at::kBFloat16);
  prod.mul(a.data_ptr<float>(), k, C.data_ptr<float>(), n, reinterpret_cast<uint16_t*>(scratch.data_ptr()));
  return C;
}

// Microseconds per call of the per-step product h (rows, units) @ U (units,
// gates * units) by `route` (see OneRoute), U bfloat16 with `bf16`: the
// median of `repeats` timings of `iters` calls, on the calling thread's
// settings (torch.set_num_threads).
double bench_step_product(int64_t rows, int64_t units, int64_t gates, bool bf16, const std::string& route,
                          int64_t iters, int64_t repeats) {
  at::NoGradGuard no_grad;
  const OneRoute one(route);
  const at::Tensor U = at::randn({units, gates * units}).div_(std::sqrt(double(units)));
  const at::Tensor Uw = bf16 ? U.to(at::kBFloat16) : U;
  const at::Tensor h = at::randn({rows, units});
  at::Tensor C = at::empty({rows, gates * units});
  at::Tensor scratch = at::empty({std::max<int64_t>(1, rows * units)}, at::kBFloat16);
  const Weights<float> w(Uw);
  const StepProduct<float> prod(true, w, false, rows, gates * units, units, 0, gates * units);
  uint16_t* scr = reinterpret_cast<uint16_t*>(scratch.data_ptr());
  std::vector<double> us;
  for (int64_t r = 0; r <= repeats; ++r) {  // the first round warms up
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) prod.mul(h.data_ptr<float>(), units, C.data_ptr<float>(), gates * units, scr);
    const std::chrono::duration<double, std::micro> dt = std::chrono::steady_clock::now() - t0;
    if (r) us.push_back(dt.count() / double(iters));
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}
void flush_pool_enter() { on_pool(flush_enter); }
void flush_pool_leave() { on_pool(flush_leave); }

// Whether subnormals are flushed on the calling thread (first) and each other pool thread.
std::vector<bool> pool_flush_state() {
  std::vector<bool> out(1 + (at::in_parallel_region() ? 0 : at::get_num_threads() - 1), false);
  std::mutex mu;
  int k = 0;
  on_pool([&] {
    std::lock_guard<std::mutex> lock(mu);
    if (k < static_cast<int>(out.size())) out[k++] = kFlushBits != 0 && (fp_mode() & kFlushBits) == kFlushBits;
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rnnkit's fused recurrent kernels (CPU); see rnnkit.kernels";
  m.def("forward", &forward, "Run a built-in cell over a time-major sequence");
  m.def("backward", &backward, "Backprop through time for `forward`");
  m.def("step", &step, "One step of a cell, no autograd (generation)");
  m.def("set_flush_denormals", &set_flush_denormals, "Flush subnormals in the kernels' calls (on by default); returns the previous setting");
  m.def("flush_pool_enter", &flush_pool_enter, "Flush subnormals on this thread and torch's OpenMP pool (nestable)");
  m.def("flush_pool_leave", &flush_pool_leave, "Undo one flush_pool_enter: each thread gets its own mode back");
  m.def("pool_flush_state", &pool_flush_state, "Whether the calling thread, then each pool thread, flushes subnormals");
  m.def("set_serial_work", &set_serial_work, "Run calls below this many multiply-adds per step (B*units*G) on one thread; returns the previous value");
  m.def("set_pack_min_rows", &set_pack_min_rows, "Pack the recurrent kernel once per sequence for blocks of at least this many rows; returns the previous value");
  m.def("set_dnnl_min_rows", &set_dnnl_min_rows, "Per-step products of blocks of at least this many rows (float32, or bfloat16 with bf16=True) through oneDNN's matmul, weights laid out once per sequence; returns the previous value");
  m.def("set_dnnl_min_weights", &set_dnnl_min_weights, "oneDNN's per-step products only for weights of at least this many elements; returns the previous value");
  m.def("set_ukernel_max_rows", &set_ukernel_max_rows, "Per-step products of blocks of at most this many rows (float32, or bfloat16 with bf16=True) through rnnkit's AVX-512 kernel, weights laid out once per sequence; returns the previous value");
  m.def("ukernel_available", &ukernel_available, "Whether rnnkit's AVX-512 product kernel runs on this CPU (bf16=True: its AVX512-BF16 version)");
  m.def("step_product", &step_product, "A @ B (B^T with trans_b) as one per-step product by route 'ukernel', 'dnnl', 'mkl' or 'plain' (tests)");
  m.def("bench_step_product", &bench_step_product, "Median microseconds per call of the per-step product h (rows, units) @ U (units, gates*units) by a route");
  m.def("dnnl_available", &dnnl_available, "Whether torch's oneDNN linear operators are there and enabled (torch.backends.mkldnn)");
  m.def("runs_serial", &runs_serial, "Whether a call of this cell, batch and units runs on the calling thread alone");
  m.attr("FLUSH_SUPPORTED") = kFlushBits != 0;
}
