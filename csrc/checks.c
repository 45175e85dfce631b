/* all_finite(arrays): True when every entry of every float64 array (any shape, any
 * strides) is finite, False when one is not, None when it declines (a strided array of
 * more than STRIDED_MAX entries, whose short runs numpy's iterator reads faster): the
 * solver's check of residuals and Jacobians in one call, where numpy's isfinite(x).all()
 * costs a temporary and two passes per array. */
#include "arrays.h"

#if PY_BIG_ENDIAN
#define HIGH_WORD 0
#else
#define HIGH_WORD 4
#endif

/* Strided arrays up to this many entries are read here; beyond, numpy's iterator is faster
 * on their short runs (a (10000, 1, 3) view with step 2: 57 us here, 13 us by numpy; at
 * 4096 entries both take a few us, numpy with its per-call cost). */
#define STRIDED_MAX 4096

/* No entry of the run p[0], p[step], ..., p[(n - 1) step] is NaN or inf: the exponent bits
 * (in the double's high 32-bit word) all set, tested without a branch on 32-bit words so
 * that the loop vectorizes with SSE2 (numpy's isfinite speed on long runs). */
static int finite_run(const double *p, Py_ssize_t n, Py_ssize_t step)
{
    const unsigned char *c = (const unsigned char *)p + HIGH_WORD;
    const uint32_t exp = 0x7ff00000u;
    uint32_t bad = 0;
    if (step == 1) {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t hi;
            memcpy(&hi, c + 8 * i, sizeof(hi));
            bad |= (uint32_t)((hi & exp) == exp);
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t hi;
            memcpy(&hi, c + 8 * i * step, sizeof(hi));
            bad |= (uint32_t)((hi & exp) == exp);
        }
    }
    return bad == 0;
}

/* finite_run over the last axis of every index of the axes before it, from axis `dim` */
static int finite_nd(const double *p, const Py_buffer *v, int dim)
{
    Py_ssize_t st = v->strides[dim] / 8;
    if (dim + 1 == v->ndim)
        return finite_run(p, v->shape[dim], st);
    for (Py_ssize_t i = 0; i < v->shape[dim]; i++)
        if (!finite_nd(p + i * st, v, dim + 1))
            return 0;
    return 1;
}

PyObject *all_finite(PyObject *self, PyObject *args)
{
    PyObject *seq = PySequence_Fast(args, "calib._kernels: all_finite takes arrays");
    if (seq == NULL)
        return NULL;
    int result = 1, declined = 0;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(seq); k++) { /* every one checked */
        Py_buffer v;
        PyObject *obj = PySequence_Fast_GET_ITEM(seq, k);
        if (PyObject_GetBuffer(obj, &v, PyBUF_RECORDS_RO) < 0) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "calib._kernels: all_finite takes float64 arrays");
            Py_DECREF(seq);
            return NULL;
        }
        const char *f = v.format ? v.format : "B";
        if (*f == '<' || *f == '=' || *f == '@')
            f++;
        int bad = v.itemsize != 8 || *f != 'd' || (uintptr_t)v.buf % 8;
        for (int d = 0; !bad && v.strides && d < v.ndim; d++)
            bad = v.strides[d] % 8 != 0;
        if (bad) {
            PyBuffer_Release(&v);
            PyErr_SetString(PyExc_ValueError,
                            "calib._kernels: all_finite takes aligned float64 arrays");
            Py_DECREF(seq);
            return NULL;
        }
        int empty = 0;
        for (int d = 0; d < v.ndim; d++)
            empty |= v.shape[d] == 0;
        Py_ssize_t total = v.len / 8;
        int contiguous = v.ndim == 0 || PyBuffer_IsContiguous(&v, 'C');
        if (!contiguous && total > STRIDED_MAX)
            declined = 1;
        if (result && !empty && !declined) { /* after a non-finite one: only checked as arrays */
            Py_BEGIN_ALLOW_THREADS
            result = contiguous ? finite_run(v.buf, total, 1) : finite_nd(v.buf, &v, 0);
            Py_END_ALLOW_THREADS
        }
        PyBuffer_Release(&v);
    }
    Py_DECREF(seq);
    if (declined && result)
        Py_RETURN_NONE;
    return PyBool_FromLong(result);
}
