"""pickwise benchmarks: `python -m bench <name> [--quick]` or `python -m bench all`.

Each benchmark runs on a fresh Postgres, prints pickwise's figures beside limits measured in
the same run on the same server, and writes bench/results/<name>.json. See
docs/benchmarks.md.
"""
