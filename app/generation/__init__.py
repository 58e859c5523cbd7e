"""Generation: model registry, sampling, prompt window, job runners and story events.

Nothing here imports torch at module import time; the web code reaches torch only
through this package.
"""
