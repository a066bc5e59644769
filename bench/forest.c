/* Walks a table's stored random forest (bench/tables.py, Forest): for every query and every tree, the
   value of the leaf the query reaches, as scikit-learn decides it (x <= threshold goes left, else right, so
   an inactive parameter, NaN, goes right). Plain C with no Python API, compiled once per
   machine and loaded with ctypes; the means are taken in numpy, so the answers are bit-identical to the
   numpy walk.

   Each tree comes renumbered breadth first, so a node's children are neighbours (left, left + 1) and a
   node is one 16-byte record; a leaf's threshold is NaN (no x goes left) and its left child the id before
   its own, so every step from a leaf returns to it. LANES walks step together, so their chains of
   dependent loads overlap, with no branch on which way each goes (a way the CPU cannot guess, as for a new
   point, costs more than the step): they take at most the tree's depth in steps and stop at the first step
   that moves none of them. A batch walks LANES queries through one tree, so the tree stays in the cache
   while every query walks it; a lookup's one query walks LANES trees at a time. */
#include <stdint.h>

typedef struct {
    double threshold;
    int32_t feature, left;
} node;

enum { LANES = 8 };

/* A batch: LANES queries through one tree, every tree in turn; the last few queries walk alone. Not inlined:
   GCC then keeps the lanes in registers (a tenth faster). */
__attribute__((noinline)) static void walk_queries(const node *nodes, const double *value, const int32_t *depth,
                                                   int64_t trees, int64_t width, const double *x, int64_t queries,
                                                   int64_t inputs, double *out) {
    for (int64_t t = 0; t < trees; t++) {
        const node *tree = nodes + t * width;
        const double *v = value + t * width;
        int64_t first = 0;
        for (; first + LANES <= queries; first += LANES) {
            const double *point = x + first * inputs;
            int32_t at[LANES] = {0};
            for (int32_t step = 0, moved = 1; moved && step < depth[t]; step++) {
                moved = 0;
#pragma GCC unroll 8
                for (int k = 0; k < LANES; k++) {
                    const node *d = tree + at[k];
                    int32_t next = d->left + !(point[k * inputs + d->feature] <= d->threshold);
                    moved |= next ^ at[k];
                    at[k] = next;
                }
            }
            for (int k = 0; k < LANES; k++)
                out[(first + k) * trees + t] = v[at[k]];
        }
        for (; first < queries; first++) {
            const double *point = x + first * inputs;
            int32_t n = 0;
            while (tree[n].left != n - 1)
                n = point[tree[n].feature] <= tree[n].threshold ? tree[n].left : tree[n].left + 1;
            out[first * trees + t] = v[n];
        }
    }
}

/* One query (a lookup), LANES trees at a time. */
static void walk_trees(const node *nodes, const double *value, const int32_t *depth, int64_t trees,
                       int64_t width, const double *point, double *out) {
    for (int64_t first = 0; first < trees; first += LANES) {
        int lanes = trees - first < LANES ? (int)(trees - first) : LANES;
        int32_t at[LANES] = {0}, steps = 0;
        for (int k = 0; k < lanes; k++)
            steps = depth[first + k] > steps ? depth[first + k] : steps;
        for (int32_t step = 0, moved = 1; moved && step < steps; step++) {
            moved = 0;
#pragma GCC unroll 8
            for (int k = 0; k < LANES; k++) {  /* lanes past the last tree walk this group's first one again */
                const node *d = nodes + (first + (k < lanes ? k : 0)) * width + at[k];
                int32_t next = d->left + !(point[d->feature] <= d->threshold);
                moved |= next ^ at[k];
                at[k] = next;
            }
        }
        for (int k = 0; k < lanes; k++)
            out[first + k] = value[(first + k) * width + at[k]];
    }
}

void forest_leaves(const node *nodes, const double *value, const int32_t *depth, int64_t trees, int64_t width,
                   const double *x, int64_t queries, int64_t inputs, double *out) {
    if (queries >= LANES)
        walk_queries(nodes, value, depth, trees, width, x, queries, inputs, out);
    else
        for (int64_t q = 0; q < queries; q++)
            walk_trees(nodes, value, depth, trees, width, x + q * inputs, out + q * trees);
}
