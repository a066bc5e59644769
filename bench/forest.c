/* Walks a table's stored random forest (bench/tables.py, Forest): for every query and every tree, the
   value of the leaf the query reaches, as scikit-learn decides it (x <= threshold goes left; a NaN goes
   right). Plain C with no Python API, compiled once per machine and loaded with ctypes; the means are
   taken in numpy, so the answers are bit-identical to the numpy walk.

   The arrays come prepared so that a leaf is its own two children: in blocks of LANES queries, every
   query then takes exactly depth[t] steps in tree t, with no test for having arrived, and the block's
   queries step together, so their chains of dependent loads overlap instead of waiting on each other;
   the last few queries walk alone and stop at their leaf. Trees go one at a time, so a tree
   stays in the cache while every query walks it. */
#include <stdint.h>

enum { LANES = 8 };

void forest_leaves(const int32_t *children, const int32_t *feature, const double *threshold,
                   const double *value, const int32_t *depth, int64_t trees, int64_t width, const double *x,
                   int64_t queries, int64_t inputs, double *out) {
    for (int64_t t = 0; t < trees; t++) {
        const int32_t *child = children + 2 * t * width, *f = feature + t * width;
        const double *thr = threshold + t * width, *v = value + t * width;
        int64_t first = 0;
        for (; first + LANES <= queries; first += LANES) {
            const double *point = x + first * inputs;
            int32_t node[LANES] = {0};
            for (int32_t step = 0; step < depth[t]; step++)
                for (int k = 0; k < LANES; k++)
                    node[k] = child[2 * node[k] + !(point[k * inputs + f[node[k]]] <= thr[node[k]])];
            for (int k = 0; k < LANES; k++)
                out[(first + k) * trees + t] = v[node[k]];
        }
        for (; first < queries; first++) { /* the last few, one at a time, each stopping at its leaf */
            const double *point = x + first * inputs;
            int32_t n = 0;
            while (child[2 * n] != n)
                n = point[f[n]] <= thr[n] ? child[2 * n] : child[2 * n + 1];
            out[first * trees + t] = v[n];
        }
    }
}
