"""Moré, Garbow & Hillstrom (1981) test problems: residual functions and standard starts.

Written from the paper's definitions (ACM TOMS 7(1), 17-41). Each entry is
``name -> (f(x) -> (m,), x0)``; functions accept complex ``x`` so that tests can take
complex-step derivatives (exact to machine precision).
"""

from __future__ import annotations

import numpy as np


def rosenbrock(x):
    return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])


def freudenstein_roth(x):
    return np.array([-13 + x[0] + ((5 - x[1]) * x[1] - 2) * x[1],
                     -29 + x[0] + ((x[1] + 1) * x[1] - 14) * x[1]])


def powell_badly_scaled(x):
    return np.array([1e4 * x[0] * x[1] - 1, np.exp(-x[0]) + np.exp(-x[1]) - 1.0001])


def brown_badly_scaled(x):
    return np.array([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2])


def beale(x):
    y = np.array([1.5, 2.25, 2.625])
    i = np.arange(1, 4)
    return y - x[0] * (1 - x[1] ** i)


def jennrich_sampson(x):
    i = np.arange(1, 11)
    return 2 + 2 * i - (np.exp(i * x[0]) + np.exp(i * x[1]))


def helical_valley(x):
    theta = np.arctan2(x[1], x[0]) / (2 * np.pi) if np.isrealobj(x) else None
    if theta is None:  # complex step: arctan2 is not complex-analytic in numpy; use atan form
        theta = np.arctan(x[1] / x[0]) / (2 * np.pi) + (0.5 if x[0].real < 0 else 0.0)
    r = np.sqrt(x[0] ** 2 + x[1] ** 2)
    return np.array([10 * (x[2] - 10 * theta), 10 * (r - 1), x[2]])


_BARD_Y = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96,
                    1.34, 2.10, 4.39])


def bard(x):
    u = np.arange(1, 16)
    v = 16 - u
    w = np.minimum(u, v)
    return _BARD_Y - (x[0] + u / (x[1] * v + x[2] * w))


_GAUSS_Y = np.array([0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521,
                     0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009])


def gaussian(x):
    t = (8 - np.arange(1, 16)) / 2
    return x[0] * np.exp(-x[1] * (t - x[2]) ** 2 / 2) - _GAUSS_Y


def box_3d(x, m=10):
    t = 0.1 * np.arange(1, m + 1)
    return (np.exp(-t * x[0]) - np.exp(-t * x[1])
            - x[2] * (np.exp(-t) - np.exp(-10 * t)))


def powell_singular(x):
    return np.array([x[0] + 10 * x[1], np.sqrt(5) * (x[2] - x[3]), (x[1] - 2 * x[2]) ** 2,
                     np.sqrt(10) * (x[0] - x[3]) ** 2])


def wood(x):
    return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0], np.sqrt(90) * (x[3] - x[2] ** 2),
                     1 - x[2], np.sqrt(10) * (x[1] + x[3] - 2), (x[1] - x[3]) / np.sqrt(10)])


_KO_Y = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323,
                  0.0235, 0.0246])
_KO_U = np.array([4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])


def kowalik_osborne(x):
    u = _KO_U
    return _KO_Y - x[0] * (u ** 2 + u * x[1]) / (u ** 2 + u * x[2] + x[3])


def brown_dennis(x, m=20):
    t = np.arange(1, m + 1) / 5
    return (x[0] + t * x[1] - np.exp(t)) ** 2 + (x[2] + x[3] * np.sin(t) - np.cos(t)) ** 2


_OS1_Y = np.array([0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751,
                   0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490,
                   0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406])


def osborne_1(x):
    t = 10 * np.arange(33)
    return _OS1_Y - (x[0] + x[1] * np.exp(-t * x[3]) + x[2] * np.exp(-t * x[4]))


def biggs_exp6(x, m=13):
    t = 0.1 * np.arange(1, m + 1)
    y = np.exp(-t) - 5 * np.exp(-10 * t) + 3 * np.exp(-4 * t)
    return (x[2] * np.exp(-t * x[0]) - x[3] * np.exp(-t * x[1]) + x[5] * np.exp(-t * x[4])) - y


def watson(x, n=6):
    t = np.arange(1, 30) / 29
    j = np.arange(1, n)
    s1 = (j * x[1:] * t[:, None] ** (j - 1)).sum(axis=1)
    s2 = (x * t[:, None] ** np.arange(n)).sum(axis=1)
    f = s1 - s2 ** 2 - 1
    return np.concatenate([f, [x[0], x[1] - x[0] ** 2 - 1]])


PROBLEMS = {
    "rosenbrock": (rosenbrock, [-1.2, 1.0]),
    "freudenstein_roth": (freudenstein_roth, [0.5, -2.0]),
    "powell_badly_scaled": (powell_badly_scaled, [0.0, 1.0]),
    "brown_badly_scaled": (brown_badly_scaled, [1.0, 1.0]),
    "beale": (beale, [1.0, 1.0]),
    "jennrich_sampson": (jennrich_sampson, [0.3, 0.4]),
    "helical_valley": (helical_valley, [-1.0, 0.0, 0.0]),
    "bard": (bard, [1.0, 1.0, 1.0]),
    "gaussian": (gaussian, [0.4, 1.0, 0.0]),
    "box_3d": (box_3d, [0.0, 10.0, 20.0]),
    "powell_singular": (powell_singular, [3.0, -1.0, 0.0, 1.0]),
    "wood": (wood, [-3.0, -1.0, -3.0, -1.0]),
    "kowalik_osborne": (kowalik_osborne, [0.25, 0.39, 0.415, 0.39]),
    "brown_dennis": (brown_dennis, [25.0, 5.0, -5.0, -1.0]),
    "osborne_1": (osborne_1, [0.5, 1.5, -1.0, 0.01, 0.02]),
    "biggs_exp6": (biggs_exp6, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0]),
    "watson": (watson, [0.0] * 6),
}


def complex_step_jacobian(f, x, h=1e-30):
    """``df/dx`` by the complex step: ``Im f(x + i h e_k) / h`` (no cancellation)."""
    x = np.asarray(x, dtype=float)
    cols = []
    for k in range(x.size):
        xc = x.astype(complex)
        xc[k] += 1j * h
        cols.append(np.imag(f(xc)) / h)
    return np.stack(cols, axis=1)
