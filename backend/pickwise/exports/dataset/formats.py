"""One function per export format: a vote or a preference row in, JSON-ready dicts out.

Every key is present in every row with one fixed type (no nulls), because Hugging Face
`datasets` gives a column one Arrow type and TRL inspects only the first row. Key order is
fixed, so the same input always gives the same bytes.
"""

from datetime import UTC, datetime
from enum import StrEnum

from pickwise.exports.dataset.aggregation import DropReason, PreferencePair
from pickwise.exports.dataset.records import PromptRecord, VoteRecord
from pickwise.vocabulary import TurnRole

Row = dict[str, object]
MessageDict = dict[str, str]

# Anthropic HH-RLHF transcript markers.
HUMAN_PREFIX = "\n\nHuman: "
ASSISTANT_PREFIX = "\n\nAssistant: "
# A text containing one of these would start a turn of its own when the transcript is read
# back (a trainer cuts the prompt at the last "\n\nAssistant: "); such rows are left out.
HH_TURN_MARKERS = ("\n\nHuman:", "\n\nAssistant:")

# The votes format has no nulls: these stand for "not given".
NO_STRENGTH_INDEX = -1
NO_TEXT = ""


class ExportFormat(StrEnum):
    VOTES = "votes"
    TRL = "trl"
    OPENAI = "openai"
    HH_RLHF = "hh-rlhf"
    KTO = "kto"

    @property
    def description(self) -> str:
        """What the format holds and which trainer reads it, for the export page."""
        return _FORMAT_DESCRIPTIONS[self]


_FORMAT_DESCRIPTIONS = {
    ExportFormat.VOTES: (
        "Every judgment on a line of its own: both answers and their models, the choice (ties "
        "and “both are bad” too), strength, reason, criteria, the rater's pseudonym and times. "
        "For your own analysis or to aggregate elsewhere; no trainer reads it as it is."
    ),
    ExportFormat.TRL: (
        "Prompt, chosen and rejected answer, and a margin from the strength: for Hugging Face "
        "TRL (DPOTrainer, RewardTrainer, which uses the margin, ORPO and the other preference "
        "trainers) and for OpenRLHF's reward-model and DPO training."
    ),
    ExportFormat.OPENAI: (
        "OpenAI preference fine-tuning (DPO): the input messages with a preferred and a "
        "non-preferred output. Together AI and Fireworks DPO jobs read the same file."
    ),
    ExportFormat.HH_RLHF: (
        "Anthropic HH-RLHF: two whole transcripts (Human: … Assistant: …) that differ in the "
        "last answer, for code written for that dataset. A system prompt has no place in it "
        "and is left out."
    ),
    ExportFormat.KTO: (
        "Unpaired rows for TRL's KTOTrainer: each pair kept gives its chosen answer labelled "
        "good and its rejected answer labelled bad."
    ),
}


class ConversationalMismatchError(ValueError):
    """A string-format export met a prompt that needs messages (system prompt or turns)."""


def needs_conversational(prompt: PromptRecord) -> bool:
    return not prompt.is_single_user_turn


def prompt_messages(prompt: PromptRecord) -> list[MessageDict]:
    messages = [{"role": "system", "content": prompt.system or ""}] if prompt.has_system else []
    messages.extend({"role": turn.role, "content": turn.content} for turn in prompt.turns)
    return messages


def vote_row(vote: VoteRecord) -> Row:
    """Everything about one judgment, for analysis or for re-aggregating elsewhere."""
    return {
        "judgment_id": vote.judgment_id,
        "pair_id": vote.pair_id,
        "batch_id": vote.batch_id,
        "prompt_id": vote.prompt.external_id,
        "prompt": prompt_messages(vote.prompt),
        "response_a_id": vote.response_a_id,
        "response_b_id": vote.response_b_id,
        "model_a": vote.model_a,
        "model_b": vote.model_b,
        "response_a": vote.response_a,
        "response_b": vote.response_b,
        "winner": vote.choice,
        "winner_as_shown": vote.winner_as_shown,
        "strength_index": NO_STRENGTH_INDEX if vote.strength is None else vote.strength,
        "strength_label": vote.strength_label or NO_TEXT,
        "strength_scale": list(vote.strength_scale),
        "rationale": vote.rationale or NO_TEXT,
        "criteria": criteria_object(vote),
        "rater": vote.rater_pseudonym,
        "shown_left": vote.shown_left,
        "left_response_id": vote.left_response_id,
        "shown_at": iso_utc(vote.shown_at),
        "submitted_at": iso_utc(vote.submitted_at),
        "is_gold": vote.is_gold,
        "adjudication": vote.adjudication or NO_TEXT,
    }


