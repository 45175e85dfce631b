/* Batched small-block kernels of calib's solver: the sums and products that numpy can
 * only do one tiny matrix at a time (a BLAS call, or an einsum pass, per 2x9 or 3x3
 * block). Wrapped and documented by calib/solver/blocks.py. Inputs are float64 (int64 for
 * indices) arrays of any strides; outputs are C-contiguous (arrays.h). The GIL is
 * released while a kernel runs.
 */
#include <math.h>
#include <stdlib.h>

#include "arrays.h"

/* segment_gram(ja, jb, order, bounds, out):
 * out[u] = sum over t in [bounds[u], bounds[u+1]) of ja[i]^T jb[i], i = order[t] (or t when
 * order is None); ja (n, m, a), jb (n, m, b) strided, out (U, a, b). */
PyObject *segment_gram(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Arr A[5];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    int ok = get_arr(o[0], &A[0], 3, 0, 0, "ja") &&
             get_shaped(o[1], &A[1], 3, 0, 0, A[0].shape[0], A[0].shape[1], -1, "jb") &&
             get_order(o[2], &A[2], A[0].shape[0]) &&
             get_arr(o[3], &A[3], 1, 1, 0, "bounds") &&
             check_bounds(&A[3], A[0].shape[0], "bounds") &&
             get_shaped(o[4], &A[4], 3, 0, 1, A[3].shape[0] - 1, A[0].shape[2], A[1].shape[2],
                        "out");
    if (!ok) {
        release(A, 5);
        return NULL;
    }
    const double *ja = A[0].view.buf, *jb = A[1].view.buf;
    const int64_t *order = A[2].ok ? A[2].idx : NULL, *bounds = A[3].idx;
    double *out = A[4].view.buf;
    Py_ssize_t nu = A[3].shape[0] - 1, m = A[0].shape[1], a = A[0].shape[2], b = A[1].shape[2];
    Py_ssize_t an = A[0].step[0], ak = A[0].step[1], ap = A[0].step[2];
    Py_ssize_t bn = A[1].step[0], bk = A[1].step[1], bq = A[1].step[2];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t u = 0; u < nu; u++) {
        double *acc = out + u * a * b;
        memset(acc, 0, (size_t)(a * b) * sizeof(double));
        for (int64_t t = bounds[u]; t < bounds[u + 1]; t++) {
            int64_t i = order ? order[t] : t;
            for (Py_ssize_t k = 0; k < m; k++) {
                const double *ya = ja + i * an + k * ak, *yb = jb + i * bn + k * bk;
                if (b == 1) { /* J^T r: one column, kept in the inner loop's reach */
                    double x = yb[0];
                    for (Py_ssize_t p = 0; p < a; p++)
                        acc[p] += x * ya[p * ap];
                    continue;
                }
                for (Py_ssize_t p = 0; p < a; p++) {
                    double x = ya[p * ap];
                    double *row = acc + p * b;
                    for (Py_ssize_t q = 0; q < b; q++)
                        row[q] += x * yb[q * bq];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(A, 5);
    Py_RETURN_NONE;
}

/* out[q] = sum over t in [bounds[q], bounds[q+1]) of vt[ta[t]]^T vt[tb[t]], each vt block
 * (d, r) (sizes fixed at compile time for BAL's 9 x 3 measured no faster). */
static void pair_sums(const double *vt, const int64_t *ta, const int64_t *tb,
                      const int64_t *bounds, Py_ssize_t nq, Py_ssize_t r, Py_ssize_t d,
                      double *out)
{
    for (Py_ssize_t q = 0; q < nq; q++) {
        double *acc = out + q * r * r;
        memset(acc, 0, sizeof(double) * (size_t)(r * r));
        for (int64_t t = bounds[q]; t < bounds[q + 1]; t++) {
            const double *va = vt + ta[t] * d * r, *vb = vt + tb[t] * d * r;
            for (Py_ssize_t i = 0; i < d; i++)
                for (Py_ssize_t p = 0; p < r; p++) {
                    double x = va[i * r + p];
                    for (Py_ssize_t c = 0; c < r; c++)
                        acc[p * r + c] += x * vb[i * r + c];
                }
        }
    }
}

/* pair_products(w_sub, l_inv, sub_pos, ta, tb, bounds, vt, out):
 * vt[s] = l_inv[sub_pos[s]] w_sub[s]^T (d x r) for every sub-block s, then
 * out[q] = sum over t in [bounds[q], bounds[q+1]) of vt[ta[t]]^T vt[tb[t]] (r x r).
 * w_sub (k, r, d) strided, l_inv (p, d, d) strided and lower triangular, sub_pos (k,),
 * ta, tb (T,), bounds (Q+1,), vt (k, d, r) scratch, out (Q, r, r). */
PyObject *pair_products(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    Arr A[8];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7]))
        return NULL;
    int ok = get_arr(o[0], &A[0], 3, 0, 0, "w_sub");
    Py_ssize_t k = ok ? A[0].shape[0] : 0, r = ok ? A[0].shape[1] : 0, d = ok ? A[0].shape[2] : 0;
    ok = ok && get_shaped(o[1], &A[1], 3, 0, 0, -1, d, d, "l_inv") &&
         get_shaped(o[2], &A[2], 1, 1, 0, k, -1, -1, "sub_pos") &&
         check_index(&A[2], A[1].shape[0], "sub_pos") &&
         get_arr(o[3], &A[3], 1, 1, 0, "ta") && check_index(&A[3], k, "ta") &&
         get_shaped(o[4], &A[4], 1, 1, 0, A[3].shape[0], -1, -1, "tb") &&
         check_index(&A[4], k, "tb") && get_arr(o[5], &A[5], 1, 1, 0, "bounds") &&
         check_bounds(&A[5], A[3].shape[0], "bounds") &&
         get_shaped(o[6], &A[6], 3, 0, 1, k, d, r, "vt") &&
         get_shaped(o[7], &A[7], 3, 0, 1, A[5].shape[0] - 1, r, r, "out");
    if (!ok) {
        release(A, 8);
        return NULL;
    }
    const double *w = A[0].view.buf, *linv = A[1].view.buf;
    const int64_t *pos = A[2].idx, *ta = A[3].idx, *tb = A[4].idx, *bounds = A[5].idx;
    double *vt = A[6].view.buf, *out = A[7].view.buf;
    Py_ssize_t nq = A[5].shape[0] - 1;
    Py_ssize_t wn = A[0].step[0], wr = A[0].step[1], wd = A[0].step[2];
    Py_ssize_t ln = A[1].step[0], li = A[1].step[1], lj = A[1].step[2];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < k; s++) {
        const double *L = linv + pos[s] * ln, *W = w + s * wn;
        double *V = vt + s * d * r;
        for (Py_ssize_t i = 0; i < d; i++) {
            for (Py_ssize_t jj = 0; jj < r; jj++) {
                double acc = 0.0;
                for (Py_ssize_t l = 0; l <= i; l++)
                    acc += L[i * li + l * lj] * W[jj * wr + l * wd];
                V[i * r + jj] = acc;
            }
        }
    }
    pair_sums(vt, ta, tb, bounds, nq, r, d, out);
    Py_END_ALLOW_THREADS
    release(A, 8);
    Py_RETURN_NONE;
}

