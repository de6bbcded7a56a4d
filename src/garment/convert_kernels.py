"""The conversion's per-pixel work, compiled with numba: one kernel, ``convert``.

After decoding, a photo's conversion (``garment.convert``) does a few dozen passes over a
~100x150 image and two 28x28 renders; through NumPy and Pillow their call overhead costs more
than their arithmetic, so they run here as one compiled call per photo: box reduce, background
plane from the border, product intensity and mask, crop (with the faint-product fallback and
the split of a pair of shoes), silhouette floor and stretch, and each framing's render.
Arithmetic matches the NumPy and Pillow formulation it replaces, pixel for pixel: float32 per
pixel, float64 for the fit and the quantiles, and Pillow's own fixed-point resize and sharpen.

The kernel's signature is explicit, so it compiles when this module is imported (about 15 s the
first time; then numba's on-disk cache loads it in about 0.2 s); its helpers have none and are
compiled into it, so the cache has one entry to load. ``garment.convert`` imports it on first
use; classification's worker processes fork from a server that has imported it, so they start
with the kernel ready.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)  # no signature: compiled into its callers, which load faster from the cache
def _select(work: np.ndarray, k: int):
    """(k-th smallest, (k+1)-th smallest) of ``work`` (the k-th twice when k is the last), by
    quickselect in place. (Hand-written rather than ``np.partition``, which takes numba ~10 s
    to compile.)"""
    n = work.size
    lo, hi = 0, n - 1
    while lo < hi:  # Hoare partition around a median of three until position k is settled
        x, y, z = work[lo], work[(lo + hi) // 2], work[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while work[i] < pivot:
                i += 1
            while work[j] > pivot:
                j -= 1
            if i <= j:
                work[i], work[j] = work[j], work[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    # work[k] is the k-th smallest and everything after it is at least as large.
    v_next = work[k]
    if k + 1 < n:
        v_next = work[k + 1]
        for t in range(k + 2, n):
            if work[t] < v_next:
                v_next = work[t]
    return work[k], v_next


@njit(cache=True, nogil=True)  # no signature: compiled into its callers, which load faster from the cache
def _quantile(a: np.ndarray, q: float) -> float:
    """``np.quantile(a, q)`` (linear interpolation) of a 1-D array of finite values.

    The two order statistics it needs are found by value: a histogram of the values narrows them
    to one bin (binning is monotonic, so ranks carry over), and a quickselect within that bin
    settles them, a few branch-free passes instead of a quickselect over everything."""
    n = a.size
    pos = q * (n - 1)
    k = int(pos)
    lo = hi = np.float64(a[0])
    for t in range(n):
        lo = min(lo, np.float64(a[t]))
        hi = max(hi, np.float64(a[t]))
    if lo == hi:
        return lo + (pos - k) * (lo - lo)
    bins = 1024
    scale = bins / (hi - lo)
    counts = np.zeros(bins, np.int64)
    for t in range(n):
        counts[min(int((np.float64(a[t]) - lo) * scale), bins - 1)] += 1
    below, b = 0, 0
    while below + counts[b] <= k:  # the bin holding rank k
        below += counts[b]
        b += 1
    work = np.empty(counts[b])
    above = np.inf  # the smallest value in a higher bin
    m = 0
    for t in range(n):
        v = np.float64(a[t])
        c = min(int((v - lo) * scale), bins - 1)
        if c == b:
            work[m] = v
            m += 1
        elif c > b and v < above:
            above = v
    v_lo, v_hi = _select(work, k - below)
    if k - below + 1 == m:  # rank k is the bin's last: rank k + 1 is in a higher bin, if any
        v_hi = above if k + 1 < n else v_lo
    return v_lo + (pos - k) * (v_hi - v_lo)


@njit(cache=True, nogil=True)  # no signature: compiled into its callers, which load faster from the cache
def _solve3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a 3x3 system by Cramer's rule (the fit's matrix is well conditioned)."""
    det = (a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
           - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
           + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]))
    out = np.empty(3)
    for k in range(3):
        m = a.copy()
        m[:, k] = b
        out[k] = (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
                  - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
                  + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0])) / det
    return out


