/* Point-to-plane residuals r = n . (T p - q) and their Jacobians [n^T, (T p x n)^T] with
 * respect to a left perturbation of T (calib/residuals/point_to_plane.py). The GIL is
 * released while it runs. */
#include "arrays.h"

/* point_to_plane(T, p, q, n, res, J): T (4, 4), p, q, n (N, 3); writes res (N, 1) and,
 * unless J is None, J (N, 1, 6). */
PyObject *point_to_plane(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Arr A[6];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5]))
        return NULL;
    int ok = get_shaped(o[0], &A[0], 2, 0, 0, 4, 4, -1, "T") &&
             get_shaped(o[1], &A[1], 2, 0, 0, -1, 3, -1, "p");
    Py_ssize_t n = ok ? A[1].shape[0] : 0;
    ok = ok && get_shaped(o[2], &A[2], 2, 0, 0, n, 3, -1, "q") &&
         get_shaped(o[3], &A[3], 2, 0, 0, n, 3, -1, "n") &&
         get_shaped(o[4], &A[4], 2, 0, 1, n, 1, -1, "res") &&
         get_optional_out(o[5], &A[5], n, 1, 6, "J");
    if (!ok) {
        release(A, 6);
        return NULL;
    }
    const double *Tm = A[0].view.buf, *p = A[1].view.buf, *q = A[2].view.buf;
    const double *nm = A[3].view.buf;
    double *res = A[4].view.buf, *J = A[5].ok ? A[5].view.buf : NULL;
    Py_ssize_t ti = A[0].step[0], tj = A[0].step[1];
    Py_ssize_t pn = A[1].step[0], pj = A[1].step[1], qn = A[2].step[0], qj = A[2].step[1];
    Py_ssize_t nn = A[3].step[0], nj = A[3].step[1];
    double R[9], t[3];
    for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 3; b++)
            R[3 * a + b] = Tm[a * ti + b * tj];
        t[a] = Tm[a * ti + 3 * tj];
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *pi = p + i * pn, *qi = q + i * qn, *ni = nm + i * nn;
        double p0 = pi[0], p1 = pi[pj], p2 = pi[2 * pj];
        double x = R[0] * p0 + R[1] * p1 + R[2] * p2 + t[0];
        double y = R[3] * p0 + R[4] * p1 + R[5] * p2 + t[1];
        double z = R[6] * p0 + R[7] * p1 + R[8] * p2 + t[2];
        double n0 = ni[0], n1 = ni[nj], n2 = ni[2 * nj];
        res[i] = (x - qi[0]) * n0 + (y - qi[qj]) * n1 + (z - qi[2 * qj]) * n2;
        if (J == NULL)
            continue;
        double *Ji = J + 6 * i;
        Ji[0] = n0;
        Ji[1] = n1;
        Ji[2] = n2;
        Ji[3] = y * n2 - z * n1;
        Ji[4] = z * n0 - x * n2;
        Ji[5] = x * n1 - y * n0;
    }
    Py_END_ALLOW_THREADS
    release(A, 6);
    Py_RETURN_NONE;
}
