"""Leaderboard analysis: board data, metrics (regret, ranks, AUC, hypervolume, critical difference),
rendering (README.md, index.html, SVG figures), outside submissions and the published run matrix.

Nothing here is imported by ``bench --help`` or ``bench list``: pandas, matplotlib, autorank and
pymoo load inside these modules, which load inside the ``leaderboard`` commands.
"""
