/* garment._convert: a photo's conversion after decoding, as one C call (see garment/convert.py).

   Box reduce, background plane fitted to the border, product intensity and mask, crop (with the
   faint-product fallback and the split of a pair of shoes), silhouette floor and stretch, and the
   28x28 render of each framing: Pillow's bilinear resize (reducing_gap 2.0) and unsharp mask,
   reproduced pixel for pixel (its box reduce, 22-bit fixed-point passes, three-pass box-blur
   Gaussian).

   Arithmetic: float32 per pixel, float64 for the fit and the quantiles, each operation in the
   order written here; it is compiled without contraction of multiply-adds (-ffp-contract=off), so
   the results do not depend on the CPU or the compiler's vector width. Tests compare the renders
   with Pillow's and the quantiles with NumPy's.

   Python API (buffers: NumPy arrays, C-ordered):
     convert(g, factor, idx, xy, pinv, params, framings, out)
         g uint8 (H, W); idx int64 (n,) border pixels of the reduced image, xy float64 (2, n) their
         [x/w, y/h], pinv float64 (3, n); params float64 (N_PARAMS,); framings int64 (V,);
         out uint8 (V, S, S), written.
     analyse(g, idx, xy, pinv, dark, lighter_weight, noise_floor_k, min_contrast, noise_k,
             inten, diff, mask, rows, cols) -> noise      (outputs written; for tests)
     render(val8, out, fill, percent, blur_r, blur_ww, blur_fw)          (for tests)
     quantile(a float64 (n,), q) -> float                                  (for tests)
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef Py_ssize_t idx_t;

/* Parameter vector layout: garment.convert.KERNEL_PARAMS gives the names in this order. */
enum { DARK, LIGHTER_WEIGHT, NOISE_FLOOR_K, MIN_CONTRAST, NOISE_K, TRIM_FRACTION, SPLIT_PAIRS,
       SILHOUETTE_FLOOR, STRETCH_Q, FILL, SHARPEN_PERCENT, BLUR_R, BLUR_WW, BLUR_FW, N_PARAMS };
enum { CROP = 0, FRAME = 1 };

/* The per-pixel loops are compiled for AVX2 and AVX-512 as well, picked at load time by the CPU
   (still without fused multiply-adds: -ffp-contract=off applies to every clone, so all give the
   same results; -DGARMENT_NO_CLONES builds the baseline alone, to check that). */
#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && !defined(GARMENT_NO_CLONES)
#define HOT __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define HOT
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------ quantiles */

/* (k-th smallest, (k+1)-th smallest) of work[0:n] (the k-th twice when k is the last), by
   quickselect in place (Hoare partition around a median of three). */
