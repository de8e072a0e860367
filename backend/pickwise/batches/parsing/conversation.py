"""The prompt of a record: `prompt` text or a `messages` conversation, plus a system prompt."""

from collections.abc import Mapping
from typing import Any

from pickwise.batches.parsing.fields import Problem, check_known_fields, read_list, read_text
from pickwise.batches.parsing.records import Message
from pickwise.vocabulary import TurnRole

# A messages list may open with the system prompt; the turns after it are TurnRoles.
SYSTEM_ROLE = "system"
ROLES = (SYSTEM_ROLE, *TurnRole)
Conversation = tuple[str | None, tuple[Message, ...]]


def read_conversation(record: Mapping[str, Any], problems: list[Problem]) -> Conversation | None:
    """Returns (system prompt, turns ending on a user turn), or None after adding problems."""
    system = read_text(record, "system", "", problems, required=False)
    if "prompt" in record and "messages" in record:
        problems.append(("messages", "give either prompt or messages, not both"))
        return None
    if "prompt" in record:
        text = read_text(record, "prompt", "", problems, required=True)
        return None if text is None else (system, (Message(TurnRole.USER, text),))
    if "messages" not in record:
        problems.append((None, "needs a prompt (text) or messages (a list of turns)"))
        return None
    parsed = _read_messages(record, problems)
    if parsed is None:
        return None
    message_system, turns = parsed
    if message_system is not None and "system" in record:
        problems.append(("system", "is given twice: here and as the first message"))
        return None
    return (system if message_system is None else message_system), turns


def _read_messages(record: Mapping[str, Any], problems: list[Problem]) -> Conversation | None:
    items = read_list(record, "messages", "", problems)
    if items is None:
        return None
    found_before = len(problems)
    roles_and_texts: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        path = f"messages[{index}]"
        if not isinstance(item, dict):
            problems.append((path, "must be an object with a role and a content"))
            continue
        check_known_fields(item, ("role", "content"), path, problems)
        role = read_text(item, "role", path, problems, required=True)
        content = read_text(item, "content", path, problems, required=True)
        if role is not None and role not in ROLES:
            problems.append(
                (f"{path}.role", f'must be "system", "user" or "assistant", not "{role}"')
            )
        elif role is not None and content is not None:
            roles_and_texts.append((role, content))
    if len(problems) > found_before:
        return None
    return _ordered_turns(roles_and_texts, problems)


def _ordered_turns(
    roles_and_texts: list[tuple[str, str]], problems: list[Problem]
) -> Conversation | None:
    system: str | None = None
    first_turn = 0
    if roles_and_texts[0][0] == SYSTEM_ROLE:
        system = roles_and_texts[0][1]
        first_turn = 1
    turns: list[Message] = []
    expected = TurnRole.USER
    for index in range(first_turn, len(roles_and_texts)):
        role, content = roles_and_texts[index]
        if role == SYSTEM_ROLE:
            problems.append(
                (f"messages[{index}].role", "system is only allowed as the first message")
            )
            return None
        if role != expected:
            problems.append(
                (
                    f"messages[{index}].role",
                    f'must be "{expected}": after the optional system message, turns alternate '
                    "user, assistant, user, …",
                )
            )
            return None
        turns.append(Message(expected, content))
        expected = TurnRole.ASSISTANT if expected == TurnRole.USER else TurnRole.USER
    if not turns:
        problems.append(("messages", "needs a user message after the system message"))
        return None
    if turns[-1].role != TurnRole.USER:
        problems.append(
            (
                f"messages[{len(roles_and_texts) - 1}].role",
                "the conversation must end with a user message, the turn the responses answer",
            )
        )
        return None
    return system, tuple(turns)
