"""The interaction engine: modes, scheduling at absolute deadlines, commands, events.

``setup`` decides what to play (config, overrides, model), ``engine`` plays it,
``schedule`` keeps time, ``events`` tells observers, ``runner`` runs it all with any
extra services (the web UI) on one asyncio loop until SIGINT/SIGTERM.
"""
