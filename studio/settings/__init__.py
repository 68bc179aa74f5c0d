"""Settings modules: ``base`` (every environment; values from the environment) and ``test``.

This package imports nothing itself, so ``studio.settings.test`` can adjust the environment
before ``base`` reads it."""
