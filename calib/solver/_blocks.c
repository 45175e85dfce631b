/* Batched small-block kernels of calib's solver: the sums and products that numpy can
 * only do one tiny matrix at a time (a BLAS call, or an einsum pass, per 2x9 or 3x3
 * block). Wrapped and documented by calib/solver/blocks.py; every array is C-contiguous
 * float64 (int64 for indices), checked here against the sizes given, so a wrong call
 * raises instead of reading out of bounds. The GIL is released while a kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int check_len(const Py_buffer *b, Py_ssize_t count, Py_ssize_t item, const char *what)
{
    if (b->len != count * item) {
        PyErr_Format(PyExc_ValueError, "_blocks: %s has %zd bytes, expected %zd", what,
                     b->len, count * item);
        return 0;
    }
    return 1;
}

/* every idx[i] in [0, hi) */
static int check_index(const Py_buffer *b, int64_t hi, const char *what)
{
    const int64_t *idx = (const int64_t *)b->buf;
    Py_ssize_t n = b->len / (Py_ssize_t)sizeof(int64_t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((uint64_t)idx[i] >= (uint64_t)hi) {
            PyErr_Format(PyExc_IndexError, "_blocks: %s[%zd] = %lld outside [0, %lld)", what,
                         i, (long long)idx[i], (long long)hi);
            return 0;
        }
    }
    return 1;
}

/* bounds (U+1,) non-decreasing within [0, n] */
static int check_bounds(const Py_buffer *b, int64_t n, const char *what)
{
    const int64_t *s = (const int64_t *)b->buf;
    Py_ssize_t m = b->len / (Py_ssize_t)sizeof(int64_t);
    if (m < 1 || s[0] < 0 || s[m - 1] > n) {
        PyErr_Format(PyExc_ValueError, "_blocks: %s outside [0, %lld]", what, (long long)n);
        return 0;
    }
    for (Py_ssize_t i = 1; i < m; i++) {
        if (s[i] < s[i - 1]) {
            PyErr_Format(PyExc_ValueError, "_blocks: %s decreases at %zd", what, i);
            return 0;
        }
    }
    return 1;
}

static void release(Py_buffer *bufs, int n)
{
    for (int i = 0; i < n; i++) {
        if (bufs[i].obj != NULL || bufs[i].buf != NULL) {
            PyBuffer_Release(&bufs[i]);
        }
    }
}

/* segment_gram(ja, jb, order, bounds, out, n, m, a, b):
 * out[u] = sum over t in [bounds[u], bounds[u+1]) of ja[i]^T jb[i], i = order[t] (or t when
 * order is None); ja (n, m, a), jb (n, m, b), out (U, a, b). */
