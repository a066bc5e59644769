/* Walks a table's stored random forest (bench/tables.py, Forest): for every query and every tree, the
   value of the leaf the query reaches, as scikit-learn decides it (x <= threshold goes left, else right, so
   an inactive parameter, NaN, goes right). Plain C with no Python API, compiled once per
   machine and loaded with ctypes; the means are taken in numpy, so the answers are bit-identical to the
   numpy walk.

   Each tree comes renumbered breadth first, so a node's children are neighbours (left, left + 1) and a
   node is one 16-byte record; a leaf's threshold is NaN (no x goes left) and its left child the id before
   its own, so every step from a leaf returns to it: a walk may take a fixed number of steps (the tree's
   depth) with no test for having arrived. LANES queries step through
   a tree together, so their chains of dependent loads overlap; trees go one at a time, so a tree stays in
   the cache while every query walks it. The last few queries walk alone and stop at their leaf. */
#include <stdint.h>

typedef struct {
    double threshold;
    int32_t feature, left;
} node;

enum { LANES = 8 };

void forest_leaves(const node *nodes, const double *value, const int32_t *depth, int64_t trees, int64_t width,
                   const double *x, int64_t queries, int64_t inputs, double *out) {
    for (int64_t t = 0; t < trees; t++) {
        const node *tree = nodes + t * width;
        const double *v = value + t * width;
        int64_t first = 0;
        for (; first + LANES <= queries; first += LANES) {
            const double *point = x + first * inputs;
            int32_t at[LANES] = {0};
            for (int32_t step = 0; step < depth[t]; step++)
#pragma GCC unroll 8
                for (int k = 0; k < LANES; k++) {
                    const node *d = tree + at[k];
                    at[k] = d->left + !(point[k * inputs + d->feature] <= d->threshold);
                }
            for (int k = 0; k < LANES; k++)
                out[(first + k) * trees + t] = v[at[k]];
        }
        for (; first < queries; first++) {
            const double *point = x + first * inputs;
            int32_t n = 0;
            while (tree[n].left != n - 1)  /* a branch, not arithmetic: the CPU's guess runs ahead of the loads */
                n = point[tree[n].feature] <= tree[n].threshold ? tree[n].left : tree[n].left + 1;
            out[first * trees + t] = v[n];
        }
    }
}
