/* The engine's own decode kernels (AVX512-VNNI, AVX512F): built and loaded by kernels.py,
 * which says why torch's own paths are not used at a few rows.
 *
 * relay_int8_linear: y (M, N) = dequant(quant(x) (M, K) . w (N, K)^T) + bias. w holds int8
 *   weights per output channel with scale wscale[n]; each row of x is quantised
 *   symmetrically to int8 (scale max|x| / 127), stored offset by 128 as uint8 for vpdpbusd
 *   (u8 x s8), and the offset removed with the weights' row sums:
 *     dot(x_s8, w) = dot(x_s8 + 128, w) - 128 * sum(w).
 *   The weights are packed in blocks of 16 outputs (see block()): read once, in order,
 *   and used for up to four activation rows while in a register.
 * relay_decode_attention: one query per row over that row's own cached positions (fp32).
 * relay_decode_layer: a whole GPT-2 block for a decode step of M rows in one call (layer
 *   norms, the four int8 linears, the cache write, attention, GELU, residuals), so a step
 *   costs one call per layer instead of ~15 torch operators.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define TILE_M 4

/* e^x for 16 floats: x = n ln2 + r, |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial
 * (relative error < 2e-7), scaled by 2^n with vscalefps. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  /* ln2 in two parts */
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 tail16(int left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* Each row of x (M, K) as uint8: round(x / scale) + 128, scale = max|x| / 127, padded with
 * 128 (zero) to K4 = K rounded up to 4 bytes. */
static void quantize_rows(int M, int K, int K4, const float *x, uint8_t *xq, float *xscale) {
    for (int m = 0; m < M; m++) {
        const float *row = x + (int64_t)m * K;
        float amax = 0.0f;
        for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[k]));
        float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
        float inv = 1.0f / scale;
        uint8_t *out = xq + (int64_t)m * K4;
        for (int k = 0; k < K; k++) out[k] = (uint8_t)(lrintf(row[k] * inv) + 128);
        for (int k = K; k < K4; k++) out[k] = 128;
        xscale[m] = scale;
    }
}

/* Rows m0..m0+rows of y for the 16 outputs of block nb. The block is K4 / 4 chunks of 64
 * bytes, chunk g holding inputs 4g..4g+3 of each of the 16 outputs, so one vpdpbusd of a
 * chunk against a row's four bytes (broadcast) adds them to all 16 sums at once: no
 * horizontal sums, and the weights are read in order. */
static inline __attribute__((always_inline)) void block(
    int N, int K4, int nb, int m0, const int rows, const uint8_t *xq, const int8_t *w,
    const int32_t *wsum, const float *wscale, const float *bias, const float *xscale,
    float *y) {
    const int G = K4 / 4;
    const int8_t *chunks = w + (int64_t)nb * G * 64;
    __m512i acc[TILE_M][2];
    for (int m = 0; m < rows; m++) acc[m][0] = acc[m][1] = _mm512_setzero_si512();
    int g = 0;
    for (; g + 1 < G; g += 2) {
        __m512i w0 = _mm512_loadu_si512(chunks + (int64_t)g * 64);
        __m512i w1 = _mm512_loadu_si512(chunks + (int64_t)(g + 1) * 64);
        for (int m = 0; m < rows; m++) {
            const int32_t *xr = (const int32_t *)(xq + (int64_t)(m0 + m) * K4);
            acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], _mm512_set1_epi32(xr[g]), w0);
            acc[m][1] = _mm512_dpbusd_epi32(acc[m][1], _mm512_set1_epi32(xr[g + 1]), w1);
        }
    }
    if (g < G) {  /* an odd number of chunks */
        __m512i w0 = _mm512_loadu_si512(chunks + (int64_t)g * 64);
        for (int m = 0; m < rows; m++) {
            const int32_t *xr = (const int32_t *)(xq + (int64_t)(m0 + m) * K4);
            acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], _mm512_set1_epi32(xr[g]), w0);
        }
    }
    const int n0 = nb * 16;
    __mmask16 mask = tail16(N - n0);
    __m512i offset = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mask, wsum + n0), 7);
    __m512 ws = _mm512_maskz_loadu_ps(mask, wscale + n0);
    __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n0) : _mm512_setzero_ps();
    for (int m = 0; m < rows; m++) {
        __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(acc[m][0], acc[m][1]), offset);
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(dot),
                                 _mm512_mul_ps(ws, _mm512_set1_ps(xscale[m0 + m])));
        _mm512_mask_storeu_ps(y + (int64_t)(m0 + m) * N + n0, mask, _mm512_add_ps(v, b));
    }
}

