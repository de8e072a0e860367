"""A conversation over the API, end to end: four turns, each reply from the fake models."""


from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM


async def test_four_turns(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=4, system_prompt="Be brief.")
    conversation = await world.start("Hello there")
    turn = conversation["turns"][0]
    assert turn["left"]["status"] == "complete", turn
    assert turn["can_vote"]
    conversation = await world.vote(conversation, "left")
    for n in range(2, 5):
        conversation = await world.send(conversation, f"Message {n}")
        conversation = await world.vote(conversation, "right")
    assert conversation["status"] == "complete"
    print(fake_llm.calls[-1])
