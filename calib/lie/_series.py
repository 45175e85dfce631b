"""Small-angle coefficient functions with Taylor branches.

Each function takes ``theta`` (any shape, ``>= 0``) and returns the coefficient with the
same shape, switching to a Taylor series below a threshold chosen so that the series
truncation error and the closed form's cancellation error are both below ~1e-15.
"""

from __future__ import annotations

from math import factorial

import numpy as np

#: Below this angle the Taylor branches are used (rad). Nine series terms keep the
#: truncation error below 1e-16 there, and the closed forms above it lose < 1e-13.
SMALL_ANGLE = 0.3


def _where(small: np.ndarray, series, closed, theta: np.ndarray) -> np.ndarray:
    out = np.empty_like(theta)
    if small.any():
        out[small] = series(theta[small])
    big = ~small
    if big.any():
        out[big] = closed(theta[big])
    return out


def _poly(coeffs: tuple[float, ...]):
    """Even power series ``sum_k coeffs[k] * t^(2k)`` evaluated by Horner's rule."""

    def f(t: np.ndarray) -> np.ndarray:
        t2 = t * t
        acc = np.full_like(t, coeffs[-1])
        for c in coeffs[-2::-1]:
            acc = acc * t2 + c
        return acc

    f.coeffs = coeffs
    return f


_N = 9  # series terms; truncation below 1e-17 for t < 0.3
_SINC = _poly(tuple((-1) ** k / factorial(2 * k + 1) for k in range(_N)))
_COS2 = _poly(tuple((-1) ** k / factorial(2 * k + 2) for k in range(_N)))
_SIN3 = _poly(tuple((-1) ** k / factorial(2 * k + 3) for k in range(_N)))
_COS4 = _poly(tuple((-1) ** k / factorial(2 * k + 4) for k in range(_N)))
_Q3 = _poly(tuple((-1) ** k * (k - 1) / factorial(2 * k + 1) for k in range(2, 2 + _N)))
# 1/t^2 - cot(t/2)/(2t) = -sum_{n>=1} (-1)^n B_2n t^(2n-2) / (2n)!  (B: Bernoulli numbers)
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798)
_INVJ = _poly(tuple(-((-1) ** n) * _BERNOULLI[n - 1] / factorial(2 * n) for n in range(1, 1 + _N)))


#: ``(_N, 3)`` coefficients of t^(2k) of the three Rodrigues series (sinc, (1 - cos t)/t^2,
#: (t - sin t)/t^3), one column each: the SE3 update's series (csrc/lie.c, by Horner in t^2)
_RODRIGUES = np.array([_SINC.coeffs, _COS2.coeffs, _SIN3.coeffs]).T.copy()


def one_minus_cos_over_t2(theta: np.ndarray) -> np.ndarray:
    """``(1 - cos t) / t^2``."""
    t = np.asarray(theta, dtype=float)
    return _where(t < SMALL_ANGLE, _COS2, lambda x: (1 - np.cos(x)) / x**2, t)


def t_minus_sin_over_t3(theta: np.ndarray) -> np.ndarray:
    """``(t - sin t) / t^3``."""
    t = np.asarray(theta, dtype=float)
    return _where(t < SMALL_ANGLE, _SIN3, lambda x: (x - np.sin(x)) / x**3, t)


def cos_series_4(theta: np.ndarray) -> np.ndarray:
    """``(t^2/2 + cos t - 1) / t^4``."""
    t = np.asarray(theta, dtype=float)
    return _where(t < SMALL_ANGLE, _COS4,
                  lambda x: (x**2 / 2 + np.cos(x) - 1) / x**4, t)


def se3_q_coeff3(theta: np.ndarray) -> np.ndarray:
    """``(2t - 3 sin t + t cos t) / (2 t^5)`` (third coefficient of SE3's Q matrix)."""
    t = np.asarray(theta, dtype=float)
    return _where(t < SMALL_ANGLE, _Q3,
                  lambda x: (2 * x - 3 * np.sin(x) + x * np.cos(x)) / (2 * x**5), t)


def inv_jacobian_coeff(theta: np.ndarray) -> np.ndarray:
    """``1/t^2 - cot(t/2) / (2 t)``: the ``hat^2`` coefficient of ``J_l^{-1}`` (finite at pi)."""
    t = np.asarray(theta, dtype=float)
    return _where(t < SMALL_ANGLE, _INVJ,
                  lambda x: 1 / x**2 - np.cos(x / 2) / (2 * x * np.sin(x / 2)), t)