/* inverse_cholesky(blocks, linv, inv) -> -1, or the first block that is not positive
 * definite (or whose inverse is not finite): blocks = L L^T (p, d, d) strided;
 * linv = L^-1 (zero above the diagonal), inv = L^-T L^-1 = blocks^-1, both (p, d, d). */
PyObject *inverse_cholesky(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Arr A[3];
    memset(A, 0, sizeof(A));
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2]))
        return NULL;
    int ok = get_arr(o[0], &A[0], 3, 0, 0, "blocks") &&
             check_shape3(&A[0], -1, -1, A[0].shape[1], "blocks") &&
             get_shaped(o[1], &A[1], 3, 0, 1, A[0].shape[0], A[0].shape[1], A[0].shape[2],
                        "linv") &&
             get_shaped(o[2], &A[2], 3, 0, 1, A[0].shape[0], A[0].shape[1], A[0].shape[2],
                        "inv");
    if (!ok) {
        release(A, 3);
        return NULL;
    }
    Py_ssize_t np_ = A[0].shape[0], d = A[0].shape[1];
    Py_ssize_t bn = A[0].step[0], bi = A[0].step[1], bj = A[0].step[2];
    if (np_ == 0) {
        release(A, 3);
        return PyLong_FromLong(-1);
    }
    double *low = malloc((size_t)(d * d > 0 ? d * d : 1) * sizeof(double));
    if (low == NULL) {
        release(A, 3);
        return PyErr_NoMemory();
    }
    const double *blocks = A[0].view.buf;
    double *linv = A[1].view.buf, *inv = A[2].view.buf;
    Py_ssize_t bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < np_ && bad < 0; s++) {
        const double *C = blocks + s * bn;
        double *Li = linv + s * d * d, *X = inv + s * d * d;
        memset(low, 0, (size_t)(d * d) * sizeof(double));
        for (Py_ssize_t j = 0; j < d && bad < 0; j++) {
            double piv = C[j * bi + j * bj];
            for (Py_ssize_t l = 0; l < j; l++)
                piv -= low[j * d + l] * low[j * d + l];
            if (!(piv > 0.0) || !isfinite(piv)) {
                bad = s;
                break;
            }
            double ljj = sqrt(piv);
            low[j * d + j] = ljj;
            for (Py_ssize_t i = j + 1; i < d; i++) {
                double v = C[i * bi + j * bj];
                for (Py_ssize_t l = 0; l < j; l++)
                    v -= low[i * d + l] * low[j * d + l];
                low[i * d + j] = v / ljj;
            }
        }
        if (bad >= 0)
            break;
        /* row i of L^-1: (e_i - L[i, :i] L^-1[:i]) / L[i, i] */
        memset(Li, 0, (size_t)(d * d) * sizeof(double));
        for (Py_ssize_t i = 0; i < d; i++) {
            for (Py_ssize_t c = 0; c <= i; c++) {
                double v = (c == i) ? 1.0 : 0.0;
                for (Py_ssize_t l = c; l < i; l++)
                    v -= low[i * d + l] * Li[l * d + c];
                Li[i * d + c] = v / low[i * d + i];
            }
        }
        /* inv = L^-T L^-1: inv[a][b] = sum over l >= max(a, b) of Li[l][a] Li[l][b] */
        for (Py_ssize_t a = 0; a < d; a++) {
            for (Py_ssize_t b = a; b < d; b++) {
                double v = 0.0;
                for (Py_ssize_t l = b; l < d; l++)
                    v += Li[l * d + a] * Li[l * d + b];
                X[a * d + b] = v;
                X[b * d + a] = v;
            }
        }
        for (Py_ssize_t e = 0; e < d * d; e++) {
            if (!isfinite(X[e])) {
                bad = s;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    free(low);
    release(A, 3);
    return PyLong_FromSsize_t(bad);
}


/* The entries of row i of the K Jacobians J (n, m, d_k) that have a column in ci (>= 0),
 * gathered column by column into val[p * m + e] with their columns in act; returns how
 * many. */
static Py_ssize_t gather_row(const Arr *J, Py_ssize_t nk, Py_ssize_t i, const int64_t *ci,
                             Py_ssize_t m, double *val, int64_t *act)
{
    Py_ssize_t na = 0, off = 0;
    for (Py_ssize_t k = 0; k < nk; k++) {
        const double *base = (const double *)J[k].view.buf + i * J[k].step[0];
        for (Py_ssize_t p = 0; p < J[k].shape[2]; p++, off++) {
            if (ci[off] < 0)
                continue;
            act[na] = ci[off];
            for (Py_ssize_t e = 0; e < m; e++)
                val[na * m + e] = base[e * J[k].step[1] + p * J[k].step[2]];
            na++;
        }
    }
    return na;
}

/* a[act_p, act_q] += sum_e v_p[e] v_q[e] (each product formed once and mirrored) and
 * g[act_p] += sum_e v_p[e] r[e] for one gathered row (gather_row); a is big x big. */
static inline void row_gram(const double *val, const int64_t *act, Py_ssize_t na,
                            Py_ssize_t m, const double *r, Py_ssize_t rk, double *a, double *g,
                            Py_ssize_t big)
{
    for (Py_ssize_t p = 0; p < na; p++) {
        const double *vp = val + p * m;
        double gp = 0.0;
        for (Py_ssize_t e = 0; e < m; e++)
            gp += vp[e] * r[e * rk];
        g[act[p]] += gp;
        double *row = a + act[p] * big;
        for (Py_ssize_t q = p; q < na; q++) {
            const double *vq = val + q * m;
            double s = 0.0;
            for (Py_ssize_t e = 0; e < m; e++)
                s += vp[e] * vq[e];
            row[act[q]] += s;
            if (q != p)
                a[act[q] * big + act[p]] += s;
        }
    }
}

/* dense_gram(jacobians, cols, r, a, g): the tiny path's normal equations, accumulated in
 * place: for every row i, with v = the row's Jacobian entries (the K arrays of
 * `jacobians` side by side, (n, m, d_k) strided) and c = cols[i] (n, W), W = sum d_k,
 * an entry < 0 skipped: a[c_p, c_q] += sum_k v[k, p] v[k, q], g[c_p] += sum_k v[k, p] r[i, k].
 * r (n, m) strided, a (N, N), g (N,). Returns None. */
PyObject *dense_gram(PyObject *self, PyObject *args)
{
    PyObject *jobj, *o[4];
    if (!PyArg_ParseTuple(args, "OOOOO", &jobj, &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    PyObject *seq = PySequence_Fast(jobj, "calib._kernels: jacobians must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t nk = PySequence_Fast_GET_SIZE(seq);
    Arr *A = calloc((size_t)(4 + nk), sizeof(Arr)); /* cols, r, a, g, then the Jacobians */
    if (A == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    double *val = NULL;
    int64_t *act = NULL;
    int ok = 1;
    if (nk < 1) {
        PyErr_SetString(PyExc_ValueError, "calib._kernels: dense_gram needs a Jacobian");
        ok = 0;
    }
    ok = ok && get_arr(o[0], &A[0], 2, 1, 0, "cols");
    Py_ssize_t n = ok ? A[0].shape[0] : 0, w = ok ? A[0].shape[1] : 0;
    ok = ok && get_shaped(o[1], &A[1], 2, 0, 0, n, -1, -1, "r (a row per row of cols)") &&
         get_arr(o[2], &A[2], 2, 0, 1, "a") &&
         check_shape(&A[2], 1, A[2].shape[0], "a") &&
         get_shaped(o[3], &A[3], 1, 0, 1, A[2].shape[0], -1, -1, "g");
    Py_ssize_t m = ok ? A[1].shape[1] : 0, big = ok ? A[2].shape[0] : 0, width = 0;
    for (Py_ssize_t k = 0; ok && k < nk; k++) {
        ok = get_shaped(PySequence_Fast_GET_ITEM(seq, k), &A[4 + k], 3, 0, 0, n, m, -1,
                        "jacobian (shaped as r, then its columns)");
        if (ok && A[4 + k].shape[2] > PY_SSIZE_T_MAX - width) {
            PyErr_SetString(PyExc_ValueError, "calib._kernels: the Jacobians are too wide");
            ok = 0;
        }
        width += ok ? A[4 + k].shape[2] : 0;
    }
    if (ok && w > 0 && m > PY_SSIZE_T_MAX / 8 / w) { /* the scratch row val (w x m) */
        PyErr_SetString(PyExc_MemoryError, "calib._kernels: dense_gram rows are too wide");
        ok = 0;
    }
    if (ok && width != w) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: cols has %zd columns, the Jacobians %zd",
                     w, width);
        ok = 0;
    }
    const int64_t *cols = ok ? A[0].idx : NULL;
    for (Py_ssize_t i = 0; ok && i < n * w; i++) {
        if (cols[i] < -1 || cols[i] >= big) {
            PyErr_Format(PyExc_IndexError, "calib._kernels: cols entry %lld outside [-1, %zd)",
                         (long long)cols[i], big);
            ok = 0;
        }
    }
    if (ok) {
        val = malloc(sizeof(double) * (size_t)(w * m > 0 ? w * m : 1));
        act = malloc(sizeof(int64_t) * (size_t)(w > 0 ? w : 1));
        if (val == NULL || act == NULL) {
            PyErr_NoMemory();
            ok = 0;
        }
    }
    if (!ok) {
        free(val);
        free(act);
        release(A, 4 + nk);
        free(A);
        Py_DECREF(seq);
        return NULL;
    }
    const double *r = A[1].view.buf;
    double *a = A[2].view.buf, *g = A[3].view.buf;
    Py_ssize_t rn = A[1].step[0], rk = A[1].step[1];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t na = gather_row(A + 4, nk, i, cols + i * w, m, val, act);
        if (m == 2) /* a reprojection: the constant lets the compiler unroll the sums */
            row_gram(val, act, na, 2, r + i * rn, rk, a, g, big);
        else
            row_gram(val, act, na, m, r + i * rn, rk, a, g, big);
    }
    Py_END_ALLOW_THREADS
    free(val);
    free(act);
    release(A, 4 + nk);
    free(A);
    Py_DECREF(seq);
    Py_RETURN_NONE;
}
