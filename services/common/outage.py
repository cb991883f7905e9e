"""Recognise a backing service being down, so callers answer 503 rather than 500."""

from __future__ import annotations


def is_outage(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    try:
        from kombu.exceptions import OperationalError as KombuOperationalError
        from redis.exceptions import ConnectionError as RedisConnectionError

        if isinstance(exc, (KombuOperationalError, RedisConnectionError)):
            return True
    except ImportError:  # pragma: no cover - celery is a dependency
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))
