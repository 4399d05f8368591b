from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.helpers import LogCapture, capture_logs


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str], app: object) -> Iterator[LogCapture]:
    """The server's JSON log lines; taken after ``app`` so its set-up is not undone."""
    yield from capture_logs(capsys)
