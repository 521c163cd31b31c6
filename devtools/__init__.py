"""Developer tooling shared by the test suite (tests/) and the benchmarks (bench/).

- `processes`: real server processes (daphne/uvicorn, Celery workers, Redis)
  against a given database, as a deployment runs them.
- `devservers`: developer servers of the official-account SDKs, on loopback.

Neither tests nor bench is a library the other should import, so what both need
lives here. No app imports this package (import-linter holds them to it), and it
is not part of the installed distribution.
"""
