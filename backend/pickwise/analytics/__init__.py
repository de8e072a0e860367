"""Statistics over collected preferences: rater quality, model leaderboards, what choices teach.

Everything here is a pure function over numpy arrays or small dataclasses; the service layer
reads the database and feeds these. Methods and formulas are described in docs/analytics.md.
"""
