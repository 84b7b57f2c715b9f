import os

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    external = os.environ.get("STREAM_APP_TEST_BROKER")
    where = f"external broker at {external}" if external else "embedded broker (tansu)"
    return f"integration tests use: {where}"
