from django.apps import AppConfig


def cache_parsed_statements_by_length_only() -> None:
    """psycopg parses each statement for its placeholders in Python (a regular expression
    over the text), and keeps the result per text only for texts of at most 4,096 bytes
    *and* 50 parameters. A step batch's INSERT or UPDATE of three rows or more has more
    than 50 (21 columns a step row), so it was parsed again on every execution: about a
    tenth of a worker's CPU in ``tests/bench/bench_io.py`` (py-spy). Its texts come in a
    few shapes (one per number of rows), and the length bound still keeps the cache small
    (psycopg's LRU of 128), so the parameter bound is lifted. A psycopg whose private
    module lacks either constant is left as it is: slower, never wrong."""
    from psycopg import _queries

    length_bound = getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", None)
    if length_bound is not None and hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS"):
        _queries.MAX_CACHED_STATEMENT_PARAMS = length_bound


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings

        from . import schema  # noqa: F401  (registers the API-token scheme with the docs)
        from .tracing import configure_tracing

        configure_tracing(settings.FLOWGATE.get("TRACING_EXPORTER", "none"))
        cache_parsed_statements_by_length_only()
