/*
 * Filter gradient of a 2D convolution (NHWC input, HWIO filter), in WebAssembly SIMD.
 *
 * dw[i][j][c][o] = sum over b, oy, ox of x[b][oy*sh + i - pt][ox*sw + j - pl][c] * dy[b][oy][ox][o],
 * where taps that fall in the zero padding contribute nothing.
 *
 * For each tap (i, j) this is a matrix product with a long inner dimension (every output pixel)
 * and a small result (ci x co). A 4x8 block of the result stays in eight SIMD registers while the
 * loop runs over the pixels of a block of rows. Each block of rows is small enough to stay in the
 * cache while every tap and every block of the result reads it again. Blocks of 5 or 6 input
 * channels were slower, because x64 has 16 SIMD registers and V8 then spills.
 *
 * Build: scripts/build-wasm-kernels.sh (clang --target=wasm32 -msimd128).
 */
#include <wasm_simd128.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct {
  const float *x;
  const float *dy;
  float *dw;
  int h, w, ci, oh, ow, co;
  int sh, sw, pt, pl;
} Problem;

/* The part [begin, end) of the output columns whose tap j reads a column inside the input. */
ALWAYS_INLINE void column_range(const Problem *p, int j, int *begin, int *end) {
  int first = p->pl - j;
  int b = first <= 0 ? 0 : (first + p->sw - 1) / p->sw;
  int last = p->w - 1 + p->pl - j;
  int e = last < 0 ? 0 : last / p->sw + 1;
  *begin = b;
  *end = e < p->ow ? e : p->ow;
}

/*
 * Accumulates rows [r0, r1) of tap (i, j) into the result block of MR input channels from c0
 * and NV vectors of 4 output channels from o0. MR and NV are constants at every call, so the
 * accumulators unroll into registers.
 */
ALWAYS_INLINE void simd_block(const Problem *p, int MR, int NV, int r0, int r1, int i, int j,
                              int cb, int ce, int c0, int o0) {
  float *d = p->dw + c0 * p->co + o0;
  v128_t acc[4][2];
  for (int m = 0; m < MR; m++)
    for (int v = 0; v < NV; v++) acc[m][v] = wasm_v128_load(d + m * p->co + 4 * v);

  for (int r = r0; r < r1; r++) {
    int b = r / p->oh, oy = r - b * p->oh;
    int iy = oy * p->sh + i - p->pt;
    if (iy < 0 || iy >= p->h) continue;
    const float *xrow = p->x + ((long)(b * p->h + iy) * p->w) * p->ci + c0;
    const float *dyrow = p->dy + (long)r * p->ow * p->co + o0;
    int xstep = p->sw * p->ci;
    const float *xp = xrow + (long)(cb * p->sw + j - p->pl) * p->ci;
    const float *dp = dyrow + (long)cb * p->co;
    for (int ox = cb; ox < ce; ox++, xp += xstep, dp += p->co) {
      v128_t bv[2];
      for (int v = 0; v < NV; v++) bv[v] = wasm_v128_load(dp + 4 * v);
      for (int m = 0; m < MR; m++) {
        v128_t a = wasm_v128_load32_splat(xp + m);
        for (int v = 0; v < NV; v++) acc[m][v] = wasm_f32x4_add(acc[m][v], wasm_f32x4_mul(a, bv[v]));
      }
    }
  }

  for (int m = 0; m < MR; m++)
    for (int v = 0; v < NV; v++) wasm_v128_store(d + m * p->co + 4 * v, acc[m][v]);
}

/* Output channels past the last multiple of 4, one scalar at a time. */
static void scalar_columns(const Problem *p, int r0, int r1, int i, int j, int cb, int ce, int o0) {
  for (int r = r0; r < r1; r++) {
    int b = r / p->oh, oy = r - b * p->oh;
    int iy = oy * p->sh + i - p->pt;
    if (iy < 0 || iy >= p->h) continue;
    const float *xrow = p->x + ((long)(b * p->h + iy) * p->w) * p->ci;
    const float *dyrow = p->dy + (long)r * p->ow * p->co;
    for (int ox = cb; ox < ce; ox++) {
      const float *xp = xrow + (long)(ox * p->sw + j - p->pl) * p->ci;
      const float *dp = dyrow + (long)ox * p->co;
      for (int c = 0; c < p->ci; c++) {
        float a = xp[c];
        float *d = p->dw + c * p->co;
        for (int o = o0; o < p->co; o++) d[o] += a * dp[o];
      }
    }
  }
}

ALWAYS_INLINE void blocks_of_rows(const Problem *p, int MR, int r0, int r1, int i, int j, int cb, int ce, int c0) {
  int o = 0;
  for (; o + 8 <= p->co; o += 8) simd_block(p, MR, 2, r0, r1, i, j, cb, ce, c0, o);
  if (o + 4 <= p->co) simd_block(p, MR, 1, r0, r1, i, j, cb, ce, c0, o);
}

__attribute__((export_name("filter_gradient")))
void filter_gradient(const float *x, const float *dy, float *dw, int n, int h, int w, int ci,
                     int oh, int ow, int co, int kh, int kw, int sh, int sw, int pt, int pl) {
  int taps = kh * kw;
  for (long k = 0; k < (long)taps * ci * co; k++) dw[k] = 0.0f;

  /* Rows of x and dy that one block reads, kept near 192 KiB, which fits the L2 cache of current x86 cores. */
  int row_floats = ow * co + sw * ow * ci + kw * ci;
  int block = 49152 / (row_floats > 0 ? row_floats : 1);
  if (block < 1) block = 1;
  int rows = n * oh;
  int vector_columns = co & ~3;

  for (int r0 = 0; r0 < rows; r0 += block) {
    int r1 = r0 + block < rows ? r0 + block : rows;
    for (int i = 0; i < kh; i++) {
      for (int j = 0; j < kw; j++) {
        int cb, ce;
        Problem p = {x, dy, dw + (long)(i * kw + j) * ci * co, h, w, ci, oh, ow, co, sh, sw, pt, pl};
        column_range(&p, j, &cb, &ce);
        if (cb >= ce) continue;
        int c = 0;
        for (; c + 4 <= ci; c += 4) blocks_of_rows(&p, 4, r0, r1, i, j, cb, ce, c);
        for (; c < ci; c++) blocks_of_rows(&p, 1, r0, r1, i, j, cb, ce, c);
        if (vector_columns < co) scalar_columns(&p, r0, r1, i, j, cb, ce, vector_columns);
      }
    }
  }
}
