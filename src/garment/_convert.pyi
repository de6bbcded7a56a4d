"""Type stub of the compiled conversion kernel (garment/_convert.c)."""

import numpy as np

N_PARAMS: int

def convert(g: np.ndarray, factor: int, idx: np.ndarray, xy: np.ndarray, pinv: np.ndarray, params: np.ndarray,
            framings: np.ndarray, out: np.ndarray) -> None: ...
def analyse(g: np.ndarray, idx: np.ndarray, xy: np.ndarray, pinv: np.ndarray, dark: bool, lighter_weight: float,
            noise_floor_k: float, min_contrast: float, noise_k: float, inten: np.ndarray, diff: np.ndarray,
            mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float: ...
def render(val8: np.ndarray, out: np.ndarray, fill: float, percent: int, blur_r: int, blur_ww: int,
           blur_fw: int) -> None: ...
def quantile(a: np.ndarray, q: float) -> float: ...