@njit(cache=True, nogil=True)  # no signature: compiled into its callers, which load faster from the cache
def _fit_plane(vals: np.ndarray, xy: np.ndarray, pinv: np.ndarray):
    """Robust fit of bg = c0 + c1*x/w + c2*y/h to the border values (``xy``: their x/w and y/h):
    fit on all, keep the best two thirds, fit again; returns (c0, c1, c2, noise) with noise the
    kept residuals' robust sigma."""
    n = vals.size
    c = np.zeros(3)
    for k in range(3):
        for i in range(n):  # (pinv[k] * vals).sum(), in the same order
            c[k] += pinv[k, i] * vals[i]
    resid = np.empty(n)
    for refit in (True, False):
        for i in range(n):
            resid[i] = abs(vals[i] - (c[0] + c[1] * xy[0, i] + c[2] * xy[1, i]))
        cut = _quantile(resid, 0.67) + 1e-6
        if not refit:
            break
        # Normal equations over the kept values (rows [1, x, y]): a 3x3 symmetric system.
        s1 = sx = sy = sxx = sxy = syy = sv = sxv = syv = 0.0
        for i in range(n):
            if resid[i] <= cut:
                x, y, v = xy[0, i], xy[1, i], vals[i]
                s1 += 1.0
                sx += x
                sy += y
                sxx += x * x
                sxy += x * y
                syy += y * y
                sv += v
                sxv += x * v
                syv += y * v
        ata = np.array([[s1, sx, sy], [sx, sxx, sxy], [sy, sxy, syy]])
        c = _solve3(ata, np.array([sv, sxv, syv]))
    kept = resid[resid <= cut]
    return c[0], c[1], c[2], _quantile(kept, 0.5) * 1.4826 + 1.0


@njit(cache=True, nogil=True)  # no signature: compiled into the kernel
def _analyse(g: np.ndarray, idx: np.ndarray, xy: np.ndarray, pinv: np.ndarray, dark: bool,
             lighter_weight: float, noise_floor_k: float, min_contrast: float, noise_k: float):
    """Background plane from the border (pixels ``idx``, at ``xy``), then per pixel: the product
    intensity (darkness below the background, or any difference from it, scaled to the local
    background), the difference from the background and the product mask.

    Returns (inten, diff, mask, row counts, column counts of the mask, noise)."""
    h, w = g.shape
    flat = g.ravel()
    vals = np.empty(idx.size)
    for i in range(idx.size):
        vals[i] = flat[idx[i]]
    c0, c1, c2, noise = _fit_plane(vals, xy, pinv)
    thr = np.float32(max(min_contrast, noise_k * noise))
    sub = np.float32(noise_floor_k * noise)
    lw = np.float32(lighter_weight)
    sx, sy, f0 = np.float32(c1 / w), np.float32(c2 / h), np.float32(c0)
    zero, top, floor = np.float32(0.0), np.float32(255.0), np.float32(32.0)
    inten = np.empty((h, w), np.float32)
    diff = np.empty((h, w), np.float32)
    mask = np.empty((h, w), np.bool_)
    rows = np.zeros(h, np.int64)
    cols = np.zeros(w, np.int64)
    for y in range(h):  # inner loops without branches on the pixel, so they vectorise
        base = np.float32(y) * sy + f0
        n = np.int64(0)
        for x in range(w):
            p = base + np.float32(x) * sx
            s = p - np.float32(g[y, x])
            v = max(s, zero) if dark else (s if s >= 0 else -s * lw)
            if sub > 0:
                v = max(v - sub, zero)
            inten[y, x] = v * (top / max(p, floor))
            d = abs(s)
            diff[y, x] = d
            m = d > thr
            mask[y, x] = m
            n += m
            cols[x] += m
        rows[y] = n
    return inten, diff, mask, rows, cols, noise


@njit(cache=True, nogil=True)
def _counts(mask: np.ndarray, y0: int, y1: int, x0: int, x1: int):
    """Row and column counts of the mask inside the box."""
    rows = np.zeros(y1 - y0, np.int64)
    cols = np.zeros(x1 - x0, np.int64)
    for y in range(y0, y1):
        for x in range(x0, x1):
            if mask[y, x]:
                rows[y - y0] += 1
                cols[x - x0] += 1
    return rows, cols


