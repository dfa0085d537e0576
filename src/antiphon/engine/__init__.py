"""The interaction engine: modes, scheduling at absolute deadlines, commands, events.

``setup`` decides what to play (config, overrides, model), ``engine`` plays it,
``schedule`` keeps time, ``events`` tells observers, ``recording`` writes the log and
``runner`` runs it all with any extra services on one asyncio loop until SIGINT/SIGTERM.

What a service beside the engine (the web UI) uses, and nothing else:

- ``runner.perform(setup, services)``: each service is ``async def service(engine)``,
  started after the engine and cancelled before it stops;
- ``engine.status()``: a JSON-ready snapshot (mode, model, rates, last input/output,
  channels and their labels, recent warnings, timing);
- ``engine.subscribe()``: a bounded stream of ``EngineEvent`` (``as_dict()`` for JSON);
- ``engine.command("/impsy/mode", "battle")``: the same handler as OSC commands;
- ``await engine.reload(model=None)``: re-read config.toml and the model, or keep
  playing the old setup and raise AntiphonError saying what is wrong.
"""