/* One call of block() per row count, so each is compiled with its accumulators in registers. */
static void block_rows(int N, int K4, int nb, int m0, int rows, const uint8_t *xq,
                       const int8_t *w, const int32_t *wsum, const float *wscale,
                       const float *bias, const float *xscale, float *y) {
    switch (rows) {
    case 1: block(N, K4, nb, m0, 1, xq, w, wsum, wscale, bias, xscale, y); break;
    case 2: block(N, K4, nb, m0, 2, xq, w, wsum, wscale, bias, xscale, y); break;
    case 3: block(N, K4, nb, m0, 3, xq, w, wsum, wscale, bias, xscale, y); break;
    default: block(N, K4, nb, m0, 4, xq, w, wsum, wscale, bias, xscale, y); break;
    }
}

/* w: the int8 weights packed by kernels.py's pack_weights (blocks of 16 outputs, see
 * block()); wsum, wscale and bias (or NULL) per output. xq (M * K4 bytes) and xscale (M)
 * are scratch space the caller provides. */
void relay_int8_linear(int M, int N, int K, const float *x, const int8_t *w,
                       const int32_t *wsum, const float *wscale, const float *bias, float *y,
                       uint8_t *xq, float *xscale, int threads) {
    const int K4 = (K + 3) / 4 * 4, blocks = (N + 15) / 16;
    quantize_rows(M, K, K4, x, xq, xscale);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int nb = 0; nb < blocks; nb++)
        for (int m0 = 0; m0 < M; m0 += TILE_M)
            block_rows(N, K4, nb, m0, M - m0 < TILE_M ? M - m0 : TILE_M, xq, w, wsum, wscale,
                       bias, xscale, y);
}

/* softmax(scale * keys . query) . values over T positions of one head; s: T floats. */
static void attend(const float *query, const float *keys, const float *values, int T, int D,
                   float scale, float *s, float *out) {
    float best = -INFINITY;
    for (int t = 0; t < T; t++) {
        const float *key = keys + (int64_t)t * D;
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < D; d += 16)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail16(D - d), query + d),
                                  _mm512_maskz_loadu_ps(tail16(D - d), key + d), acc);
        s[t] = _mm512_reduce_add_ps(acc) * scale;
        best = fmaxf(best, s[t]);
    }
    __m512 total = _mm512_setzero_ps(), top = _mm512_set1_ps(best);
    for (int t = 0; t < T; t += 16) {
        __mmask16 mask = tail16(T - t);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + t), top));
        _mm512_mask_storeu_ps(s + t, mask, e);
        total = _mm512_add_ps(total, _mm512_maskz_mov_ps(mask, e));
    }
    float inv = 1.0f / _mm512_reduce_add_ps(total);
    for (int d = 0; d < D; d++) out[d] = 0.0f;
    for (int t = 0; t < T; t++) {
        const float *value = values + (int64_t)t * D;
        float p = s[t] * inv;
        for (int d = 0; d < D; d++) out[d] += p * value[d];
    }
}

/* One decode step's attention for rows 0..B-1 of a layer's fp32 cache kv (2, S, H, T_max, D):
 * row b's query q[b, h] (D) attends to its first lengths[b] positions of head h; out (B, H, D).
 * Each (row, head) streams its keys once for the scores and its values once for the sum,
 * in order; scores (B * H * T_max floats) is scratch space the caller provides. */
void relay_decode_attention(int B, int S, int H, int T_max, int D, const float *q,
                            const float *kv, const int64_t *lengths, float *out, float *scores,
                            int threads) {
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        attend(q + (int64_t)bh * D, kv + ((int64_t)b * H + h) * T_max * D,
               kv + (((int64_t)S + b) * H + h) * T_max * D, (int)lengths[b], D, scale,
               scores + (int64_t)bh * T_max, out + (int64_t)bh * D);
    }
}