@njit(cache=True, nogil=True)
def _bbox(rows: np.ndarray, cols: np.ndarray, frac: float):
    """Tight box (found, y0, y1, x0, x1) around the rows/columns holding more than ``frac`` of
    the width/height."""
    r_thr = max(0.0, frac * cols.size)
    c_thr = max(0.0, frac * rows.size)
    y0, y1, x0, x1 = -1, -1, -1, -1
    for i in range(rows.size):
        if rows[i] > r_thr:
            if y0 < 0:
                y0 = i
            y1 = i + 1
    for i in range(cols.size):
        if cols[i] > c_thr:
            if x0 < 0:
                x0 = i
            x1 = i + 1
    return y0 >= 0 and x0 >= 0, y0, y1, x0, x1


@njit(cache=True, nogil=True)
def _split_pair(cols: np.ndarray):
    """Column range (found, start, stop) of the larger of two blobs separated by an empty
    vertical gap, from the crop's column counts: a pair of shoes side by side."""
    w = cols.size
    lo, hi = w // 5, w - w // 5
    n_empty = 0
    for x in range(lo, hi):
        if cols[x] == 0:
            n_empty += 1
    if n_empty == 0:
        return False, 0, w
    k, cut = n_empty // 2, -1
    for x in range(lo, hi):  # the middle one of the empty columns
        if cols[x] == 0:
            if k == 0:
                cut = x
                break
            k -= 1
    left, right = cols[:cut].sum(), cols[cut:].sum()
    if min(left, right) < 0.3 * max(left, right):
        return False, 0, w  # one object and a stray speck, not a pair
    return (True, 0, cut) if left >= right else (True, cut, w)


@njit(cache=True, nogil=True)
def _stretch(inten: np.ndarray, mask: np.ndarray, y0: int, y1: int, x0: int, x1: int, floor: float,
             q: float) -> np.float32:
    """Silhouette floor inside the mask (in place), then the gain that maps the crop's product
    pixels' quantile ``q`` to 255."""
    h, w = inten.shape
    fl = np.float32(floor)
    n_fg = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                if inten[y, x] < fl:
                    inten[y, x] = fl
                if y0 <= y < y1 and x0 <= x < x1:
                    n_fg += 1
    if n_fg:
        fg = np.empty(n_fg, np.float32)
        k = 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                if mask[y, x]:
                    fg[k] = inten[y, x]
                    k += 1
    else:
        fg = inten[y0:y1, x0:x1].copy().ravel()
    top = _quantile(fg, q)
    return np.float32(255.0 / top if top > 1.0 else 1.0)


