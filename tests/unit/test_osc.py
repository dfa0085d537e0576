"""OSC datagrams: the fast float encoder builds exactly what python-osc builds."""

import pytest
from pythonosc.osc_message import OscMessage

from antiphon.io.osc import floats, message


@pytest.mark.parametrize("values", [[0.5], [0.0, 1.0, 0.25], [0.1] * 8, [0.3] * 16])
def test_float_messages_match_python_osc(values):
    assert floats("/impsy", values) == message("/impsy", values)
    parsed = OscMessage(floats("/monitor/out", values))
    assert parsed.address == "/monitor/out"
    assert parsed.params == pytest.approx(values)
