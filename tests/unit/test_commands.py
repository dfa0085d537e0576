"""What a command or an input carries is checked before anything uses it: a number no
float can hold is refused like any other bad number, never a crash."""

from __future__ import annotations

import pytest

from antiphon.engine import commands, inputs
from antiphon.engine.commands import CommandError
from antiphon.limits import TIMESCALE


@pytest.mark.parametrize("value", [10**400, -(10**400), float("inf"), float("nan")])
def test_a_number_beyond_any_float_is_refused_like_any_bad_number(value):
    with pytest.raises(CommandError, match="timescale = .* is not allowed; use a finite"):
        commands.parse("/impsy/timescale", [value])
    assert TIMESCALE.problem(value) == "use a finite number"


def test_a_good_number_still_reads():
    assert commands.parse("/impsy/timescale", [2])[1] == 2.0


@pytest.mark.parametrize("value", [10**400, -(10**400), float("inf"), float("nan")])
def test_an_input_beyond_any_float_is_dropped_with_the_reason(value):
    vector, problem = inputs.checked([0.5, value], 2)
    assert vector is None and problem is not None and problem[0] == "nan"
    assert len(problem[1]) < 100  # the 401 digits are not quoted in full


def test_inputs_in_range_pass_and_out_of_range_are_clamped():
    assert inputs.checked([0, 0.5, 1], 3) == ([0.0, 0.5, 1.0], None)
    vector, problem = inputs.checked([2**70, -3], 2)
    assert vector == [1.0, 0.0] and problem is not None and problem[0] == "range"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (10**400, "values must be between 0 and 1"),
        (float("nan"), "values must be numbers"),
        (True, "values must be numbers"),
    ],
)
def test_a_play_page_value_beyond_any_float_is_refused(value, problem):
    from antiphon.web.pages.play import checked_values

    assert checked_values({"values": [0.5, value]}, 2) == problem
    assert checked_values({"values": [0.5, 1]}, 2) == [0.5, 1.0]
