/* SO3 / SE3 of many elements at once: the SE3 left update T <- Exp(delta) T
 * (calib/solver/manifold.py, SE3Manifold.plus), Exp of rotation vectors and the quaternion
 * and Log of rotation matrices (calib/lie/so3.py). Conventions in calib/lie. The GIL is
 * released while they run. */
#include <math.h>

#include "arrays.h"

/* Exp(w) and J_l(w) (row-major 3x3) of one rotation vector w: the Rodrigues coefficients
 * sin(t)/t, (1 - cos t)/t^2, (t - sin t)/t^3 from their series (K rows, strides sn, sj)
 * below the angle `small`, else closed. jl may be NULL. */
static void rodrigues(const double w[3], const double *series, Py_ssize_t nk, Py_ssize_t sn,
                      Py_ssize_t sj, double small, double rot[9], double *jl)
{
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
            K2[3 * i + j] = K[3 * i] * K[j] + K[3 * i + 1] * K[3 + j] + K[3 * i + 2] * K[6 + j];
    for (int e = 0; e < 9; e++) {
        double eye = (e % 4 == 0) ? 1.0 : 0.0;
        rot[e] = eye + ca * K[e] + cb * K2[e];
        if (jl)
            jl[e] = eye + cb * K[e] + cc * K2[e];
    }
}

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
        double rot[9], jl[9];
        rodrigues(w, series, nk, sn, sj, small, rot, jl);
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

/* so3_exp(phi, series, small, out): phi (M, 3) strided, out (M, 3, 3) = Exp(phi); series
 * and small as se3_plus. */
PyObject *so3_exp(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Arr A[4];
    memset(A, 0, sizeof(A));
    double small;
    if (!PyArg_ParseTuple(args, "OOdO", &o[0], &o[1], &small, &o[3]))
        return NULL;
    int ok = get_shaped(o[0], &A[0], 2, 0, 0, -1, 3, -1, "phi") &&
             get_shaped(o[1], &A[1], 2, 0, 0, -1, 3, -1, "series") &&
             check_rows(&A[1], 1, "series") &&
             get_shaped(o[3], &A[3], 3, 0, 1, A[0].shape[0], 3, 3, "out");
    if (!ok) {
        release(A, 4);
        return NULL;
    }
    const double *phi = A[0].view.buf, *series = A[1].view.buf;
    double *out = A[3].view.buf;
    Py_ssize_t m = A[0].shape[0], pn = A[0].step[0], pj = A[0].step[1];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < m; s++) {
        const double w[3] = {phi[s * pn], phi[s * pn + pj], phi[s * pn + 2 * pj]};
        rodrigues(w, series, A[1].shape[0], A[1].step[0], A[1].step[1], small, out + 9 * s,
                  NULL);
    }
    Py_END_ALLOW_THREADS
    release(A, 4);
    Py_RETURN_NONE;
}

/* Unit quaternion (x, y, z, w), w >= 0, of a rotation matrix r (strides ri, rj) by
 * Shepperd's method: the candidate built on the largest of r00, r11, r22 and tr r. */
static void quat_from_matrix(const double *r, Py_ssize_t ri, Py_ssize_t rj, double q[4])
{
#define R(i, j) r[(i) * ri + (j) * rj]
    double tr = R(0, 0) + R(1, 1) + R(2, 2);
    double d[4] = {R(0, 0), R(1, 1), R(2, 2), tr};
    int c = 0;
    for (int k = 1; k < 4; k++)
        if (d[k] > d[c])
            c = k;
    if (c == 3) {
        q[0] = R(2, 1) - R(1, 2);
        q[1] = R(0, 2) - R(2, 0);
        q[2] = R(1, 0) - R(0, 1);
        q[3] = 1.0 + tr;
    } else {
        int a = c, b = (c + 1) % 3, e = (c + 2) % 3;
        double v = 1.0 + 2.0 * R(a, a) - tr;
        q[a] = v > 0.0 ? v : 0.0;
        q[b] = R(b, a) + R(a, b);
        q[e] = R(e, a) + R(a, e);
        q[3] = R(e, b) - R(b, e);
    }
#undef R
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double sgn = q[3] < 0.0 ? -1.0 : 1.0;
    for (int k = 0; k < 4; k++)
        q[k] = sgn * q[k] / n;
}

/* (max |r^T r - I|, det r) of one matrix: how far from a rotation it is (NaN stays NaN). */
static void deviation(const double *r, Py_ssize_t ri, Py_ssize_t rj, double out[2])
{
#define R(i, j) r[(i) * ri + (j) * rj]
    double dev = 0.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double g = R(0, i) * R(0, j) + R(1, i) * R(1, j) + R(2, i) * R(2, j);
            double e = fabs(g - (i == j ? 1.0 : 0.0));
            dev = (e > dev || isnan(e)) ? e : dev;
        }
    out[0] = dev;
    out[1] = R(0, 0) * (R(1, 1) * R(2, 2) - R(1, 2) * R(2, 1)) -
             R(0, 1) * (R(1, 0) * R(2, 2) - R(1, 2) * R(2, 0)) +
             R(0, 2) * (R(1, 0) * R(2, 1) - R(1, 1) * R(2, 0));
#undef R
}

enum { QUAT, LOG, DEVIATION };

/* so3_quat(r, out) / so3_log(r, out) / so3_deviation(r, out): r (M, 3, 3) strided
 * matrices; out (M, 4) their quaternions (x, y, z, w), w >= 0, or (M, 3) their rotation
 * vectors Log(r), norm in [0, pi]: 2 atan2(|v|, w) v / |v| with q = (v, w), by its series
 * 2 / w (1 - |v|^2 / (3 w^2)) below |v| = 1e-8, or (M, 2) their (max |r^T r - I|, det r)
 * (calib/lie/so3.py, check_rotation). */
static PyObject *per_matrix(PyObject *args, int kind)
{
    static const Py_ssize_t width[3] = {4, 3, 2};
    PyObject *o[2];
    Arr A[2];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OO", &o[0], &o[1]))
        return NULL;
    int ok = get_shaped(o[0], &A[0], 3, 0, 0, -1, 3, 3, "r") &&
             get_shaped(o[1], &A[1], 2, 0, 1, A[0].shape[0], width[kind], -1, "out");
    if (!ok) {
        release(A, 2);
        return NULL;
    }
    const double *r = A[0].view.buf;
    double *out = A[1].view.buf;
    Py_ssize_t m = A[0].shape[0], rn = A[0].step[0], ri = A[0].step[1], rj = A[0].step[2];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < m; s++) {
        if (kind == DEVIATION) {
            deviation(r + s * rn, ri, rj, out + 2 * s);
            continue;
        }
        double q[4];
        quat_from_matrix(r + s * rn, ri, rj, q);
        if (kind == QUAT) {
            memcpy(out + 4 * s, q, sizeof(q));
            continue;
        }
        double n2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2], n = sqrt(n2), w = q[3];
        double scale = n < 1e-8 ? 2.0 / w * (1.0 - n2 / (3.0 * w * w)) : 2.0 * atan2(n, w) / n;
        for (int k = 0; k < 3; k++)
            out[3 * s + k] = scale * q[k];
    }
    Py_END_ALLOW_THREADS
    release(A, 2);
    Py_RETURN_NONE;
}

PyObject *so3_quat(PyObject *self, PyObject *args) { return per_matrix(args, QUAT); }

PyObject *so3_log(PyObject *self, PyObject *args) { return per_matrix(args, LOG); }

PyObject *so3_deviation(PyObject *self, PyObject *args) { return per_matrix(args, DEVIATION); }
