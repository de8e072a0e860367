"""How strongly the raters preferred the winner, as the float TRL's RewardTrainer subtracts.

RewardTrainer's loss is ``-logsigmoid(r_chosen - r_rejected - margin)``: a larger margin asks
the reward model to separate the two responses further. The mapping:

- A vote's strength is an index ``i`` on the project's scale of ``n`` labels (weakest first).
  It maps to ``(i + 1) / n``, so the strongest label is 1.0 and the weakest still counts as a
  stated preference (1/n), never as "no preference".
- A row's strength is the mean of that value over the winning votes that gave a strength.
- The margin is that strength times the agreement (the share of the pair's votes that went to
  the winner), rounded to 6 decimals: a unanimous "much better" is 1.0, a 2-of-3 "slightly
  better" on a 3-label scale is 1/3 x 2/3 = 0.222222.
- 0.0 when no winning vote gave a strength (or the project has no scale). Never null: the
  trainer turns the column into a float tensor.
"""

from collections.abc import Iterable

MARGIN_DECIMALS = 6


def strength_fraction(strength: int, scale_size: int) -> float:
    """One vote's strength on a 0-1 scale: index i of n labels gives (i + 1) / n."""
    if not 0 <= strength < scale_size:
        raise ValueError(f"strength {strength} is outside a scale of {scale_size} labels")
    return (strength + 1) / scale_size


def mean_strength(fractions: Iterable[float]) -> float | None:
    values = list(fractions)
    if not values:
        return None
    return sum(values) / len(values)


def preference_margin(strength: float | None, agreement: float) -> float:
    if strength is None:
        return 0.0
    return round(strength * agreement, MARGIN_DECIMALS)
