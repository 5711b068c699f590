"""The bench tier: API requests, writes, time and memory of the hub at 100 to 10,000 accounts.

Run it with ``python -m tests.bench`` (``tox -e bench``, ``make bench``); it prints a markdown
table and writes ``docs/benchmark.md``. See ``tests/bench/__main__.py`` for the options.
``tox -e bench`` runs it, the latency bench and the cold-hook bench (``tests/bench/suite.py``).
"""
