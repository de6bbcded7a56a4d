"""The conversion's per-pixel kernels, compiled with numba.

A photo's conversion (``garment.convert``) does a few dozen passes over a ~100x150 image; in
NumPy their call overhead costs more than their arithmetic, so the passes are fused here into
two loops: ``analyse`` (background plane from the border, product intensity, difference and
mask) and ``finish`` (silhouette floor, stretch, 8 bits). Arithmetic matches the NumPy
formulation: float32 per pixel, float64 for the fit and the quantiles.

The two kernels' signatures are explicit, so they compile when this module is imported
(about 15 s the first time; then numba's on-disk cache loads them in about 0.2 s); their
helpers have none and are compiled into them, so the cache has two entries to load, not six.
``garment.convert`` imports it on first use; classification's worker processes fork from a
server that has imported it, so they start with the kernels ready.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)  # no signature: compiled into its callers, which load faster from the cache
def _quantile(a: np.ndarray, q: float) -> float:
    """``np.quantile(a, q)`` (linear interpolation), by quickselect on a float64 copy.

    (Hand-written rather than ``np.partition``, which takes numba ~10 s to compile.)"""
    n = a.size
    work = np.empty(n)
    for t in range(n):
        work[t] = a[t]
    pos = q * (n - 1)
    k = int(pos)
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
    v_lo = work[k]
    v_hi = v_lo
    if k + 1 < n:
        v_hi = work[k + 1]
        for t in range(k + 2, n):
            if work[t] < v_hi:
                v_hi = work[t]
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
def _fit_plane(vals: np.ndarray, idx: np.ndarray, pinv: np.ndarray, w: int, h: int):
    """Robust fit of bg = c0 + c1*x/w + c2*y/h to the border values: fit on all, keep the best
    two thirds, fit again; returns (c0, c1, c2, noise) with noise the kept residuals' robust sigma."""
    n = vals.size
    c = np.zeros(3)
    for k in range(3):
        c[k] = (pinv[k] * vals).sum()
    resid = np.empty(n)
    for refit in (True, False):
        for i in range(n):
            y, x = divmod(idx[i], w)
            resid[i] = abs(vals[i] - (c[0] + c[1] * (x / w) + c[2] * (y / h)))
        cut = _quantile(resid, 0.67) + 1e-6
        if not refit:
            break
        # Normal equations over the kept values: a 3x3 symmetric system.
        ata = np.zeros((3, 3))
        atb = np.zeros(3)
        row = np.empty(3)
        for i in range(n):
            if resid[i] <= cut:
                y, x = divmod(idx[i], w)
                row[0], row[1], row[2] = 1.0, x / w, y / h
                for r in range(3):
                    atb[r] += row[r] * vals[i]
                    for q in range(3):
                        ata[r, q] += row[r] * row[q]
        c = _solve3(ata, atb)
    kept = resid[resid <= cut]
    return c[0], c[1], c[2], _quantile(kept, 0.5) * 1.4826 + 1.0


@njit("Tuple((float32[:, ::1], float32[:, ::1], boolean[:, ::1], int64[::1], int64[::1], float64))"
      "(uint8[:, ::1], int64[::1], float64[:, ::1], boolean, float64, float64, float64, float64)",
      cache=True, nogil=True)
def analyse(g: np.ndarray, idx: np.ndarray, pinv: np.ndarray, dark: bool, lighter_weight: float,
            noise_floor_k: float, min_contrast: float, noise_k: float):
    """Background plane from the border, then per pixel: the product intensity (darkness below
    the background, or any difference from it, scaled to the local background), the
    difference from the background and the product mask.

    Returns (inten, diff, mask, row counts, column counts of the mask, noise)."""
    h, w = g.shape
    flat = g.ravel()
    vals = np.empty(idx.size)
    for i in range(idx.size):
        vals[i] = flat[idx[i]]
    c0, c1, c2, noise = _fit_plane(vals, idx, pinv, w, h)
    thr = np.float32(max(min_contrast, noise_k * noise))
    sub = np.float32(noise_floor_k * noise)
    lw = np.float32(lighter_weight)
    sx, sy, f0 = np.float32(c1 / w), np.float32(c2 / h), np.float32(c0)
    inten = np.empty((h, w), np.float32)
    diff = np.empty((h, w), np.float32)
    mask = np.empty((h, w), np.bool_)
    rows = np.zeros(h, np.int64)
    cols = np.zeros(w, np.int64)
    for y in range(h):
        base = np.float32(y) * sy + f0
        for x in range(w):
            p = base + np.float32(x) * sx
            s = p - np.float32(g[y, x])
            if dark:
                v = max(s, np.float32(0.0))
            else:
                v = s if s >= 0 else -s * lw
            if sub > 0:
                v = max(v - sub, np.float32(0.0))
            inten[y, x] = v * (np.float32(255.0) / max(p, np.float32(32.0)))
            d = abs(s)
            diff[y, x] = d
            m = d > thr
            mask[y, x] = m
            if m:
                rows[y] += 1
                cols[x] += 1
    return inten, diff, mask, rows, cols, noise


@njit("uint8[:, ::1](float32[:, ::1], boolean[:, ::1], int64, int64, int64, int64, float64, float64, boolean)",
      cache=True, nogil=True)
def finish(inten: np.ndarray, mask: np.ndarray, y0: int, y1: int, x0: int, x1: int, floor: float,
           q: float, whole: bool) -> np.ndarray:
    """Silhouette floor inside the mask, stretch so the crop's product pixels reach 255 at
    quantile ``q``, and 8 bits: of the whole image when ``whole``, else of the crop."""
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
    top = _quantile(fg, q) if fg.size else 0.0
    gain = np.float32(255.0 / top if top > 1.0 else 1.0)
    src = inten if whole else inten[y0:y1, x0:x1]
    out = np.empty(src.shape, np.uint8)
    for y in range(src.shape[0]):
        for x in range(src.shape[1]):
            out[y, x] = np.uint8(min(src[y, x] * gain, np.float32(255.0)))
    return out
