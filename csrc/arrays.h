/* Array access shared by calib's compiled kernels (blocks.c, bal.c, lie.c,
 * registration.c, checks.c, cholesky.c): float64 and int64 arrays of any strides through
 * the buffer protocol, with their shapes checked, so that a wrong call raises a Python
 * exception instead of reading out of bounds. Index arrays are copied before they are
 * checked: the kernels read the checked copy with the GIL released, whatever another
 * thread does to the original. Outputs must not overlap inputs (the Python wrappers
 * allocate them). */
#ifndef CALIB_ARRAYS_H
#define CALIB_ARRAYS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An n-dimensional float64 ('d') or int64 array, strided, by the buffer protocol; out
 * arrays must be writable and C-contiguous. Strides are kept in elements. A 1-D or 2-D
 * int64 input is read through `idx`, a private C-contiguous copy. */
typedef struct {
    Py_buffer view;
    int ok;
    Py_ssize_t shape[4];
    Py_ssize_t step[4]; /* strides in elements */
    int64_t *idx;
} Arr;

static inline int get_arr(PyObject *obj, Arr *a, int ndim, int is_int, int out, const char *what)
{
    a->ok = 0;
    a->idx = NULL;
    int flags = out ? (PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
                    : (PyBUF_RECORDS_RO);
    if (PyObject_GetBuffer(obj, &a->view, flags) < 0) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError))
            return 0;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s must be a%s array", what,
                     out ? " writable C-contiguous" : "n");
        return 0;
    }
    a->ok = 1;
    if ((uintptr_t)a->view.buf % sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s is not aligned to 8 bytes", what);
        return 0;
    }
    const char *f = a->view.format ? a->view.format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    int fmt_ok = is_int ? (a->view.itemsize == 8 && (*f == 'l' || *f == 'q'))
                        : (a->view.itemsize == 8 && *f == 'd');
    if (!fmt_ok || a->view.ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s must be %d-D %s", what, ndim,
                     is_int ? "int64" : "float64");
        return 0;
    }
    for (int i = 0; i < ndim; i++) {
        a->shape[i] = a->view.shape[i];
        Py_ssize_t st = a->view.strides ? a->view.strides[i] : 0;
        if (!a->view.strides) { /* C-contiguous */
            st = 8;
            for (int j = i + 1; j < ndim; j++)
                st *= a->view.shape[j];
        }
        if (st % 8) {
            PyErr_Format(PyExc_ValueError, "calib._kernels: %s has unaligned strides", what);
            return 0;
        }
        a->step[i] = st / 8;
    }
    if (is_int && !out && ndim <= 2) { /* the private copy the kernel will read */
        Py_ssize_t n0 = a->shape[0], n1 = ndim == 2 ? a->shape[1] : 1;
        Py_ssize_t s1 = ndim == 2 ? a->step[1] : 0;
        if (n1 > 0 && n0 > PY_SSIZE_T_MAX / 8 / n1) { /* a broadcast view can claim it */
            PyErr_Format(PyExc_MemoryError, "calib._kernels: %s is too large to copy", what);
            return 0;
        }
        a->idx = malloc(sizeof(int64_t) * (size_t)(n0 * n1 > 0 ? n0 * n1 : 1));
        if (a->idx == NULL) {
            PyErr_NoMemory();
            return 0;
        }
        const int64_t *src = a->view.buf;
        if (n0 * n1 == 0)
            ;
        else if ((ndim == 1 || s1 == 1) && (n0 <= 1 || a->step[0] == n1)) /* C-contiguous */
            memcpy(a->idx, src, sizeof(int64_t) * (size_t)(n0 * n1));
        else if (ndim == 1)
            for (Py_ssize_t i = 0; i < n0; i++)
                a->idx[i] = src[i * a->step[0]];
        else
            for (Py_ssize_t i = 0; i < n0; i++)
                for (Py_ssize_t j = 0; j < n1; j++)
                    a->idx[i * n1 + j] = src[i * a->step[0] + j * s1];
        a->step[0] = n1;
        if (ndim == 2)
            a->step[1] = 1;
    }
    return 1;
}

static inline void release(Arr *arrs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (arrs[i].ok)
            PyBuffer_Release(&arrs[i].view);
        free(arrs[i].idx);
        arrs[i].idx = NULL;
    }
}

