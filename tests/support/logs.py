"""Every line the service logs during a block, at every level, as the JSON text Lambda would ship."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    from chalicelib.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous_stream = handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)
