"""Every list of values pickwise stores or accepts, each defined once.

One `StrEnum` per vocabulary: the database's CHECK constraint is made from it
(`models.base.one_of`), request schemas take it as their type (so the API schema lists the
values), and pages show its `label`. Members are strings, so they compare equal to the values
read back from the database.

Two vocabularies that look alike stay apart: a choice relative to the pair's canonical
responses (`Choice`, `CanonicalSide`: A is the response listed first in the import file) is
never the choice as the rater saw it on screen (`ShownChoice`, `ShownSide`: left or right).
"""

from enum import StrEnum
from typing import Self


class Labelled(StrEnum):
    """A vocabulary whose members also carry the words people read."""

    label: str

    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value
        return member


# --- judgments -----------------------------------------------------------------------------


class Choice(Labelled):
    """A judgment, relative to the pair's canonical response A / B."""

    A = "a", "A"
    B = "b", "B"
    TIE = "tie", "tie"
    BOTH_BAD = "both_bad", "both bad"


class ShownChoice(Labelled):
    """A judgment as the rater made it: the answer shown on the left or on the right."""

    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class CanonicalSide(StrEnum):
    """One of a pair's two responses: A (listed first in the import file) or B."""

    A = "a"
    B = "b"


class ShownSide(StrEnum):
    """Where a response was shown to the rater."""

    LEFT = "left"
    RIGHT = "right"


def chosen_side(choice: str) -> CanonicalSide | None:
    """The response a choice picked: A or B, or None for a tie or both bad."""
    return _SIDE_OF_CHOICE.get(choice)


def canonical_of(shown: str, left_side: str) -> str:
    """A choice as the rater made it (left, right, tie, both bad; or a criterion's left, right,
    tie) relative to the pair's canonical A / B, `left_side` being the response shown left."""
    if shown == ShownSide.LEFT:
        return CanonicalSide(left_side)
    if shown == ShownSide.RIGHT:
        return _OTHER_SIDE[CanonicalSide(left_side)]
    return shown  # a tie, or both bad, reads the same either way


def shown_side_of(side: str, left_side: str) -> ShownSide:
    """Where response `side` (A or B) was shown, `left_side` being the one shown left."""
    return ShownSide.LEFT if side == left_side else ShownSide.RIGHT


def shown_choice_of(choice: str, left_side: str) -> str:
    """A canonical choice (A, B, tie, both bad; or a criterion's A, B, tie) in the rater's
    words: the side its response was shown on. The inverse of `canonical_of`."""
    side = chosen_side(choice)
    return choice if side is None else shown_side_of(side, left_side)


# Keyed by value: a choice read from the database is a plain string.
_SIDE_OF_CHOICE: dict[str, CanonicalSide] = {Choice.A: CanonicalSide.A, Choice.B: CanonicalSide.B}
_OTHER_SIDE = {CanonicalSide.A: CanonicalSide.B, CanonicalSide.B: CanonicalSide.A}


class CriterionChoice(StrEnum):
    """The better response on one criterion, canonical A / B (or a tie)."""

    A = "a"
    B = "b"
    TIE = "tie"


class ShownCriterionChoice(Labelled):
    """The better response on one criterion, as the rater saw them."""

    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    TIE = "tie", "Same"


class SkipReason(Labelled):
    CANT_JUDGE = "cant_judge", "I can't judge this"
    NEEDS_EXPERTISE = "needs_expertise", "Needs expertise I don't have"
    BROKEN_CONTENT = "broken_content", "The content is broken"


class FlagReason(Labelled):
    HARMFUL = "harmful", "Harmful content"
    PERSONAL_DATA = "personal_data", "Personal data"
    OTHER = "other", "Something else (say what below)"


class DecisionKind(StrEnum):
    """What a rater decided on a pair and later changed (the history keeps the old one)."""

    JUDGMENT = "judgment"
    SKIP = "skip"


class FlagResolution(StrEnum):
    """An admin's decision on a flagged pair."""

    RESTORED = "restored"  # back in the queue
    REMOVED = "removed"  # out of the queue and of exports


# --- review and curation -------------------------------------------------------------------


class Decision(Labelled):
    """An admin's final word on a pair, relative to its canonical responses A / B."""

    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    DROP = "drop", "Drop from exports"  # leave the pair out of every export


class PairState(Labelled):
    """What the explorer's status filter asks for; a pair may be in several at once
    (complete, disputed and adjudicated, say). docs/review.md defines each."""

    WAITING = "waiting", "waiting"
    IN_PROGRESS = "in_progress", "in progress"
    COMPLETE = "complete", "complete"
    DISPUTED = "disputed", "disputed"
    FLAGGED = "flagged", "flagged"
    REMOVED = "removed", "removed"
    ADJUDICATED = "adjudicated", "adjudicated"
    EXCLUDED = "excluded", "excluded"