static inline int check_shape(const Arr *a, int dim, Py_ssize_t want, const char *what)
{
    if (a->shape[dim] != want) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s has %zd along axis %d, expected %zd",
                     what, a->shape[dim], dim, want);
        return 0;
    }
    return 1;
}

/* at least `least` entries along axis 0 */
static inline int check_rows(const Arr *a, Py_ssize_t least, const char *what)
{
    if (a->shape[0] < least) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s needs at least %zd rows", what,
                     least);
        return 0;
    }
    return 1;
}

/* shape[0..2] == (s0, s1, s2), an entry of -1 not checked */
static inline int check_shape3(const Arr *a, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2,
                               const char *what)
{
    const Py_ssize_t want[3] = {s0, s1, s2};
    for (int i = 0; i < 3 && i < a->view.ndim; i++)
        if (want[i] >= 0 && !check_shape(a, i, want[i], what))
            return 0;
    return 1;
}

/* get_arr and check_shape3 together: an array of `ndim` dimensions shaped (s0, s1, s2) */
static inline int get_shaped(PyObject *obj, Arr *a, int ndim, int is_int, int out,
                             Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2, const char *what)
{
    return get_arr(obj, a, ndim, is_int, out, what) && check_shape3(a, s0, s1, s2, what);
}

/* an optional output (None: not wanted) of shape (s0, s1, s2) */
static inline int get_optional_out(PyObject *obj, Arr *a, Py_ssize_t s0, Py_ssize_t s1,
                                   Py_ssize_t s2, const char *what)
{
    return obj == Py_None || get_shaped(obj, a, 3, 0, 1, s0, s1, s2, what);
}

/* every index in [0, hi) */
static inline int check_index(const Arr *a, int64_t hi, const char *what)
{
    const int64_t *idx = a->idx;
    for (Py_ssize_t i = 0; i < a->shape[0]; i++) {
        int64_t v = idx[i];
        if ((uint64_t)v >= (uint64_t)hi) {
            PyErr_Format(PyExc_IndexError, "calib._kernels: %s[%zd] = %lld outside [0, %lld)", what,
                         i, (long long)v, (long long)hi);
            return 0;
        }
    }
    return 1;
}

/* bounds (U+1,) non-decreasing within [0, n] */
static inline int check_bounds(const Arr *a, int64_t n, const char *what)
{
    const int64_t *s = a->idx;
    Py_ssize_t m = a->shape[0];
    if (m < 1 || s[0] < 0 || s[m - 1] > n) {
        PyErr_Format(PyExc_ValueError, "calib._kernels: %s must lie within [0, %lld]",
                     what, (long long)n);
        return 0;
    }
    for (Py_ssize_t i = 1; i < m; i++) {
        if (s[i] < s[i - 1]) {
            PyErr_Format(PyExc_ValueError, "calib._kernels: %s decreases at %zd", what, i);
            return 0;
        }
    }
    return 1;
}

/* the optional row order (N,) contiguous, every entry in [0, n) */
static inline int get_order(PyObject *obj, Arr *a, Py_ssize_t n)
{
    if (obj == Py_None)
        return 1;
    if (!get_arr(obj, a, 1, 1, 0, "order") || !check_shape(a, 0, n, "order"))
        return 0;
    return check_index(a, n, "order");
}

PyObject *segment_gram(PyObject *self, PyObject *args);
PyObject *pair_products(PyObject *self, PyObject *args);
PyObject *inverse_cholesky(PyObject *self, PyObject *args);
PyObject *bal_project(PyObject *self, PyObject *args);
PyObject *se3_plus(PyObject *self, PyObject *args);
PyObject *so3_exp(PyObject *self, PyObject *args);
PyObject *so3_quat(PyObject *self, PyObject *args);
PyObject *so3_log(PyObject *self, PyObject *args);
PyObject *so3_deviation(PyObject *self, PyObject *args);
PyObject *point_to_plane(PyObject *self, PyObject *args);
PyObject *dense_gram(PyObject *self, PyObject *args);
PyObject *all_finite(PyObject *self, PyObject *args);
PyObject *damped_solve(PyObject *self, PyObject *args);

#endif