/* An int8 linear's weights as relay_int8_linear takes them. */
typedef struct {
    const int8_t *w;
    const int32_t *wsum;
    const float *scale;
    const float *bias;
    int out, in;
} Linear;

/* One GPT-2 block (kernels.py's _Layer mirrors it field by field). */
typedef struct {
    int C, H, D, gelu_tanh;
    float eps;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    Linear qkv, attn_out, fc, proj;
} Layer;

static void layer_norm(int M, int C, const float *x, const float *w, const float *b, float eps,
                       float *y) {
    for (int m = 0; m < M; m++) {
        const float *row = x + (int64_t)m * C;
        float mean = 0.0f, var = 0.0f;
        for (int c = 0; c < C; c++) mean += row[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (row[c] - mean) * (row[c] - mean);
        float rstd = 1.0f / sqrtf(var / C + eps);
        for (int c = 0; c < C; c++) y[(int64_t)m * C + c] = (row[c] - mean) * rstd * w[c] + b[c];
    }
}

/* GELU in place: the tanh form x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3),
 * or the exact x (1 + erf(x / sqrt 2)) / 2. */
static void gelu(int n, float *x, int tanh_form) {
    if (!tanh_form) {
        for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678f));
        return;
    }
    const __m512 a = _mm512_set1_ps(-2.0f * 0.7978845608f), c = _mm512_set1_ps(0.044715f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 mask = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        __m512 u = _mm512_mul_ps(a, _mm512_fmadd_ps(_mm512_mul_ps(c, v), _mm512_mul_ps(v, v), v));
        __m512 g = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(u)));
        _mm512_mask_storeu_ps(x + i, mask, g);
    }
}

static void linear(const Linear *l, int M, const float *x, float *y, uint8_t *xq, float *xs,
                   int threads) {
    relay_int8_linear(M, l->out, l->in, x, l->w, l->wsum, l->scale, l->bias, y, xq, xs, threads);
}

static void add_into(int n, float *x, const float *y) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

/* x (M, C) through one block, rows 0..M-1 at positions[m] of cache slots 0..M-1 of this
 * layer's kv (2, S, H, T_max, D). With F the MLP's width (fc.out), work holds
 * M * (6 C + F + H * T_max + 1) floats and qwork M * (F + 3) bytes (F >= C). */
void relay_decode_layer(const Layer *L, int M, int S, int T_max, float *x, float *kv,
                        const int64_t *positions, float *work, uint8_t *qwork, int threads) {
    const int C = L->C, H = L->H, D = L->D, F = L->fc.out;
    float *h = work, *qkv = h + M * C, *y = qkv + 3 * M * C, *a = y + M * C;
    float *tmp = a + M * F, *scores = tmp + M * C, *xs = scores + (int64_t)M * H * T_max;
    layer_norm(M, C, x, L->ln1_w, L->ln1_b, L->eps, h);
    linear(&L->qkv, M, h, qkv, qwork, xs, threads);
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int mh = 0; mh < M * H; mh++) {
        int m = mh / H, hd = mh % H;
        int64_t pos = positions[m];
        float *keys = kv + ((int64_t)m * H + hd) * T_max * D;
        float *values = kv + (((int64_t)S + m) * H + hd) * T_max * D;
        const float *row = qkv + (int64_t)m * 3 * C;
        for (int d = 0; d < D; d++) {
            keys[pos * D + d] = row[C + hd * D + d];
            values[pos * D + d] = row[2 * C + hd * D + d];
        }
        attend(row + hd * D, keys, values, (int)pos + 1, D, scale,
               scores + (int64_t)mh * T_max, y + (int64_t)m * C + hd * D);
    }
    linear(&L->attn_out, M, y, tmp, qwork, xs, threads);
    add_into(M * C, x, tmp);
    layer_norm(M, C, x, L->ln2_w, L->ln2_b, L->eps, h);
    linear(&L->fc, M, h, a, qwork, xs, threads);
    gelu(M * F, a, L->gelu_tanh);
    linear(&L->proj, M, a, tmp, qwork, xs, threads);
    add_into(M * C, x, tmp);
}