static PyObject *segment_gram(PyObject *self, PyObject *args)
{
    Py_buffer bj[5];
    memset(bj, 0, sizeof(bj));
    Py_ssize_t n, m, a, b;
    if (!PyArg_ParseTuple(args, "y*y*z*y*w*nnnn", &bj[0], &bj[1], &bj[2], &bj[3], &bj[4], &n,
                          &m, &a, &b))
        return NULL;
    Py_ssize_t nu = bj[3].len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (!check_len(&bj[0], n * m * a, 8, "ja") || !check_len(&bj[1], n * m * b, 8, "jb") ||
        (bj[2].buf != NULL && !check_len(&bj[2], n, 8, "order")) ||
        !check_bounds(&bj[3], n, "bounds") || !check_len(&bj[4], nu * a * b, 8, "out") ||
        (bj[2].buf != NULL && !check_index(&bj[2], n, "order"))) {
        release(bj, 5);
        return NULL;
    }
    const double *ja = bj[0].buf, *jb = bj[1].buf;
    const int64_t *order = bj[2].buf, *bounds = bj[3].buf;
    double *out = bj[4].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t u = 0; u < nu; u++) {
        double *o = out + u * a * b;
        memset(o, 0, (size_t)(a * b) * sizeof(double));
        for (int64_t t = bounds[u]; t < bounds[u + 1]; t++) {
            int64_t i = order ? order[t] : t;
            const double *pa = ja + i * m * a, *pb = jb + i * m * b;
            for (Py_ssize_t k = 0; k < m; k++) {
                const double *ya = pa + k * a, *yb = pb + k * b;
                for (Py_ssize_t p = 0; p < a; p++) {
                    double x = ya[p];
                    double *row = o + p * b;
                    for (Py_ssize_t q = 0; q < b; q++)
                        row[q] += x * yb[q];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(bj, 5);
    Py_RETURN_NONE;
}

/* segment_gemv(j, r, order, bounds, out, n, m, d):
 * out[u] = sum over t in segment u of j[i]^T r[i]; j (n, m, d), r (n, m), out (U, d). */
static PyObject *segment_gemv(PyObject *self, PyObject *args)
{
    Py_buffer bj[5];
    memset(bj, 0, sizeof(bj));
    Py_ssize_t n, m, d;
    if (!PyArg_ParseTuple(args, "y*y*z*y*w*nnn", &bj[0], &bj[1], &bj[2], &bj[3], &bj[4], &n,
                          &m, &d))
        return NULL;
    Py_ssize_t nu = bj[3].len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (!check_len(&bj[0], n * m * d, 8, "j") || !check_len(&bj[1], n * m, 8, "r") ||
        (bj[2].buf != NULL && !check_len(&bj[2], n, 8, "order")) ||
        !check_bounds(&bj[3], n, "bounds") || !check_len(&bj[4], nu * d, 8, "out") ||
        (bj[2].buf != NULL && !check_index(&bj[2], n, "order"))) {
        release(bj, 5);
        return NULL;
    }
    const double *j = bj[0].buf, *r = bj[1].buf;
    const int64_t *order = bj[2].buf, *bounds = bj[3].buf;
    double *out = bj[4].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t u = 0; u < nu; u++) {
        double *o = out + u * d;
        memset(o, 0, (size_t)d * sizeof(double));
        for (int64_t t = bounds[u]; t < bounds[u + 1]; t++) {
            int64_t i = order ? order[t] : t;
            const double *pj = j + i * m * d, *pr = r + i * m;
            for (Py_ssize_t k = 0; k < m; k++) {
                double x = pr[k];
                const double *row = pj + k * d;
                for (Py_ssize_t p = 0; p < d; p++)
                    o[p] += x * row[p];
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(bj, 5);
    Py_RETURN_NONE;
}

/* out[q] = sum over t in [bounds[q], bounds[q+1]) of vt[ta[t]]^T vt[tb[t]], each vt block
 * (d, r): the generic loop, and copies with the sizes fixed at compile time (BAL cameras
 * of 9 and poses of 6 against 3-D points), which the compiler unrolls and vectorizes. */
#define PAIR_SUMS_BODY(R, D)                                                                  \
    for (Py_ssize_t q = 0; q < nq; q++) {                                                     \
        double acc[(R) * (R)];                                                                \
        memset(acc, 0, sizeof(double) * (size_t)((R) * (R)));                                 \
        for (int64_t t = bounds[q]; t < bounds[q + 1]; t++) {                                 \
            const double *va = vt + ta[t] * (D) * (R), *vb = vt + tb[t] * (D) * (R);          \
            for (Py_ssize_t i = 0; i < (D); i++)                                              \
                for (Py_ssize_t p = 0; p < (R); p++)                                          \
                    for (Py_ssize_t c = 0; c < (R); c++)                                      \
                        acc[p * (R) + c] += va[i * (R) + p] * vb[i * (R) + c];                \
        }                                                                                     \
        memcpy(out + q * (R) * (R), acc, sizeof(double) * (size_t)((R) * (R)));               \
    }

static void pair_sums_9_3(const double *vt, const int64_t *ta, const int64_t *tb,
                          const int64_t *bounds, Py_ssize_t nq, double *out)
{
    PAIR_SUMS_BODY(9, 3)
}

static void pair_sums_6_3(const double *vt, const int64_t *ta, const int64_t *tb,
                          const int64_t *bounds, Py_ssize_t nq, double *out)
{
    PAIR_SUMS_BODY(6, 3)
}

static void pair_sums(const double *vt, const int64_t *ta, const int64_t *tb,
                      const int64_t *bounds, Py_ssize_t nq, Py_ssize_t r, Py_ssize_t d,
                      double *out)
{
    for (Py_ssize_t q = 0; q < nq; q++) {
        double *o = out + q * r * r;
        memset(o, 0, (size_t)(r * r) * sizeof(double));
        for (int64_t t = bounds[q]; t < bounds[q + 1]; t++) {
            const double *va = vt + ta[t] * d * r, *vb = vt + tb[t] * d * r;
            for (Py_ssize_t i = 0; i < d; i++) {
                const double *ya = va + i * r, *yb = vb + i * r;
                for (Py_ssize_t p = 0; p < r; p++) {
                    double x = ya[p];
                    double *row = o + p * r;
                    for (Py_ssize_t c = 0; c < r; c++)
                        row[c] += x * yb[c];
                }
            }
        }
    }
}

/* pair_products(w_sub, l_inv, sub_pos, ta, tb, bounds, vt, out, k, r, d, p):
 * vt[s] = l_inv[sub_pos[s]] w_sub[s]^T (d x r) for every sub-block s, then
 * out[q] = sum over t in [bounds[q], bounds[q+1]) of vt[ta[t]]^T vt[tb[t]] (r x r).
 * w_sub (k, r, d), l_inv (p, d, d) lower triangular, vt (k, d, r) scratch. */
static PyObject *pair_products(PyObject *self, PyObject *args)
{
    Py_buffer bj[8];
    memset(bj, 0, sizeof(bj));
    Py_ssize_t k, r, d, np_;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*w*w*nnnn", &bj[0], &bj[1], &bj[2], &bj[3],
                          &bj[4], &bj[5], &bj[6], &bj[7], &k, &r, &d, &np_))
        return NULL;
    Py_ssize_t nt = bj[3].len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t nq = bj[5].len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (!check_len(&bj[0], k * r * d, 8, "w_sub") || !check_len(&bj[1], np_ * d * d, 8, "l_inv") ||
        !check_len(&bj[2], k, 8, "sub_pos") || !check_len(&bj[4], nt, 8, "tb") ||
        !check_bounds(&bj[5], nt, "bounds") || !check_len(&bj[6], k * d * r, 8, "vt") ||
        !check_len(&bj[7], nq * r * r, 8, "out") || !check_index(&bj[2], np_, "sub_pos") ||
        !check_index(&bj[3], k, "ta") || !check_index(&bj[4], k, "tb")) {
        release(bj, 8);
        return NULL;
    }
    const double *w = bj[0].buf, *linv = bj[1].buf;
    const int64_t *pos = bj[2].buf, *ta = bj[3].buf, *tb = bj[4].buf, *bounds = bj[5].buf;
    double *vt = bj[6].buf, *out = bj[7].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < k; s++) {
        const double *L = linv + pos[s] * d * d, *W = w + s * r * d;
        double *V = vt + s * d * r;
        for (Py_ssize_t i = 0; i < d; i++) {
            for (Py_ssize_t jj = 0; jj < r; jj++) {
                double acc = 0.0;
                for (Py_ssize_t l = 0; l <= i; l++)
                    acc += L[i * d + l] * W[jj * d + l];
                V[i * r + jj] = acc;
            }
        }
    }
    if (r == 9 && d == 3)
        pair_sums_9_3(vt, ta, tb, bounds, nq, out);
    else if (r == 6 && d == 3)
        pair_sums_6_3(vt, ta, tb, bounds, nq, out);
    else
        pair_sums(vt, ta, tb, bounds, nq, r, d, out);
    Py_END_ALLOW_THREADS
    release(bj, 8);
    Py_RETURN_NONE;
}

/* inverse_cholesky(blocks, linv, inv, p, d) -> -1, or the first block that is not positive
 * definite (or not finite): blocks = L L^T (p, d, d); linv = L^-1 (zero above the diagonal);
 * inv = L^-T L^-1 = blocks^-1. */
static PyObject *inverse_cholesky(PyObject *self, PyObject *args)
{
    Py_buffer bj[3];
    memset(bj, 0, sizeof(bj));
    Py_ssize_t np_, d;
    if (!PyArg_ParseTuple(args, "y*w*w*nn", &bj[0], &bj[1], &bj[2], &np_, &d))
        return NULL;
    if (!check_len(&bj[0], np_ * d * d, 8, "blocks") || !check_len(&bj[1], np_ * d * d, 8, "linv") ||
        !check_len(&bj[2], np_ * d * d, 8, "inv")) {
        release(bj, 3);
        return NULL;
    }
    double *low = malloc((size_t)(d * d > 0 ? d * d : 1) * sizeof(double));
    if (low == NULL) {
        release(bj, 3);
        return PyErr_NoMemory();
    }
    const double *blocks = bj[0].buf;
    double *linv = bj[1].buf, *inv = bj[2].buf;
    Py_ssize_t bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < np_ && bad < 0; s++) {
        const double *A = blocks + s * d * d;
        double *Li = linv + s * d * d, *X = inv + s * d * d;
        memset(low, 0, (size_t)(d * d) * sizeof(double));
        for (Py_ssize_t j = 0; j < d && bad < 0; j++) {
            double piv = A[j * d + j];
            for (Py_ssize_t l = 0; l < j; l++)
                piv -= low[j * d + l] * low[j * d + l];
            if (!(piv > 0.0) || !isfinite(piv)) {
                bad = s;
                break;
            }
            double ljj = sqrt(piv);
            low[j * d + j] = ljj;
            for (Py_ssize_t i = j + 1; i < d; i++) {
                double v = A[i * d + j];
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
        /* inv = L^-T L^-1: inv[a][b] = sum_{l >= max(a, b)} Li[l][a] Li[l][b] */
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
    release(bj, 3);
    return PyLong_FromSsize_t(bad);
}

static PyMethodDef methods[] = {
    {"segment_gram", segment_gram, METH_VARARGS, "Per segment sum of ja^T jb."},
    {"segment_gemv", segment_gemv, METH_VARARGS, "Per segment sum of j^T r."},
    {"pair_products", pair_products, METH_VARARGS, "Schur pair products of L^-1 W^T."},
    {"inverse_cholesky", inverse_cholesky, METH_VARARGS, "Batched L^-1 and inverse of SPD blocks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_blocks",
                                    "calib's compiled block kernels (see blocks.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__blocks(void) { return PyModule_Create(&module); }