@njit(cache=True, nogil=True)
def _to8(inten: np.ndarray, gain: np.float32, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    out = np.empty((y1 - y0, x1 - x0), np.uint8)
    for y in range(y0, y1):
        for x in range(x0, x1):
            out[y - y0, x - x0] = np.uint8(min(inten[y, x] * gain, np.float32(255.0)))
    return out


# ---------------------------------------------------------------- Pillow's resize and sharpen
# The 28x28 renders reproduce, pixel for pixel, what Pillow 9-13 computes for an "L" image with
# ``resize(size, BILINEAR, reducing_gap=2.0)`` and ``filter(UnsharpMask(radius, percent, 0))``
# (its box reduce, fixed-point bilinear passes and three-pass box-blur Gaussian, each rounding
# as Pillow's C does); tests compare the two on random images. Written here because Pillow's
# Python layer costs more than its arithmetic on images this small.


@njit(cache=True, nogil=True)
def _reduce_mult(n: int) -> np.int64:
    """Pillow's multiplier for a mean of ``n`` pixels: 2**32 / (256 n), divided in float32."""
    return np.int64(np.float32(4294967296.0) / np.float32(256 * n))


@njit(cache=True, nogil=True)
def _reduce(src: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """``Image.reduce((fx, fy))``: block means, partial blocks at the right and bottom edges."""
    h, w = src.shape
    oh, ow = (h - 1) // fy + 1, (w - 1) // fx + 1
    full = w // fx  # whole blocks in a row
    out = np.empty((oh, ow), np.uint8)
    acc = np.empty(ow, np.int32)
    for oy in range(oh):
        ys, ye = oy * fy, min(oy * fy + fy, h)
        acc[:] = 0
        for y in range(ys, ye):
            row = src[y]
            if fx == 2:  # the common case, written out so that it vectorises
                for ox in range(full):
                    acc[ox] += np.int32(row[2 * ox]) + np.int32(row[2 * ox + 1])
            else:
                for ox in range(full):
                    t = np.int32(0)
                    for dx in range(fx):
                        t += row[ox * fx + dx]
                    acc[ox] += t
            for x in range(full * fx, w):
                acc[full] += row[x]
        n = (ye - ys) * fx
        mult, amend = _reduce_mult(n), n // 2
        for ox in range(full):
            out[oy, ox] = ((acc[ox] + amend) * mult) >> 24
        if full < ow:
            n = (ye - ys) * (w - full * fx)
            out[oy, full] = ((acc[full] + n // 2) * _reduce_mult(n)) >> 24
    return out


@njit(cache=True, nogil=True)
def _coeffs(in_size: int, in1: float, out_size: int):
    """Bilinear weights of each output pixel over the input span [0, in1), in Pillow's 22-bit
    fixed point: (first input index, number of taps, weights (out_size, taps))."""
    scale = in1 / out_size
    filterscale = max(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1
    ksize = int(np.ceil(support)) * 2 + 1
    start = np.empty(out_size, np.int64)
    count = np.empty(out_size, np.int64)
    kk = np.zeros((out_size, ksize), np.int64)
    k = np.zeros(ksize)
    inv = 1.0 / filterscale
    for o in range(out_size):
        center = (o + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        total = 0.0
        for t in range(xmax):
            d = abs(((t + xmin) - center + 0.5) * inv)
            k[t] = 1.0 - d if d < 1.0 else 0.0
            total += k[t]
        for t in range(xmax):
            v = k[t] / total if total != 0.0 else k[t]
            kk[o, t] = int(0.5 + v * 4194304.0) if v >= 0 else int(-0.5 + v * 4194304.0)
        start[o], count[o] = xmin, xmax
    return start, count, kk


@njit(cache=True, nogil=True)
def _resample_rows(src: np.ndarray, start: np.ndarray, count: np.ndarray, kk: np.ndarray,
                   offset: int) -> np.ndarray:
    """One resampling pass along axis 0 (each output row a weighted sum of input rows), in
    Pillow's fixed point; vectorised along axis 1."""
    n_out, w = start.size, src.shape[1]
    out = np.empty((n_out, w), np.uint8)
    acc = np.empty(w, np.int32)  # at most 255 * 2**22 * (1 + rounding): fits
    for o in range(n_out):
        acc[:] = 1 << 21
        for t in range(count[o]):
            k = np.int32(kk[o, t])
            row = src[start[o] - offset + t]
            for x in range(w):
                acc[x] += np.int32(row[x]) * k
        for x in range(w):
            out[o, x] = min(max(acc[x] >> 22, 0), 255)
    return out


@njit(cache=True, nogil=True)
def _transpose(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    out = np.empty((w, h), a.dtype)
    for y in range(h):
        for x in range(w):
            out[x, y] = a[y, x]
    return out


@njit(cache=True, nogil=True)
def _resize(src: np.ndarray, nh: int, nw: int) -> np.ndarray:
    """``Image.resize((nw, nh), BILINEAR, reducing_gap=2.0)``."""
    h, w = src.shape
    if h == nh and w == nw:
        return src.copy()
    fx, fy = max(1, int(w / nw / 2.0)), max(1, int(h / nh / 2.0))
    in1x, in1y = float(w), float(h)
    if fx > 1 or fy > 1:  # reduce by whole blocks first; the resample covers the exact span
        src = _reduce(src, fy, fx)
        in1x, in1y = float(np.float32(w / fx)), float(np.float32(h / fy))
        h, w = src.shape
    need_h, need_v = nw != w or in1x != nw, nh != h or in1y != nh
    # Pillow's order: vertical first when the height shrinks more than twice the width.
    h_first = not (h - nh > 0 and h - nh > (w - nw) * 2)
    v_start, v_count, v_kk = _coeffs(h, in1y, nh)
    h_start, h_count, h_kk = _coeffs(w, in1x, nw)
    if h_first:
        r0, r1 = (v_start[0], v_start[nh - 1] + v_count[nh - 1]) if need_v else (0, h)
        if need_h:  # on the transposed image, so the pass runs along contiguous memory
            src = _transpose(_resample_rows(_transpose(src[r0:r1]), h_start, h_count, h_kk, 0))
        else:
            src = src[r0:r1].copy()
        if need_v:
            src = _resample_rows(src, v_start, v_count, v_kk, r0)
    else:
        if need_v:
            src = _resample_rows(src, v_start, v_count, v_kk, 0)
        if need_h:
            src = _transpose(_resample_rows(_transpose(src), h_start, h_count, h_kk, 0))
    return src


@njit(cache=True, nogil=True)
def _box_blur_rows(a: np.ndarray, r: int, ww: int, fw: int) -> np.ndarray:
    """One of Pillow's box-blur passes along axis 0: window of 2r+1 rows at weight ``ww``, the
    next row on each side at ``fw`` (24-bit fixed point), edges repeated."""
    n, w = a.shape
    out = np.empty((n, w), np.uint8)
    acc = np.empty(w, np.int64)
    for i in range(n):
        acc[:] = 0
        for t in range(i - r, i + r + 1):
            row = min(max(t, 0), n - 1)
            for x in range(w):
                acc[x] += a[row, x]
        lo, hi = max(i - r - 1, 0), min(i + r + 1, n - 1)
        for x in range(w):
            out[i, x] = (acc[x] * ww + (np.int64(a[lo, x]) + a[hi, x]) * fw + (1 << 23)) >> 24
    return out


@njit(cache=True, nogil=True)
def _sharpen(img: np.ndarray, percent: int, r: int, ww: int, fw: int) -> np.ndarray:
    """``filter(UnsharpMask(radius, percent, threshold=0))``: the image plus ``percent`` of its
    difference from a three-pass box-blur Gaussian (horizontal passes, then vertical)."""
    blur = _transpose(img)
    for _ in range(3):
        blur = _box_blur_rows(blur, r, ww, fw)
    blur = _transpose(blur)
    for _ in range(3):
        blur = _box_blur_rows(blur, r, ww, fw)
    h, w = img.shape
    out = np.empty((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            p = np.int64(img[y, x])
            d = p - blur[y, x]
            q = (abs(d) * percent) // 100  # C's division truncates towards zero
            out[y, x] = min(max(p + (q if d >= 0 else -q), 0), 255)
    return out


@njit(cache=True, nogil=True)
def _render(val8: np.ndarray, out: np.ndarray, fill: float, percent: int, r: int, ww: int, fw: int) -> None:
    """Resize so the longest edge spans ``fill`` of ``out``'s side, sharpen, centre on black."""
    size = out.shape[0]
    ch, cw = val8.shape
    scale = size * fill / max(ch, cw)
    nw, nh = max(1, int(np.rint(cw * scale))), max(1, int(np.rint(ch * scale)))  # round half to even
    small = _resize(val8, nh, nw)
    if percent:
        small = _sharpen(small, percent, r, ww, fw)
    out[:] = 0
    oy, ox = (size - nh) // 2, (size - nw) // 2
    out[oy : oy + nh, ox : ox + nw] = small


def blur_constants(radius: float, passes: int = 3) -> tuple[int, int, int]:
    """Pillow's box-blur parameters for a Gaussian of ``radius`` made of ``passes`` box blurs:
    (whole radius, weight of the window's pixels, weight of the two next ones), 24-bit fixed
    point, computed in float32 as Pillow's C does."""
    f = np.float32
    sigma2 = f(f(radius) * f(radius)) / f(passes)
    length = f(np.sqrt(12.0 * float(sigma2) + 1.0))
    whole = f(np.floor((float(length) - 1.0) / 2.0))
    a = f(f(f(2) * whole + f(1)) * f(whole * f(whole + f(1)) - f(3) * sigma2))
    a = f(a / f(f(6) * f(sigma2 - f(whole + f(1)) * f(whole + f(1)))))
    box = f(whole + a)
    ww = int(f(16777216) / f(box * f(2) + f(1)))
    return int(box), ww, (16777216 - (int(box) * 2 + 1) * ww) // 2


# ---------------------------------------------------------------- the kernel

#: Layout of ``convert``'s parameter vector (built by ``params``).
PARAMS = ("dark", "lighter_weight", "noise_floor_k", "min_contrast", "noise_k", "trim_fraction",
          "split_pairs", "silhouette_floor", "stretch_q", "fill", "sharpen_percent",
          "blur_r", "blur_ww", "blur_fw")
(DARK, LIGHTER_WEIGHT, NOISE_FLOOR_K, MIN_CONTRAST, NOISE_K, TRIM_FRACTION, SPLIT_PAIRS,
 SILHOUETTE_FLOOR, STRETCH_Q, FILL, SHARPEN_PERCENT, BLUR_R, BLUR_WW, BLUR_FW) = range(len(PARAMS))
#: Framing codes in ``convert``'s framings vector.
CROP, FRAME = 0, 1


def params(**values: float) -> np.ndarray:
    """``convert``'s parameter vector from PARAMS' names."""
    return np.array([float(values[name]) for name in PARAMS])


@njit("uint8[:, :, ::1](uint8[:, ::1], int64, int64[::1], float64[:, ::1], float64[:, ::1], float64[::1], "
      "int64[::1], int64)", cache=True, nogil=True)
def convert(g: np.ndarray, factor: int, idx: np.ndarray, xy: np.ndarray, pinv: np.ndarray, p: np.ndarray,
            framings: np.ndarray, size: int) -> np.ndarray:
    """A decoded grey photo to its views (V, size, size): reduce by ``factor``, model the
    background (border pixels ``idx`` at ``xy``, least-squares ``pinv``, of the reduced shape), find the product, crop,
    stretch, and render each framing (CROP: tight on the product; FRAME: the whole photo)."""
    if factor > 1:
        g = _reduce(g, factor, factor)
    h, w = g.shape
    inten, diff, mask, rows, cols, noise = _analyse(
        g, idx, xy, pinv, p[DARK] != 0, p[LIGHTER_WEIGHT], p[NOISE_FLOOR_K], p[MIN_CONTRAST], p[NOISE_K])
    frac = p[TRIM_FRACTION]
    found, y0, y1, x0, x1 = _bbox(rows, cols, frac)
    if not found:
        # A faint product: look again just above the noise before giving up on a crop.
        mask = diff > np.float32(3.0 * noise + 2.0)
        rows, cols = _counts(mask, 0, h, 0, w)
        found, y0, y1, x0, x1 = _bbox(rows, cols, frac)
        if not found:
            y0, y1, x0, x1 = 0, h, 0, w
    if p[SPLIT_PAIRS] != 0:
        pair, s0, s1 = _split_pair(_counts(mask, y0, y1, x0, x1)[1])
        if pair:
            x0, x1 = x0 + s0, x0 + s1
            sub_rows, sub_cols = _counts(mask, y0, y1, x0, x1)
            found, sy0, sy1, sx0, sx1 = _bbox(sub_rows, sub_cols, frac)
            if found:
                y0, y1, x0, x1 = y0 + sy0, y0 + sy1, x0 + sx0, x0 + sx1
    gain = _stretch(inten, mask, y0, y1, x0, x1, 255.0 * p[SILHOUETTE_FLOOR], p[STRETCH_Q])
    views = np.empty((framings.size, size, size), np.uint8)
    r, ww, fw, percent = int(p[BLUR_R]), int(p[BLUR_WW]), int(p[BLUR_FW]), int(p[SHARPEN_PERCENT])
    for v in range(framings.size):
        if framings[v] == CROP:  # Fashion-MNIST's framing: tight on the product
            _render(_to8(inten, gain, y0, y1, x0, x1), views[v], p[FILL], percent, r, ww, fw)
        else:  # the whole packshot, as the shop framed it
            _render(_to8(inten, gain, 0, h, 0, w), views[v], 1.0, percent, r, ww, fw)
    return views
