"""I/O channels, one module each, all behind the small interface in ``channel``:
``osc``, ``midi``, ``websocket``, ``serial`` (CSV text), ``serialmidi`` (raw MIDI
bytes); ``mapping`` turns controls into MIDI messages and back for the MIDI-like ones.
"""
