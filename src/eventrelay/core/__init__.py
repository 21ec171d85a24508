"""The leaf of eventrelay: what every other package shares and nothing here imports back.

- ``spec``: the Segment spec (call types, field names, limits with their reasons);
- ``records``: the event, job and attempt records that travel ingest -> queue -> delivery -> log;
- ``outcome``: an attempt's outcome, its category and verdict;
- ``errors``: the one exception tree;
- ``external_id``: the External ID rule (workspace id, else the event's source);
- ``duration``: durations as written in configuration (``5s``, ``4h``, ``7d``);
- ``asgi``: the ASGI callable types.

Nothing in ``core`` imports another eventrelay package (``tests/test_layers.py`` checks it).
"""
