"""pickwise: collect human pairwise preferences for reward-model and DPO training."""

__version__ = "0.1.0"