def _prompt_chosen_rejected(
    pair: PreferencePair, conversational: bool
) -> tuple[object, object, object]:
    """TRL's two shapes: message lists, or plain strings (only for a single user turn)."""
    if conversational:
        return (
            prompt_messages(pair.prompt),
            [_assistant(pair.chosen)],
            [_assistant(pair.rejected)],
        )
    return _plain_prompt(pair.prompt), pair.chosen, pair.rejected


def trl_row(pair: PreferencePair, *, conversational: bool) -> Row:
    """TRL preference row with an explicit prompt; `margin` feeds RewardTrainer's loss."""
    prompt, chosen, rejected = _prompt_chosen_rejected(pair, conversational)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "margin": pair.margin}


def kto_rows(pair: PreferencePair, *, conversational: bool) -> tuple[Row, Row]:
    """TRL unpaired preference: the chosen response labelled true, the rejected one false."""
    prompt, chosen, rejected = _prompt_chosen_rejected(pair, conversational)
    return (
        {"prompt": prompt, "completion": chosen, "label": True},
        {"prompt": prompt, "completion": rejected, "label": False},
    )


def openai_row(pair: PreferencePair) -> Row:
    """OpenAI preference fine-tuning (DPO): input ends on a user turn, one message per output."""
    return {
        "input": {"messages": prompt_messages(pair.prompt)},
        "preferred_output": [_assistant(pair.chosen)],
        "non_preferred_output": [_assistant(pair.rejected)],
    }


def hh_rlhf_marker_problem(pair: PreferencePair) -> DropReason | None:
    """Why the pair cannot be an HH-RLHF row, if it cannot: a turn marker in a prompt turn or
    in a response (the system prompt is not written, so it does not matter)."""
    if any(_has_turn_marker(turn.content) for turn in pair.prompt.turns):
        return DropReason.MARKER_IN_PROMPT
    if _has_turn_marker(pair.chosen) or _has_turn_marker(pair.rejected):
        return DropReason.MARKER_IN_RESPONSE
    return None


def _has_turn_marker(text: str) -> bool:
    return any(marker in text for marker in HH_TURN_MARKERS)


def hh_rlhf_row(pair: PreferencePair) -> Row:
    """Anthropic HH-RLHF transcripts. The system prompt has no slot and is left out.

    Call `hh_rlhf_marker_problem` first: with a turn marker inside a text, the transcript
    would not read back as the same turns."""
    history = "".join(
        (HUMAN_PREFIX if turn.role == TurnRole.USER else ASSISTANT_PREFIX) + turn.content
        for turn in pair.prompt.turns
    )
    return {
        "chosen": history + ASSISTANT_PREFIX + pair.chosen,
        "rejected": history + ASSISTANT_PREFIX + pair.rejected,
    }


def criteria_object(vote: VoteRecord) -> dict[str, str]:
    """Per-criterion winner (a / b / tie, canonical like `winner`) for every criterion of the
    export, "" where the vote gave none.

    Every row has the same keys: `datasets` types an object whose keys are the same in every
    row as a struct of strings, while keys that vary between rows (or that first appear in a
    later chunk) make it an untyped `Json` column or fail the load.
    """
    return {name: vote.criteria.get(name, NO_TEXT) for name in vote.criteria_names}


def iso_utc(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds.

    Arrow's JSON reader turns second-precision ISO strings into timestamps; with microseconds
    they stay strings, so the column has one type in every file.
    """
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def _assistant(content: str) -> MessageDict:
    return {"role": TurnRole.ASSISTANT, "content": content}


def _plain_prompt(prompt: PromptRecord) -> str:
    if needs_conversational(prompt):
        raise ConversationalMismatchError(
            f"prompt {prompt.external_id!r} has a system prompt or several turns, so this "
            "export must be conversational (decide it before writing; rows are never mixed)"
        )
    return prompt.turns[0].content
