"""Whether a rater may still work in a project: a member (or an admin), with an active
account, in a project that is not closed. Checked when a pair is leased and again, under the
lease's locks, when a choice, skip or flag comes in; removing a member, deactivating an
account or closing a project also ends the leases they held (``release_leases``)."""

from dataclasses import dataclass

from pickwise.core.errors import Conflict, Forbidden

NOT_A_MEMBER_MESSAGE = (
    "You are not (or no longer) a member of this project: nothing you send to it is stored. "
    "Ask the project's admin if this is a mistake."
)
DEACTIVATED_MESSAGE = "Your account has been deactivated: nothing you send is stored."
CLOSED_MESSAGE = (
    "This project is closed: it collects no more judgments, and nothing you send to it is stored."
)


class NotAMember(Forbidden):
    def __init__(self) -> None:
        super().__init__(NOT_A_MEMBER_MESSAGE)


class AccountDeactivated(Forbidden):
    def __init__(self) -> None:
        super().__init__(DEACTIVATED_MESSAGE)


class ProjectClosed(Conflict):
    def __init__(self) -> None:
        super().__init__(CLOSED_MESSAGE)


@dataclass(frozen=True)
class Standing:
    account_active: bool
    project_archived: bool
    member_or_admin: bool


def ensure_may_rate(standing: Standing) -> None:
    if not standing.account_active:
        raise AccountDeactivated()
    if not standing.member_or_admin:
        raise NotAMember()
    if standing.project_archived:
        raise ProjectClosed()
