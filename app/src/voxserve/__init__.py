"""voxserve: a small speech-analysis web service.

Kept import-light on purpose: `python3 -m voxserve.healthcheck` imports this package every
30 seconds, and must not pay for numpy/torch/SQLAlchemy.
"""

__version__ = "0.1.0"