static void select_k(double *work, idx_t n, idx_t k, double *v_k, double *v_next) {
    idx_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double x = work[lo], y = work[(lo + hi) / 2], z = work[hi];
        double mn = y < x ? y : x, mx = y > x ? y : x;
        double inner = z < mx ? z : mx;
        double pivot = inner > mn ? inner : mn;
        idx_t i = lo, j = hi;
        while (i <= j) {
            while (work[i] < pivot) i++;
            while (work[j] > pivot) j--;
            if (i <= j) {
                double t = work[i];
                work[i] = work[j];
                work[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    double next = work[k];
    if (k + 1 < n) {
        next = work[k + 1];
        for (idx_t t = k + 2; t < n; t++)
            if (work[t] < next) next = work[t];
    }
    *v_k = work[k];
    *v_next = next;
}

#define QBINS 256

/* np.quantile(a, q) (linear interpolation) of n >= 1 finite values. A histogram narrows the two
   order statistics to one bin (binning is monotonic, so ranks carry over); a quickselect within
   the bin settles them. Returns NAN when out of memory. */
HOT static double quantile(const double *a, idx_t n, double q) {
    const double pos = q * (double)(n - 1);
    const idx_t k = (idx_t)pos;
    double lo = a[0], hi = a[0];
    for (idx_t t = 0; t < n; t++) {
        lo = a[t] < lo ? a[t] : lo;
        hi = a[t] > hi ? a[t] : hi;
    }
    if (lo == hi) return lo + (pos - (double)k) * (lo - lo);
    const double scale = QBINS / (hi - lo);
    int32_t *bin = malloc(sizeof(int32_t) * (size_t)n);
    if (!bin) return NAN;
    for (idx_t t = 0; t < n; t++) { /* at most QBINS: fits an int32 */
        const int32_t c = (int32_t)((a[t] - lo) * scale);
        bin[t] = c < QBINS - 1 ? c : QBINS - 1;
    }
    /* Four interleaved histograms: runs of equal values do not wait on each other's counts. */
    int32_t counts[4][QBINS] = {{0}};
    idx_t t = 0;
    for (; t + 4 <= n; t += 4) {
        counts[0][bin[t]]++;
        counts[1][bin[t + 1]]++;
        counts[2][bin[t + 2]]++;
        counts[3][bin[t + 3]]++;
    }
    for (; t < n; t++) counts[0][bin[t]]++;
    idx_t below = 0, b = 0, in_b;
    while (below + (in_b = counts[0][b] + counts[1][b] + counts[2][b] + counts[3][b]) <= k) {
        below += in_b;
        b++;
    }
    double *work = malloc(sizeof(double) * (size_t)in_b);
    if (!work) {
        free(bin);
        return NAN;
    }
    double above = INFINITY; /* the smallest value in a higher bin */
    idx_t m = 0;
    for (t = 0; t < n; t++) {
        if (bin[t] == b) work[m++] = a[t];
        else if (bin[t] > b && a[t] < above) above = a[t];
    }
    double v_lo, v_hi;
    select_k(work, m, k - below, &v_lo, &v_hi);
    free(work);
    free(bin);
    if (k - below + 1 == m) v_hi = k + 1 < n ? above : v_lo; /* rank k + 1 lies in a higher bin */
    return v_lo + (pos - (double)k) * (v_hi - v_lo);
}

/* ------------------------------------------------------------------ background */

static double det3(const double m[9]) {
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
           + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

/* Robust fit of bg = c0 + c1*x/w + c2*y/h to the border values (xs, ys: their x/w, y/h): fit on
   all, keep the best two thirds, fit again; noise is the kept residuals' robust sigma.
   Returns 0, or -1 when out of memory. */
static int fit_plane(const double *vals, const double *xs, const double *ys, const double *pinv, idx_t n,
                     double c[3], double *noise) {
    double *resid = malloc(sizeof(double) * (size_t)n);
    if (!resid) return -1;
    for (int k = 0; k < 3; k++) {
        c[k] = 0.0;
        for (idx_t i = 0; i < n; i++) c[k] += pinv[k * n + i] * vals[i];
    }
    double cut = 0.0;
    for (int refit = 1; refit >= 0; refit--) {
        for (idx_t i = 0; i < n; i++) resid[i] = fabs(vals[i] - (c[0] + c[1] * xs[i] + c[2] * ys[i]));
        cut = quantile(resid, n, 0.67) + 1e-6;
        if (isnan(cut)) break; /* out of memory */
        if (!refit) break;
        /* Normal equations over the kept values (rows [1, x, y]): a 3x3 symmetric system. */
        double s1 = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, sv = 0, sxv = 0, syv = 0;
        for (idx_t i = 0; i < n; i++) {
            if (resid[i] <= cut) {
                double x = xs[i], y = ys[i], v = vals[i];
                s1 += 1.0;
                sx += x;
                sy += y;
                sxx += x * x;
                sxy += x * y;
                syy += y * y;
                sv += v;
                sxv += x * v;
                syv += y * v;
            }
        }
        double a[9] = {s1, sx, sy, sx, sxx, sxy, sy, sxy, syy}, rhs[3] = {sv, sxv, syv};
        double det = det3(a);
        for (int k = 0; k < 3; k++) { /* Cramer's rule: the system is well conditioned */
            double m[9];
            memcpy(m, a, sizeof m);
            m[k] = rhs[0];
            m[3 + k] = rhs[1];
            m[6 + k] = rhs[2];
            c[k] = det3(m) / det;
        }
    }
    idx_t kept = 0;
    for (idx_t i = 0; i < n; i++)
        if (resid[i] <= cut) resid[kept++] = resid[i];
    *noise = isnan(cut) ? NAN : quantile(resid, kept, 0.5) * 1.4826 + 1.0;
    free(resid);
    return isnan(*noise) ? -1 : 0;
}

/* Background plane from the border, then per pixel: the product intensity (darkness below the
   background, or any difference from it, scaled to the local background), the difference from
   the background and the product mask, with its row and column counts. Returns 0 or -1. */
HOT static int analyse(const uint8_t *g, idx_t h, idx_t w, const int64_t *idx, const double *xy, const double *pinv,
                   idx_t n, int dark, double lighter_weight, double noise_floor_k, double min_contrast,
                   double noise_k, float *inten, float *diff, uint8_t *mask, int64_t *rows, int64_t *cols,
                   double *noise_out) {
    double *vals = malloc(sizeof(double) * (size_t)n);
    if (!vals) return -1;
    for (idx_t i = 0; i < n; i++) vals[i] = (double)g[idx[i]];
    double c[3], noise;
    int err = fit_plane(vals, xy, xy + n, pinv, n, c, &noise);
    free(vals);
    if (err) return -1;
    double t = noise_k * noise;
    const float thr = (float)(t > min_contrast ? t : min_contrast);
    const float sub = (float)(noise_floor_k * noise), lw = (float)lighter_weight;
    const float sx = (float)(c[1] / (double)w), sy = (float)(c[2] / (double)h), f0 = (float)c[0];
    const float zero = 0.0f, top = 255.0f, floor32 = 32.0f;
    memset(cols, 0, sizeof(int64_t) * (size_t)w);
    for (idx_t y = 0; y < h; y++) { /* inner loops without branches on the pixel, so they vectorise */
        const float base = (float)y * sy + f0;
        const uint8_t *gr = g + y * w;
        float *ir = inten + y * w, *dr = diff + y * w;
        uint8_t *mr = mask + y * w;
        for (int x = 0; x < (int)w; x++) { /* an int index: its conversion to float vectorises */
            const float p = base + (float)x * sx;
            const float s = p - (float)gr[x];
            float v;
            if (dark) v = zero > s ? zero : s;
            else v = s >= 0 ? s : -s * lw;
            if (sub > 0) {
                const float r = v - sub;
                v = zero > r ? zero : r;
            }
            ir[x] = v * (top / (floor32 > p ? floor32 : p));
            const float d = fabsf(s);
            dr[x] = d;
            mr[x] = d > thr;
        }
        int64_t cnt = 0;
        for (idx_t x = 0; x < w; x++) {
            cnt += mr[x];
            cols[x] += mr[x];
        }
        rows[y] = cnt;
    }
    *noise_out = noise;
    return 0;
}

/* ------------------------------------------------------------------ crop */

static void counts(const uint8_t *mask, idx_t w, idx_t y0, idx_t y1, idx_t x0, idx_t x1, int64_t *rows,
                   int64_t *cols) {
    memset(rows, 0, sizeof(int64_t) * (size_t)(y1 - y0));
    memset(cols, 0, sizeof(int64_t) * (size_t)(x1 - x0));
    for (idx_t y = y0; y < y1; y++)
        for (idx_t x = x0; x < x1; x++)
            if (mask[y * w + x]) {
                rows[y - y0]++;
                cols[x - x0]++;
            }
}

/* Tight box around the rows/columns holding more than frac of the width/height; 0 if none. */
static int bbox(const int64_t *rows, idx_t nr, const int64_t *cols, idx_t nc, double frac, idx_t box[4]) {
    double r_thr = frac * (double)nc, c_thr = frac * (double)nr;
    if (r_thr < 0.0) r_thr = 0.0;
    if (c_thr < 0.0) c_thr = 0.0;
    idx_t y0 = -1, y1 = -1, x0 = -1, x1 = -1;
    for (idx_t i = 0; i < nr; i++)
        if ((double)rows[i] > r_thr) {
            if (y0 < 0) y0 = i;
            y1 = i + 1;
        }
    for (idx_t i = 0; i < nc; i++)
        if ((double)cols[i] > c_thr) {
            if (x0 < 0) x0 = i;
            x1 = i + 1;
        }
    if (y0 < 0 || x0 < 0) return 0;
    box[0] = y0, box[1] = y1, box[2] = x0, box[3] = x1;
    return 1;
}

/* Column range [*s0, *s1) of the larger of two blobs separated by an empty vertical gap, from
   the crop's column counts (a pair of shoes side by side); 0 when there is no such pair. */
static int split_pair(const int64_t *cols, idx_t w, idx_t *s0, idx_t *s1) {
    idx_t lo = w / 5, hi = w - w / 5, n_empty = 0, cut = -1;
    for (idx_t x = lo; x < hi; x++) n_empty += cols[x] == 0;
    if (n_empty == 0) return 0;
    idx_t k = n_empty / 2;
    for (idx_t x = lo; x < hi; x++) /* the middle one of the empty columns */
        if (cols[x] == 0) {
            if (k == 0) {
                cut = x;
                break;
            }
            k--;
        }
    int64_t left = 0, right = 0;
    for (idx_t x = 0; x < cut; x++) left += cols[x];
    for (idx_t x = cut; x < w; x++) right += cols[x];
    if ((double)MIN(left, right) < 0.3 * (double)MAX(left, right)) return 0; /* a speck, not a pair */
    *s0 = left >= right ? 0 : cut;
    *s1 = left >= right ? cut : w;
    return 1;
}

/* Silhouette floor inside the mask (in place), then the gain mapping the crop's product pixels'
   quantile q to 255. Returns NAN when out of memory. */
HOT static float stretch(float *inten, const uint8_t *mask, idx_t h, idx_t w, const idx_t box[4], double floor_,
                         double q) {
    const float fl = (float)floor_;
    for (idx_t i = 0; i < h * w; i++) inten[i] = mask[i] && inten[i] < fl ? fl : inten[i];
    idx_t n_fg = 0;
    for (idx_t y = box[0]; y < box[1]; y++)
        for (idx_t x = box[2]; x < box[3]; x++) n_fg += mask[y * w + x];
    const idx_t n = n_fg ? n_fg : (box[1] - box[0]) * (box[3] - box[2]);
    if (n == 0) return 1.0f; /* an empty crop (a "pair" split off nothing): nothing to stretch */
    double *fg = malloc(sizeof(double) * (size_t)n);
    if (!fg) return NAN;
    idx_t k = 0;
    for (idx_t y = box[0]; y < box[1]; y++)
        for (idx_t x = box[2]; x < box[3]; x++)
            if (!n_fg || mask[y * w + x]) fg[k++] = (double)inten[y * w + x];
    const double top = quantile(fg, n, q);
    free(fg);
    return (float)(top > 1.0 ? 255.0 / top : 1.0);
}

/* 8 bits of the stretched intensity inside [y0, y1) x [x0, x1), into out (y1 - y0, x1 - x0). */
HOT static void to8(const float *inten, idx_t w, float gain, idx_t y0, idx_t y1, idx_t x0, idx_t x1, uint8_t *out) {
    const int cw = (int)(x1 - x0);
    for (idx_t y = y0; y < y1; y++) {
        const float *in = inten + y * w + x0;
        uint8_t *o = out + (y - y0) * cw;
        for (int x = 0; x < cw; x++) {
            const float t = in[x] * gain;
            o[x] = (uint8_t)(255.0f < t ? 255.0f : t);
        }
    }
}

/* ------------------------------------------------------------------ Pillow's resize and sharpen */

/* Pillow's multiplier for a mean of n pixels: 2**32 / (256 n), divided in float32. */
static inline uint64_t reduce_mult(idx_t n) { return (uint64_t)(4294967296.0f / (float)(256 * n)); }

/* Image.reduce((fx, fy)): block means, partial blocks at the right and bottom edges.
   Returns 0, or -1 when out of memory. */
HOT static int reduce_box(const uint8_t *src, idx_t h, idx_t w, idx_t fy, idx_t fx, uint8_t *out) {
    const idx_t oh = (h - 1) / fy + 1, ow = (w - 1) / fx + 1, full = w / fx; /* whole blocks in a row */
    uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)ow);
    if (!acc) return -1;
    for (idx_t oy = 0; oy < oh; oy++) {
        const idx_t ys = oy * fy, ye = MIN(oy * fy + fy, h);
        memset(acc, 0, sizeof(uint32_t) * (size_t)ow);
        for (idx_t y = ys; y < ye; y++) {
            const uint8_t *row = src + y * w;
            if (fx == 2) /* the common case, written so that it vectorises */
                for (idx_t ox = 0; ox < full; ox++) acc[ox] += (uint32_t)row[2 * ox] + row[2 * ox + 1];
            else
                for (idx_t ox = 0; ox < full; ox++)
                    for (idx_t dx = 0; dx < fx; dx++) acc[ox] += row[ox * fx + dx];
            for (idx_t x = full * fx; x < w; x++) acc[full] += row[x];
        }
        idx_t n = (ye - ys) * fx;
        const uint64_t mult = reduce_mult(n), amend = (uint64_t)(n / 2);
        uint8_t *o = out + oy * ow;
        for (idx_t ox = 0; ox < full; ox++) o[ox] = (uint8_t)(((acc[ox] + amend) * mult) >> 24);
        if (full < ow) {
            n = (ye - ys) * (w - full * fx);
            o[full] = (uint8_t)(((acc[full] + (uint64_t)(n / 2)) * reduce_mult(n)) >> 24);
        }
    }
    free(acc);
    return 0;
}

/* Bilinear weights of each output pixel over the input span [0, in1), in Pillow's 22-bit fixed
   point: first tap, tap count, weights (out_size x ksize). Returns ksize, or 0 when out of memory. */
static idx_t coeffs(idx_t in_size, double in1, idx_t out_size, idx_t **start, idx_t **count, int32_t **kk) {
    const double scale = in1 / (double)out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale, support = filterscale;
    const idx_t ksize = (idx_t)ceil(support) * 2 + 1;
    const double inv = 1.0 / filterscale;
    *start = malloc(sizeof(idx_t) * (size_t)out_size);
    *count = malloc(sizeof(idx_t) * (size_t)out_size);
    *kk = calloc((size_t)(out_size * ksize), sizeof(int32_t));
    double *k = malloc(sizeof(double) * (size_t)ksize);
    if (!*start || !*count || !*kk || !k) {
        free(*start), free(*count), free(*kk), free(k);
        return 0;
    }
    for (idx_t o = 0; o < out_size; o++) {
        const double center = ((double)o + 0.5) * scale;
        idx_t xmin = (idx_t)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        idx_t xmax = (idx_t)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double total = 0.0;
        for (idx_t t = 0; t < xmax; t++) {
            const double d = fabs(((double)(t + xmin) - center + 0.5) * inv);
            k[t] = d < 1.0 ? 1.0 - d : 0.0;
            total += k[t];
        }
        for (idx_t t = 0; t < xmax; t++) {
            const double v = total != 0.0 ? k[t] / total : k[t];
            (*kk)[o * ksize + t] = v >= 0 ? (int32_t)(0.5 + v * 4194304.0) : (int32_t)(-0.5 + v * 4194304.0);
        }
        (*start)[o] = xmin;
        (*count)[o] = xmax;
    }
    free(k);
    return ksize;
}

static inline uint8_t clip8(int32_t ss) {
    ss >>= 22;
    return (uint8_t)(ss < 0 ? 0 : ss > 255 ? 255 : ss);
}

/* One resampling pass along axis 0 of in (rows of w): out row o = the weighted sum of in rows
   start[o] - offset + t, in Pillow's fixed point. acc: w int32 of scratch. */
HOT static void resample_rows(const uint8_t *in, idx_t w, const idx_t *start, const idx_t *count, const int32_t *kk,
                              idx_t ksize, idx_t n_out, idx_t offset, uint8_t *out, int32_t *acc) {
    const int iw = (int)w;
    for (idx_t o = 0; o < n_out; o++) {
        for (int x = 0; x < iw; x++) acc[x] = 1 << 21;
        for (idx_t t = 0; t < count[o]; t++) {
            const uint8_t *row = in + (start[o] - offset + t) * w;
            const int32_t k = kk[o * ksize + t];
            for (int x = 0; x < iw; x++) acc[x] += row[x] * k;
        }
        for (int x = 0; x < iw; x++) out[o * w + x] = clip8(acc[x]);
    }
}

HOT static void transpose(const uint8_t *in, idx_t h, idx_t w, uint8_t *out) {
    for (idx_t y = 0; y < h; y++)
        for (idx_t x = 0; x < w; x++) out[x * h + y] = in[y * w + x];
}

/* Image.resize((nw, nh), BILINEAR, reducing_gap=2.0) of src (h, w) into out (nh, nw). Passes
   along rows run on the transposed image, so every pass runs along contiguous memory.
   Returns 0 or -1 when out of memory. */
static int resize(const uint8_t *src, idx_t h, idx_t w, idx_t nh, idx_t nw, uint8_t *out) {
    if (h == nh && w == nw) {
        memcpy(out, src, (size_t)(h * w));
        return 0;
    }
    idx_t fx = (idx_t)((double)w / (double)nw / 2.0), fy = (idx_t)((double)h / (double)nh / 2.0);
    fx = fx < 1 ? 1 : fx;
    fy = fy < 1 ? 1 : fy;
    double in1x = (double)w, in1y = (double)h;
    uint8_t *reduced = NULL, *t1 = NULL, *t2 = NULL;
    int32_t *acc = NULL;
    idx_t *hs = NULL, *hc = NULL, *vs = NULL, *vc = NULL;
    int32_t *hk = NULL, *vk = NULL;
    int err = -1;
    if (fx > 1 || fy > 1) { /* reduce by whole blocks first; the resample covers the exact span */
        const idx_t rh = (h - 1) / fy + 1, rw = (w - 1) / fx + 1;
        if (!(reduced = malloc((size_t)(rh * rw))) || reduce_box(src, h, w, fy, fx, reduced)) goto done;
        in1x = (double)(float)((double)w / (double)fx);
        in1y = (double)(float)((double)h / (double)fy);
        src = reduced, h = rh, w = rw;
    }
    const int need_h = nw != w || in1x != (double)nw, need_v = nh != h || in1y != (double)nh;
    const int h_first = !(h - nh > 0 && h - nh > (w - nw) * 2); /* Pillow's order */
    const idx_t vks = coeffs(h, in1y, nh, &vs, &vc, &vk);
    if (!vks) goto done;
    const idx_t hks = coeffs(w, in1x, nw, &hs, &hc, &hk);
    if (!hks) goto done;
    const idx_t big = MAX(h, nh) * MAX(w, nw);
    t1 = malloc((size_t)big), t2 = malloc((size_t)big), acc = malloc(sizeof(int32_t) * (size_t)MAX(MAX(h, w), MAX(nh, nw)));
    if (!t1 || !t2 || !acc) goto done;
    if (h_first) {
        /* rows r0..r1 are all the vertical pass reads */
        const idx_t r0 = need_v ? vs[0] : 0, r1 = need_v ? vs[nh - 1] + vc[nh - 1] : h, n = r1 - r0;
        const uint8_t *rows = src + r0 * w;
        if (need_h) {
            transpose(rows, n, w, t1);                              /* (w, n) */
            resample_rows(t1, n, hs, hc, hk, hks, nw, 0, t2, acc);  /* (nw, n) */
            transpose(t2, nw, n, t1);                               /* (n, nw) */
            rows = t1;
        }
        if (need_v) resample_rows(rows, nw, vs, vc, vk, vks, nh, r0, out, acc);
        else memcpy(out, rows, (size_t)(nh * nw));
    } else {
        const uint8_t *rows = src;
        if (need_v) {
            resample_rows(src, w, vs, vc, vk, vks, nh, 0, t1, acc); /* (nh, w) */
            rows = t1;
        }
        if (need_h) {
            transpose(rows, nh, w, t2);                             /* (w, nh) */
            resample_rows(t2, nh, hs, hc, hk, hks, nw, 0, t1, acc); /* (nw, nh) */
            transpose(t1, nw, nh, out);
        } else {
            memcpy(out, rows, (size_t)(nh * nw));
        }
    }
    err = 0;
done:
    free(reduced), free(t1), free(t2), free(acc), free(hs), free(hc), free(hk), free(vs), free(vc), free(vk);
    return err;
}

/* One of Pillow's box-blur passes along axis 0 of in (n rows of w): the window of 2r+1 rows at
   weight ww, the next row on each side at fw (24-bit fixed point), edges repeated. In 32 bits,
   as Pillow's: 255 * ((2r+1) ww + 2 fw) + 2**23 < 2**32. acc: w uint32 of scratch. */
HOT static void box_blur_rows(const uint8_t *in, idx_t n, idx_t w, idx_t r, uint32_t ww, uint32_t fw, uint8_t *out,
                              uint32_t *acc) {
    const int iw = (int)w;
    for (idx_t i = 0; i < n; i++) {
        for (int x = 0; x < iw; x++) acc[x] = 0;
        for (idx_t t = i - r; t <= i + r; t++) {
            const uint8_t *row = in + MIN(MAX(t, 0), n - 1) * w;
            for (int x = 0; x < iw; x++) acc[x] += row[x];
        }
        const uint8_t *lo = in + MAX(i - r - 1, 0) * w, *hi = in + MIN(i + r + 1, n - 1) * w;
        for (int x = 0; x < iw; x++)
            out[i * w + x] = (uint8_t)((acc[x] * ww + ((uint32_t)lo[x] + hi[x]) * fw + (1u << 23)) >> 24);
    }
}

/* filter(UnsharpMask(radius, percent, threshold=0)) in place: the image plus percent of its
   difference from a three-pass box-blur Gaussian (horizontal passes, then vertical). */
HOT static int sharpen(uint8_t *img, idx_t h, idx_t w, int percent, idx_t r, uint32_t ww, uint32_t fw) {
    uint8_t *a = malloc((size_t)(h * w)), *b = malloc((size_t)(h * w));
    uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)MAX(h, w));
    if (!a || !b || !acc) {
        free(a), free(b), free(acc);
        return -1;
    }
    transpose(img, h, w, a); /* (w, h): the horizontal passes run along axis 0 */
    for (int pass = 0; pass < 3; pass++) {
        box_blur_rows(a, w, h, r, ww, fw, b, acc);
        uint8_t *t = a;
        a = b, b = t;
    }
    transpose(a, w, h, b);
    for (int pass = 0; pass < 3; pass++) {
        box_blur_rows(b, h, w, r, ww, fw, a, acc);
        uint8_t *t = a;
        a = b, b = t;
    }
    const int n = (int)(h * w);
    for (int i = 0; i < n; i++) {
        const int p = img[i], d = p - b[i];
        const int v = p + d * percent / 100; /* C division truncates towards zero, as Pillow's */
        img[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(a), free(b), free(acc);
    return 0;
}

/* Errors: out of memory, or a render larger than its output (a recipe's fill over 1). */
enum { OK = 0, NO_MEMORY = -1, TOO_LARGE = -2 };

/* Resize val8 (ch, cw) so its longest edge spans fill of out's side, sharpen, centre on black. */
static int render(const uint8_t *val8, idx_t ch, idx_t cw, uint8_t *out, idx_t size, double fill, int percent,
                  idx_t r, uint32_t ww, uint32_t fw) {
    const double scale = (double)size * fill / (double)MAX(ch, cw);
    idx_t nw = (idx_t)rint((double)cw * scale), nh = (idx_t)rint((double)ch * scale); /* half to even */
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    if (nw > size || nh > size) return TOO_LARGE;
    uint8_t *small = malloc((size_t)(nh * nw));
    if (!small || resize(val8, ch, cw, nh, nw, small) || (percent && sharpen(small, nh, nw, percent, r, ww, fw))) {
        free(small);
        return NO_MEMORY;
    }
    memset(out, 0, (size_t)(size * size));
    const idx_t oy = (size - nh) / 2, ox = (size - nw) / 2;
    for (idx_t y = 0; y < nh; y++) memcpy(out + (oy + y) * size + ox, small + y * nw, (size_t)nw);
    free(small);
    return OK;
}

/* ------------------------------------------------------------------ the conversion */

static int convert(const uint8_t *g, idx_t h, idx_t w, idx_t factor, const int64_t *idx, const double *xy,
                   const double *pinv, idx_t n, const double *p, const int64_t *framings, idx_t n_views,
                   uint8_t *views, idx_t size) {
    uint8_t *reduced = NULL, *mask = NULL, *val8 = NULL;
    float *inten = NULL, *diff = NULL;
    int64_t *rows = NULL, *cols = NULL;
    int err = -1;
    if (factor > 1) {
        const idx_t rh = (h - 1) / factor + 1, rw = (w - 1) / factor + 1;
        if (!(reduced = malloc((size_t)(rh * rw))) || reduce_box(g, h, w, factor, factor, reduced)) goto done;
        g = reduced, h = rh, w = rw;
    }
    const idx_t hw = h * w;
    inten = malloc(sizeof(float) * (size_t)hw);
    diff = malloc(sizeof(float) * (size_t)hw);
    mask = malloc((size_t)hw);
    rows = malloc(sizeof(int64_t) * (size_t)h);
    cols = malloc(sizeof(int64_t) * (size_t)w);
    val8 = malloc((size_t)hw);
    if (!inten || !diff || !mask || !rows || !cols || !val8) goto done;
    double noise;
    if (analyse(g, h, w, idx, xy, pinv, n, p[DARK] != 0, p[LIGHTER_WEIGHT], p[NOISE_FLOOR_K], p[MIN_CONTRAST],
                p[NOISE_K], inten, diff, mask, rows, cols, &noise))
        goto done;
    const double frac = p[TRIM_FRACTION];
    idx_t box[4] = {0, h, 0, w}, sub[4];
    if (!bbox(rows, h, cols, w, frac, box)) {
        /* A faint product: look again just above the noise before giving up on a crop. */
        const float thr = (float)(3.0 * noise + 2.0);
        for (idx_t i = 0; i < hw; i++) mask[i] = diff[i] > thr;
        counts(mask, w, 0, h, 0, w, rows, cols);
        if (!bbox(rows, h, cols, w, frac, box)) box[0] = 0, box[1] = h, box[2] = 0, box[3] = w;
    }
    if (p[SPLIT_PAIRS] != 0) {
        idx_t s0, s1;
        counts(mask, w, box[0], box[1], box[2], box[3], rows, cols);
        if (split_pair(cols, box[3] - box[2], &s0, &s1)) {
            box[3] = box[2] + s1, box[2] = box[2] + s0;
            counts(mask, w, box[0], box[1], box[2], box[3], rows, cols);
            if (bbox(rows, box[1] - box[0], cols, box[3] - box[2], frac, sub)) {
                box[1] = box[0] + sub[1], box[0] = box[0] + sub[0];
                box[3] = box[2] + sub[3], box[2] = box[2] + sub[2];
            }
        }
    }
    const float gain = stretch(inten, mask, h, w, box, 255.0 * p[SILHOUETTE_FLOOR], p[STRETCH_Q]);
    if (isnan(gain)) goto done;
    const int percent = (int)p[SHARPEN_PERCENT];
    const idx_t r = (idx_t)p[BLUR_R];
    const uint32_t ww = (uint32_t)p[BLUR_WW], fw = (uint32_t)p[BLUR_FW];
    for (idx_t v = 0; v < n_views; v++) {
        /* CROP: Fashion-MNIST's framing, tight on the product; FRAME: the whole packshot. */
        const int crop = framings[v] == CROP;
        const idx_t y0 = crop ? box[0] : 0, y1 = crop ? box[1] : h, x0 = crop ? box[2] : 0, x1 = crop ? box[3] : w;
        to8(inten, w, gain, y0, y1, x0, x1, val8);
        err = render(val8, y1 - y0, x1 - x0, views + v * size * size, size, crop ? p[FILL] : 1.0, percent, r, ww, fw);
        if (err) goto done;
    }
    err = OK;
done:
    free(reduced), free(inten), free(diff), free(mask), free(rows), free(cols), free(val8);
    return err;
}

/* ------------------------------------------------------------------ Python bindings */

/* A C-ordered buffer of `ndim` dimensions whose items have `itemsize` bytes and a format in `kinds`. */
static int get(PyObject *obj, Py_buffer *view, int ndim, Py_ssize_t itemsize, const char *kinds, int writable,
               const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (view->ndim != ndim || view->itemsize != itemsize || f[0] == 0 || f[1] != 0 || !strchr(kinds, f[0])) {
        PyErr_Format(PyExc_TypeError, "%s: need a C-ordered %d-D array of %s", name, ndim, kinds);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Whether every one of the n indices points inside an image of `size` pixels. */
static int indices_within(const int64_t *idx, idx_t n, idx_t size) {
    for (idx_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= size) return 0;
    return 1;
}

#define U8 1, "B?"
#define I64 8, "lq"
#define F64 8, "d"
#define F32 4, "f"

static PyObject *py_convert(PyObject *self, PyObject *args) {
    PyObject *og, *oidx, *oxy, *opinv, *op, *ofr, *oout;
    Py_ssize_t factor;
    if (!PyArg_ParseTuple(args, "OnOOOOOO", &og, &factor, &oidx, &oxy, &opinv, &op, &ofr, &oout)) return NULL;
    Py_buffer b[7];
    int got = 0;
    PyObject *result = NULL;
    if (get(og, &b[got], 2, U8, 0, "g") < 0 || (++got, get(oidx, &b[got], 1, I64, 0, "idx") < 0) ||
        (++got, get(oxy, &b[got], 2, F64, 0, "xy") < 0) || (++got, get(opinv, &b[got], 2, F64, 0, "pinv") < 0) ||
        (++got, get(op, &b[got], 1, F64, 0, "params") < 0) || (++got, get(ofr, &b[got], 1, I64, 0, "framings") < 0) ||
        (++got, get(oout, &b[got], 3, U8, 1, "out") < 0))
        goto done;
    ++got;
    const idx_t h = b[0].shape[0], w = b[0].shape[1], n = b[1].shape[0], size = b[6].shape[1];
    if (h < 1 || w < 1 || factor < 1 || n < 1 || b[2].shape[0] != 2 || b[2].shape[1] != n || b[3].shape[0] != 3 ||
        b[3].shape[1] != n || b[4].shape[0] != N_PARAMS || b[6].shape[0] != b[5].shape[0] || b[6].shape[2] != size ||
        size < 1 || ((double *)b[4].buf)[BLUR_R] < 0) {
        PyErr_SetString(PyExc_ValueError, "convert: inconsistent array shapes");
        goto done;
    }
    const idx_t rh = (h - 1) / factor + 1, rw = (w - 1) / factor + 1;
    const int64_t *idx = b[1].buf;
    if (!indices_within(idx, n, rh * rw)) {
        PyErr_SetString(PyExc_ValueError, "convert: border index outside the reduced image");
        goto done;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = convert(b[0].buf, h, w, factor, idx, b[2].buf, b[3].buf, n, b[4].buf, b[5].buf, b[5].shape[0],
                  b[6].buf, size);
    Py_END_ALLOW_THREADS
    if (err == TOO_LARGE) PyErr_SetString(PyExc_ValueError, "convert: the render is larger than its output (fill over 1)");
    else if (err) PyErr_NoMemory();
    else result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}

static PyObject *py_analyse(PyObject *self, PyObject *args) {
    PyObject *o[10];
    int dark;
    double lw, nfk, minc, nk;
    if (!PyArg_ParseTuple(args, "OOOOpddddOOOOO", &o[0], &o[1], &o[2], &o[3], &dark, &lw, &nfk, &minc, &nk, &o[4],
                          &o[5], &o[6], &o[7], &o[8]))
        return NULL;
    static const int nd[9] = {2, 1, 2, 2, 2, 2, 2, 1, 1}, wr[9] = {0, 0, 0, 0, 1, 1, 1, 1, 1};
    static const Py_ssize_t sz[9] = {1, 8, 8, 8, 4, 4, 1, 8, 8};
    static const char *kinds[9] = {"B?", "lq", "d", "d", "f", "f", "B?", "lq", "lq"};
    Py_buffer b[9];
    int got = 0;
    PyObject *result = NULL;
    for (; got < 9; got++)
        if (get(o[got], &b[got], nd[got], sz[got], kinds[got], wr[got], "analyse") < 0) goto done;
    const idx_t h = b[0].shape[0], w = b[0].shape[1], n = b[1].shape[0];
    int ok = h >= 1 && w >= 1 && n >= 1 && b[2].shape[0] == 2 && b[2].shape[1] == n && b[3].shape[0] == 3 &&
             b[3].shape[1] == n && b[7].shape[0] == h && b[8].shape[0] == w;
    for (int i = 4; i < 7; i++) ok = ok && b[i].shape[0] == h && b[i].shape[1] == w;
    ok = ok && indices_within(b[1].buf, n, h * w);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "analyse: inconsistent array shapes or border indices");
        goto done;
    }
    double noise;
    if (analyse(b[0].buf, h, w, b[1].buf, b[2].buf, b[3].buf, n, dark, lw, nfk, minc, nk, b[4].buf, b[5].buf, b[6].buf,
                b[7].buf, b[8].buf, &noise))
        PyErr_NoMemory();
    else
        result = PyFloat_FromDouble(noise);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}

static PyObject *py_render(PyObject *self, PyObject *args) {
    PyObject *oval, *oout;
    double fill;
    int percent;
    Py_ssize_t r;
    unsigned long ww, fw;
    if (!PyArg_ParseTuple(args, "OOdinkk", &oval, &oout, &fill, &percent, &r, &ww, &fw)) return NULL;
    Py_buffer bv, bo;
    if (get(oval, &bv, 2, U8, 0, "val8") < 0) return NULL;
    if (get(oout, &bo, 2, U8, 1, "out") < 0) {
        PyBuffer_Release(&bv);
        return NULL;
    }
    PyObject *result = NULL;
    int err = OK;
    if (bo.shape[0] != bo.shape[1] || bo.shape[0] < 1 || bv.shape[0] < 1 || bv.shape[1] < 1 || r < 0)
        PyErr_SetString(PyExc_ValueError, "render: need a non-empty image, a square output and a radius >= 0");
    else if ((err = render(bv.buf, bv.shape[0], bv.shape[1], bo.buf, bo.shape[0], fill, percent, r, (uint32_t)ww,
                           (uint32_t)fw)) == TOO_LARGE)
        PyErr_SetString(PyExc_ValueError, "render: the render is larger than its output (fill over 1)");
    else if (err) PyErr_NoMemory();
    else result = Py_NewRef(Py_None);
    PyBuffer_Release(&bv);
    PyBuffer_Release(&bo);
    return result;
}

static PyObject *py_quantile(PyObject *self, PyObject *args) {
    PyObject *oa;
    double q;
    if (!PyArg_ParseTuple(args, "Od", &oa, &q)) return NULL;
    Py_buffer b;
    if (get(oa, &b, 1, F64, 0, "a") < 0) return NULL;
    PyObject *result = NULL;
    if (b.shape[0] < 1) PyErr_SetString(PyExc_ValueError, "quantile of an empty array");
    else {
        const double v = quantile(b.buf, b.shape[0], q);
        result = isnan(v) ? PyErr_NoMemory() : PyFloat_FromDouble(v);
    }
    PyBuffer_Release(&b);
    return result;
}

static PyMethodDef methods[] = {
    {"convert", py_convert, METH_VARARGS, "convert(g, factor, idx, xy, pinv, params, framings, out): one photo's views."},
    {"analyse", py_analyse, METH_VARARGS, "analyse(...) -> noise: the background fit and the product mask."},
    {"render", py_render, METH_VARARGS, "render(val8, out, fill, percent, blur_r, blur_ww, blur_fw)."},
    {"quantile", py_quantile, METH_VARARGS, "quantile(a, q) -> float: np.quantile of float64 values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "garment._convert",
                                    "A photo's conversion after decoding, in C (see garment.convert).", -1, methods};

PyMODINIT_FUNC PyInit__convert(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "N_PARAMS", N_PARAMS) < 0) Py_CLEAR(m);
    return m;
}
