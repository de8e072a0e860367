import numpy as np

from pickwise.analytics.bradley_terry import BattleCounts
from pickwise.analytics.service import comparison_groups


def battles(pairs: list[tuple[int, int]], n_models: int) -> BattleCounts:
    model_a = np.array([a for a, _ in pairs], dtype=np.int64)
    model_b = np.array([b for _, b in pairs], dtype=np.int64)
    return BattleCounts(
        model_a=model_a,
        model_b=model_b,
        outcome=np.zeros(len(pairs), dtype=np.int64),
        count=np.ones(len(pairs)),
        n_models=n_models,
    )


def test_models_compared_only_among_themselves_form_a_group() -> None:
    # 0-1-2 through a chain, 3-4 on their own, 5 never compared.
    assert comparison_groups(battles([(0, 1), (2, 1), (4, 3)], 6)) == 3
    assert comparison_groups(battles([(0, 1), (2, 1), (4, 3), (3, 2), (5, 0)], 6)) == 1
    assert comparison_groups(battles([], 4)) == 4
    # Repeated cells and either direction count once.
    assert comparison_groups(battles([(1, 0), (0, 1), (0, 1)], 2)) == 1
