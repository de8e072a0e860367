"""Running counts of an export, filled in while rows stream past; the manifest reports them."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ExportStats:
    votes_read: int = 0
    pairs_read: int = 0
    # In the export's unit: pairs for majority/unanimous, judgments for each-vote and votes.
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # hh-rlhf has no slot for a system prompt; count the rows that lost one.
    system_prompt_dropped: int = 0
    # Prompt ids read, and those whose conversation another prompt id has too (same side of
    # the split, whatever their ids). Set when the stream finishes.
    prompts_read: int = 0
    repeated_prompts: int = 0
    rows: Counter[str] = field(default_factory=Counter)