class PairSort(Labelled):
    NEWEST = "newest", "Newest first"
    OLDEST = "oldest", "Oldest first"
    AGREEMENT_LOW = "agreement_low", "Lowest agreement first"
    AGREEMENT_HIGH = "agreement_high", "Highest agreement first"
    VOTES_MOST = "votes_most", "Most votes first"
    VOTES_FEWEST = "votes_fewest", "Fewest votes first"


class CurationAction(Labelled):
    """What an admin can do to one pair or to every pair a filter selects."""

    EXCLUDE = "exclude", "Exclude from exports"
    INCLUDE = "include", "Include in exports again"
    REQUEST_VOTES = "request_votes", "Request more votes"
    MAKE_GOLD = "make_gold", "Make gold"
    RESOLVE_FLAGS = "resolve_flags", "Resolve flags"


# --- the rater loop ------------------------------------------------------------------------


class SlotState(StrEnum):
    """One of the k judgments a pair needs."""

    OPEN = "open"
    LEASED = "leased"
    DONE = "done"


class AssignmentStatus(StrEnum):
    """A pair shown to a rater."""

    LEASED = "leased"  # theirs to judge until the lease runs out
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    FLAGGED = "flagged"
    EXPIRED = "expired"  # the lease ran out and another rater took the slot
    REVOKED = "revoked"  # the slot is gone (k was lowered)


class PairStatus(StrEnum):
    ACTIVE = "active"  # in the queue
    FLAGGED = "flagged"  # out of the queue until an admin decides
    REMOVED = "removed"


class OverlapMode(Labelled):
    """How many raters a pair gets: always k, or more only where the first ones disagree."""

    FIXED = "fixed", "fixed: every pair gets k raters"
    ADAPTIVE = "adaptive", "adaptive: more raters only where they disagree"


class StoppingRule(Labelled):
    """When an adaptive pair is settled (docs/analytics.md, "Adaptive overlap")."""

    LEADER_SHARE = "leader_share", "votes: the leading choice has m votes and a share of s"
    POSTERIOR = "posterior", "weighted: the leading choice's posterior, raters weighed by accuracy"


# --- projects, batches, accounts -----------------------------------------------------------


class RationaleMode(Labelled):
    OFF = "off", "off: no rationale box"
    OPTIONAL = "optional", "optional"
    REQUIRED = "required", "required"


class PairingStrategy(Labelled):
    ALL = "all", "all: every two responses"
    RANDOM_K = "random_k", "random_k: a few random pairs per prompt"


class PairOrder(Labelled):
    """The order in which new pairs are opened to raters (pairs already started come first)."""

    SHUFFLED = "shuffled", "shuffled: prompts mixed, in an order drawn from the pairing seed"
    FILE = "file", "file order: as the pairs were imported"


class BatchSource(StrEnum):
    """Where an imported batch came from."""

    CLI = "cli"
    API = "api"
    WEB = "web"
    CLIENT = "client"
    # The batch that holds a conversation project's judged turns (one per project).
    CONVERSATION = "conversation"


class AccountRole(StrEnum):
    ADMIN = "admin"
    RATER = "rater"


class TurnRole(StrEnum):
    """Who speaks in a turn of a prompt's conversation (the system prompt is kept apart)."""

    USER = "user"
    ASSISTANT = "assistant"


# --- webhooks ------------------------------------------------------------------------------


class WebhookEvent(StrEnum):
    """What a webhook subscribes to."""

    BATCH_IMPORTED = "batch.imported"
    BATCH_COMPLETED = "batch.completed"
    EXPORT_READY = "export.ready"


# The test delivery an admin sends by hand; nobody subscribes to it.
PING_EVENT = "ping"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# --- live conversations ----------------------------------------------------------------------


class ProjectKind(StrEnum):
    PAIRS = "pairs"  # imported pairs, rated in the rater loop
    CONVERSATIONS = "conversations"  # live conversations (docs/conversations.md)


class OpenerSource(Labelled):
    """Where a conversation's first message comes from."""

    OWN = "own", "Raters write their own"
    IMPORTED = "imported", "Imported openers"
    BOTH = "both", "Both: raters choose"


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"  # the rater ended it
    COMPLETE = "complete"  # it reached the turn cap


class ReplyStatus(StrEnum):
    GENERATING = "generating"
    COMPLETE = "complete"
    FAILED = "failed"


class ReplyFailure(Labelled):
    """Why a reply failed; the label is what the rater is told (the detail is for admins)."""

    ERROR = "error", "The model's server answered with an error."
    TIMEOUT = "timeout", "The model took too long to answer."
    CONNECTION = "connection", "The connection to the model's server failed."
    EMPTY = "empty", "The model sent an empty reply."
    STOPPED = "stopped", "You stopped this reply before any text came."
    INTERRUPTED = "interrupted", "The server stopped while this reply was being written."
    CONFIGURATION = "configuration", "This model cannot be reached right now; an admin must fix it."
