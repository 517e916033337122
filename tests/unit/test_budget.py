"""The request's time budget: a cap below API Gateway's 29 s, or what the Lambda has left."""

from __future__ import annotations

import pytest
from sfbroker.budget import RESERVE_SECONDS, current_budget, new_budget, request_time


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_cap_bounds_a_long_running_lambda() -> None:
    clock = Clock()
    budget = new_budget(25, remaining_ms=900_000, clock=clock)
    assert budget.remaining() == 25
    clock.now += 30
    assert budget.remaining() == 0


def test_a_lambda_with_less_time_left_gets_less() -> None:
    budget = new_budget(25, remaining_ms=10_000, clock=Clock())
    assert budget.remaining() == pytest.approx(10 - RESERVE_SECONDS)
    assert new_budget(25, remaining_ms=1_000, clock=Clock()).remaining() == 0


def test_a_request_keeps_one_budget_however_often_it_asks() -> None:
    with request_time(remaining_ms=5_000):
        first = current_budget(25)
        second = current_budget(25)
    assert first.deadline == second.deadline
    assert first.remaining() <= 5 - RESERVE_SECONDS
    assert current_budget(25).remaining() > 5  # outside the request: a fresh one
