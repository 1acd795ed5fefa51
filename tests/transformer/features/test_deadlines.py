import asyncio
import time

import pytest

from transformer.features.deadlines import Deadlines

pytestmark = pytest.mark.unit


async def _op(d: Deadlines, seconds: float) -> str:
    with d.bound():
        await asyncio.sleep(seconds)
    return "done"


def test_an_operation_past_its_deadline_times_out_within_one_tick():
    async def run():
        d = Deadlines(0.1, tick_s=0.02)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await _op(d, 5)
        elapsed = time.monotonic() - t0
        assert 0.1 <= elapsed < 0.1 + 0.02 + 0.05  # deadline + one tick (+ scheduling)
        # the cancellation was withdrawn: the task is not left cancelling
        assert asyncio.current_task().cancelling() == 0
        assert await _op(d, 0.01) == "done"  # and the next operation is unaffected
        await d.close()

    asyncio.run(run())


def test_operations_within_their_deadline_finish_and_the_watchdog_stops():
    async def run():
        d = Deadlines(0.2, tick_s=0.01)
        results = await asyncio.gather(*(_op(d, 0.05) for _ in range(50)))
        assert results == ["done"] * 50
        assert d._due == {}
        await asyncio.sleep(0.05)
        assert d._watch is None  # nothing in flight: no wake-ups

    asyncio.run(run())


def test_only_the_late_operations_of_many_time_out():
    async def run():
        d = Deadlines(0.1, tick_s=0.01)
        out = await asyncio.gather(
            *(_op(d, 0.02 if i % 2 else 1.0) for i in range(10)), return_exceptions=True
        )
        assert [isinstance(x, TimeoutError) for x in out] == [i % 2 == 0 for i in range(10)]
        await d.close()

    asyncio.run(run())


def test_a_cancellation_from_outside_is_not_turned_into_a_timeout():
    async def run():
        d = Deadlines(5, tick_s=0.01)
        task = asyncio.create_task(_op(d, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert d._due == {}
        await d.close()

    asyncio.run(run())


def test_an_outer_asyncio_timeout_still_sees_its_own_expiry():
    """The watchdog's cancellation is withdrawn; a surrounding asyncio.timeout that expires
    later still fires as a TimeoutError of its own."""

    async def run():
        d = Deadlines(0.05, tick_s=0.01)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                with pytest.raises(TimeoutError, match="deadline"):
                    await _op(d, 5)
                await asyncio.sleep(5)  # the outer timeout ends this
        await d.close()

    asyncio.run(run())
