"""pgkeel's benchmarks: run with ``make bench`` (``python -m bench``), never by ``make test``.

Each module here defines ``TITLE`` and ``run() -> str`` returning a Markdown section. Timings are
reported as ratios against a baseline measured in the same run, because the machines are shared
and noisy; absolute numbers are given for context only.
"""
