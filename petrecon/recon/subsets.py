"""Ordered subsets by view (Hudson & Larkin 1994, IEEE TMI 13:601)."""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError


def view_subsets(n_views: int, n_subsets: int) -> list[np.ndarray]:
    """Interleaved view subsets: subset k holds views k, k + n_subsets, ...

    Interleaving keeps each subset spread over the whole half circle, which is
    what makes one subset's back projection a fair estimate of the full one.
    When ``n_views`` is not a multiple of ``n_subsets`` (mMR: 252 views, 8
    subsets) the first subsets hold one view more.

    Examples
    --------
    >>> [s.tolist() for s in view_subsets(6, 3)]
    [[0, 3], [1, 4], [2, 5]]
    """
    if not 1 <= n_subsets <= n_views:
        raise ParameterError(f"number of subsets must be between 1 and the number of views ({n_views}), got {n_subsets}")
    return [np.arange(k, n_views, n_subsets) for k in range(n_subsets)]
