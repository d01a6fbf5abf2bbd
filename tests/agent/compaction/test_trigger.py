"""Where the chain starts: at 80 % of the limit while steps are small, at 75 % after big steps
(the room above the trigger must hold the next step and the summary request), back to 80 %
once the big steps are 8 steps old. Tokens are characters here (exactness does not matter)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from gemma_agent.agent.compaction import (
    AutoCompaction,
    CompactionChain,
    CompactionContext,
    CompactionState,
    ConversationStates,
    DropOldest,
)
from gemma_agent.agent.messages import Message, UserMessage
from gemma_agent.errors import ConfigError

LIMIT = 10_000


def count(history: Sequence[Message]) -> int:
    return sum(len(m.content) for m in history if isinstance(m, UserMessage))


async def run(steps: Sequence[int]) -> list[tuple[int, int]]:
    """Grow a history by ``steps`` characters per step; (tokens before, after) per compaction."""
    chain = CompactionChain([DropOldest()])
    history: list[Message] = [UserMessage(content="t" * 500)]
    done = []
    for i, size in enumerate(steps):
        history.append(UserMessage(content=str(i % 10) * size))
        ctx = CompactionContext(count_tokens=count, limit_tokens=LIMIT)
        compaction = await chain.compact(history, ctx)
        if compaction is not None:
            done.append((compaction.event.tokens_before, compaction.event.tokens_after))
            history = compaction.history
        assert count(history) <= LIMIT
    return done


async def test_small_steps_compact_at_80_percent() -> None:
    done = await run([100] * 200)  # 1 % of the limit per step
    assert done
    for before, after in done:
        assert 8_000 <= before < 8_100 and after <= 5_000


async def test_big_steps_compact_at_75_percent() -> None:
    # 1,200-token steps: 80 % would leave 2,000, less than two steps, so 75 % it is.
    done = await run([1_200] * 40)
    assert done
    for before, _ in done:
        assert 7_500 <= before < 8_000


async def test_trigger_returns_to_80_percent_once_big_steps_are_old() -> None:
    # Two big steps early, then small ones: after 8 small steps the trigger is 80 % again.
    done = await run([1_500, 1_500] + [100] * 100)
    assert done
    before, _ = done[0]
    assert 8_000 <= before < 8_100


async def test_one_big_step_after_small_ones_lowers_the_next_trigger() -> None:
    chain = CompactionChain([DropOldest()])
    ctx = CompactionContext(count_tokens=count, limit_tokens=LIMIT)
    history: list[Message] = [UserMessage(content="t" * 500)]
    for i in range(50):  # small steps up to 7,000 tokens
        history.append(UserMessage(content=str(i % 10) * 130))
        assert await chain.compact(history, ctx) is None
    assert chain.threshold(LIMIT, history) == pytest.approx(8_000)
    history.append(UserMessage(content="b" * 1_300))  # 8,300 - 7,000: a big step
    assert chain.threshold(LIMIT, history) == pytest.approx(8_000)  # not seen yet
    compaction = await chain.compact(history, ctx)
    assert compaction is not None  # over 80 % anyway
    assert chain.threshold(LIMIT, history) == pytest.approx(7_500)  # 10,000 - 2 x 1,300 < 7,500


async def test_sessions_sharing_a_chain_keep_their_own_step_sizes() -> None:
    # An Agent's sessions share its compactor: a big session next to a small one must not
    # look like one huge step.
    chain = CompactionChain([DropOldest()])
    ctx = CompactionContext(count_tokens=count, limit_tokens=LIMIT)
    small: list[Message] = [UserMessage(content="s" * 500)]
    big: list[Message] = [UserMessage(content="b" * 6_000)]
    for i in range(20):
        small.append(UserMessage(content=str(i % 10) * 100))
        big.append(UserMessage(content=str(i % 10) * 50))
        assert await chain.compact(small, ctx) is None
        assert await chain.compact(big, ctx) is None
        assert chain.threshold(LIMIT, small) == pytest.approx(8_000)
        assert chain.threshold(LIMIT, big) == pytest.approx(8_000)


def test_trigger_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="min_trigger"):
        AutoCompaction(trigger=0.8, min_trigger=0.85)
    with pytest.raises(ConfigError, match="min_trigger"):
        AutoCompaction(target=0.5, min_trigger=0.4)
    # A trigger below the default floor moves the floor with it.
    chain = AutoCompaction(trigger=0.6, target=0.4)
    assert chain.min_trigger == 0.6
    assert AutoCompaction().trigger == 0.8 and AutoCompaction().min_trigger == 0.75


async def test_a_conversation_is_known_by_its_first_message_id_not_by_object_identity() -> None:
    # The same conversation in new objects (a resumed session) keeps its step sizes; another
    # conversation, even one whose first message reuses a freed object's memory, starts fresh.
    chain = CompactionChain([DropOldest()])
    ctx = CompactionContext(count_tokens=count, limit_tokens=LIMIT)
    history: list[Message] = [UserMessage(id="task-1", content="t" * 500)]
    for size in (100, 100, 1_300):
        history.append(UserMessage(content="x" * size))
        assert await chain.compact(history, ctx) is None
    assert chain.threshold(LIMIT, history) == pytest.approx(7_500)
    resumed = [m.model_copy() for m in history]
    assert resumed[0] is not history[0]
    assert chain.threshold(LIMIT, resumed) == pytest.approx(7_500)
    other: list[Message] = [UserMessage(id="task-2", content="t" * 500)]
    del history, resumed
    assert chain.threshold(LIMIT, other) == pytest.approx(8_000)


async def test_an_explicit_state_is_used_instead_of_the_chains_own() -> None:
    chain = CompactionChain([DropOldest()])
    state = CompactionState()
    ctx = CompactionContext(count_tokens=count, limit_tokens=LIMIT, state=state)
    history: list[Message] = [UserMessage(content="t" * 500)]
    for size in (100, 1_300):
        history.append(UserMessage(content="x" * size))
        assert await chain.compact(history, ctx) is None
    assert list(state.growth) == [1_300] and state.last_tokens == 1_900  # first call: a size
    assert chain.states.get(history) is None  # nothing kept in the chain
    assert chain.threshold(LIMIT, history, state) == pytest.approx(7_500)
    assert chain.threshold(LIMIT, history) == pytest.approx(8_000)


def test_conversation_states_keep_the_newest() -> None:
    states = ConversationStates(size=2)
    a, b, c = ([UserMessage(id=k, content=k)] for k in "abc")
    sa = states.setdefault(a)
    states.setdefault(b)
    assert states.setdefault(a) is sa  # a is the most recent now
    states.setdefault(c)  # forgets b
    assert states.get(a) is sa and states.get(b) is None and states.get(c) is not None
    assert states.get([]) is None and states.setdefault([]) is None
