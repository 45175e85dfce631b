/* The BAL reprojection residual and its Jacobians, one observation at a time (the model and
 * its derivation: calib/residuals/bal_projection.py). The GIL is released while it runs. */
#include "arrays.h"

/* bal_project(T, K, X, ci, ki, pi, observed, res, J):
 * T (C, 4, 4) T_cam_world, K (C', 3) (f, k1, k2), X (P, 3) points, ci, ki, pi (N,) the
 * pose, intrinsics and point of each observation, observed (N, 2); writes res (N, 2) and,
 * unless J is None, J (N, 2, 12): d/d(left SE3 perturbation) | d/d(f, k1, k2) | d/dX. */
PyObject *bal_project(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Arr A[9];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8]))
        return NULL;
    int ok = get_shaped(o[0], &A[0], 3, 0, 0, -1, 4, 4, "T") &&
             get_shaped(o[1], &A[1], 2, 0, 0, -1, 3, -1, "K") &&
             get_shaped(o[2], &A[2], 2, 0, 0, -1, 3, -1, "X") &&
             get_shaped(o[6], &A[6], 2, 0, 0, -1, 2, -1, "observed");
    Py_ssize_t n = ok ? A[6].shape[0] : 0;
    ok = ok && get_shaped(o[3], &A[3], 1, 1, 0, n, -1, -1, "ci") &&
         check_index(&A[3], A[0].shape[0], "ci") &&
         get_shaped(o[4], &A[4], 1, 1, 0, n, -1, -1, "ki") &&
         check_index(&A[4], A[1].shape[0], "ki") &&
         get_shaped(o[5], &A[5], 1, 1, 0, n, -1, -1, "pi") &&
         check_index(&A[5], A[2].shape[0], "pi") &&
         get_shaped(o[7], &A[7], 2, 0, 1, n, 2, -1, "res") &&
         get_optional_out(o[8], &A[8], n, 2, 12, "J");
    if (!ok) {
        release(A, 9);
        return NULL;
    }
    const double *T = A[0].view.buf, *K = A[1].view.buf, *X = A[2].view.buf;
    const double *obs = A[6].view.buf;
    const int64_t *ci = A[3].idx, *ki = A[4].idx, *pi = A[5].idx;
    double *res = A[7].view.buf, *J = A[8].ok ? A[8].view.buf : NULL;
    Py_ssize_t tn = A[0].step[0], ti = A[0].step[1], tj = A[0].step[2];
    Py_ssize_t kn = A[1].step[0], kj = A[1].step[1], xn = A[2].step[0], xj = A[2].step[1];
    Py_ssize_t on = A[6].step[0], oj = A[6].step[1];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *Tc = T + ci[i] * tn, *Kc = K + ki[i] * kn;
        const double *Xp = X + pi[i] * xn;
        double R[9];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                R[3 * a + b] = Tc[a * ti + b * tj];
        double X0 = Xp[0], X1 = Xp[xj], X2 = Xp[2 * xj];
        double x = R[0] * X0 + R[1] * X1 + R[2] * X2 + Tc[3 * tj];
        double y = R[3] * X0 + R[4] * X1 + R[5] * X2 + Tc[ti + 3 * tj];
        double z = R[6] * X0 + R[7] * X1 + R[8] * X2 + Tc[2 * ti + 3 * tj];
        double f = Kc[0], k1 = Kc[kj], k2 = Kc[2 * kj];
        double inv_z = 1.0 / z;
        double px = -x * inv_z, py = -y * inv_z;
        double r2 = px * px + py * py;
        double dist = 1.0 + r2 * (k1 + k2 * r2);
        double fd = f * dist;
        res[2 * i] = fd * px - obs[i * on];
        res[2 * i + 1] = fd * py - obs[i * on + oj];
        if (J == NULL)
            continue;
        /* du/dp = f dist I + g p p^T, g = f (2 k1 + 4 k2 r2);
         * dp/dP = -inv_z [[1, 0, px], [0, 1, py]]; dP/d(rho, phi) = [I, -hat(P)] */
        double g = f * (2.0 * k1 + 4.0 * k2 * r2);
        double gxy = g * px * py;
        double d0s[2] = {fd + g * px * px, gxy}, d1s[2] = {gxy, fd + g * py * py};
        double prs[2] = {px, py};
        for (int row = 0; row < 2; row++) {
            double d0 = d0s[row], d1 = d1s[row], pr = prs[row];
            double a = -d0 * inv_z, b = -d1 * inv_z, c = -(d0 * px + d1 * py) * inv_z;
            double *Jr = J + (2 * i + row) * 12;
            Jr[0] = a;
            Jr[1] = b;
            Jr[2] = c;
            Jr[3] = c * y - b * z;
            Jr[4] = a * z - c * x;
            Jr[5] = b * x - a * y;
            Jr[6] = dist * pr;
            double fr = f * r2 * pr;
            Jr[7] = fr;
            Jr[8] = fr * r2;
            for (int col = 0; col < 3; col++)
                Jr[9 + col] = a * R[col] + b * R[3 + col] + c * R[6 + col];
        }
    }
    Py_END_ALLOW_THREADS
    release(A, 9);
    Py_RETURN_NONE;
}
