"""deployments.logging: JSON lines on stderr with event, ISO timestamp, level and bound request ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from core.settings import LogSettings
from deployments.logging import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_with_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="INFO", json=True))
    structlog.contextvars.bind_contextvars(request_id="req-1")
    log = structlog.get_logger("oof.test")

    log.info("moment.emitted", kind="S2E")
    log.debug("too.quiet")
    logging.getLogger("asyncpg.pool").warning("from %s", "stdlib")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("shard.failed")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["moment.emitted", "from stdlib", "shard.failed"]
    first = lines[0]
    assert first["level"] == "info"
    assert first["kind"] == "S2E"
    assert first["request_id"] == "req-1"
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert lines[1]["logger"] == "asyncpg.pool"
    assert lines[2]["exception"][0]["exc_type"] == "ValueError"
    assert "locals" not in json.dumps(lines[2])


@pytest.mark.usefixtures("restore_logging")
def test_configuring_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings())
    configure_logging(LogSettings(level="DEBUG", json=False))

    structlog.get_logger("oof.test").debug("console.line", x=1)

    err = capsys.readouterr().err
    assert err.count("console.line") == 1
    assert "x=1" in err
