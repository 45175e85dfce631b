/* SE3 left update T <- Exp(delta) T of many transforms (calib/solver/manifold.py,
 * SE3Manifold.plus; conventions in calib/lie). The GIL is released while it runs. */
#include <math.h>

#include "arrays.h"

/* se3_plus(x, delta, series, small, out): x (M, 4, 4), delta (M, 6) = (rho, phi),
 * series (K, 3) the Taylor coefficients of t^(2k) of sin(t)/t, (1 - cos t)/t^2 and
 * (t - sin t)/t^3, used below the angle `small` (calib/lie/_series.py), out (M, 4, 4):
 * Exp(delta) x with Exp([rho, phi]) = [Exp(phi), J_l(phi) rho]. */
PyObject *se3_plus(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Arr A[5];
    memset(A, 0, sizeof(A));
    double small;
    if (!PyArg_ParseTuple(args, "OOOdO", &o[0], &o[1], &o[2], &small, &o[4]))
        return NULL;
    int ok = get_shaped(o[0], &A[0], 3, 0, 0, -1, 4, 4, "x") &&
             get_shaped(o[1], &A[1], 2, 0, 0, A[0].shape[0], 6, -1, "delta") &&
             get_shaped(o[2], &A[2], 2, 0, 0, -1, 3, -1, "series") &&
             check_rows(&A[2], 1, "series") &&
             get_shaped(o[4], &A[4], 3, 0, 1, A[0].shape[0], 4, 4, "out");
    if (!ok) {
        release(A, 5);
        return NULL;
    }
    const double *x = A[0].view.buf, *delta = A[1].view.buf, *series = A[2].view.buf;
    double *out = A[4].view.buf;
    Py_ssize_t m = A[0].shape[0], nk = A[2].shape[0];
    Py_ssize_t xn = A[0].step[0], xi = A[0].step[1], xj = A[0].step[2];
    Py_ssize_t dn = A[1].step[0], dj = A[1].step[1], sn = A[2].step[0], sj = A[2].step[1];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < m; s++) {
        const double *d = delta + s * dn, *X = x + s * xn;
        double rho[3] = {d[0], d[dj], d[2 * dj]}, w[3] = {d[3 * dj], d[4 * dj], d[5 * dj]};
        double t2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2];
        double t = sqrt(t2), ca, cb, cc;
        if (t < small) { /* Horner in t^2 */
            ca = series[(nk - 1) * sn];
            cb = series[(nk - 1) * sn + sj];
            cc = series[(nk - 1) * sn + 2 * sj];
            for (Py_ssize_t k = nk - 2; k >= 0; k--) {
                ca = ca * t2 + series[k * sn];
                cb = cb * t2 + series[k * sn + sj];
                cc = cc * t2 + series[k * sn + 2 * sj];
            }
        } else {
            double sn_ = sin(t), cs = cos(t);
            ca = sn_ / t;
            cb = (1.0 - cs) / t2;
            cc = (t - sn_) / (t2 * t);
        }
        double K[9] = {0.0, -w[2], w[1], w[2], 0.0, -w[0], -w[1], w[0], 0.0}, K2[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                K2[3 * i + j] = K[3 * i] * K[j] + K[3 * i + 1] * K[3 + j] +
                                K[3 * i + 2] * K[6 + j];
        double rot[9], jl[9];
        for (int e = 0; e < 9; e++) {
            double eye = (e % 4 == 0) ? 1.0 : 0.0;
            rot[e] = eye + ca * K[e] + cb * K2[e];
            jl[e] = eye + cb * K[e] + cc * K2[e];
        }
        double O[16]; /* formed whole before it is written: out may be x itself */
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 4; j++)
                O[4 * i + j] = rot[3 * i] * X[j * xj] + rot[3 * i + 1] * X[xi + j * xj] +
                               rot[3 * i + 2] * X[2 * xi + j * xj];
            O[4 * i + 3] += jl[3 * i] * rho[0] + jl[3 * i + 1] * rho[1] + jl[3 * i + 2] * rho[2];
        }
        O[12] = 0.0;
        O[13] = 0.0;
        O[14] = 0.0;
        O[15] = 1.0;
        memcpy(out + s * 16, O, sizeof(O));
    }
    Py_END_ALLOW_THREADS
    release(A, 5);
    Py_RETURN_NONE;
}
