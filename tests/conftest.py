import importlib
import os
import pkgutil

import pytest

import stream_app
import stream_app.core


def _import_core() -> list[str]:
    """Every core module imported, so `compiled_modules` sees all that are compiled."""
    for module in pkgutil.iter_modules(stream_app.core.__path__, "stream_app.core."):
        importlib.import_module(module.name)
    return stream_app.compiled_modules()


def pytest_configure(config: pytest.Config) -> None:
    expected = os.environ.get("STREAM_APP_EXPECT_COMPILED")
    if expected is not None:  # scripts/test-compiled: the compiled build must be the one tested
        compiled = _import_core()
        if len(compiled) != int(expected):
            pytest.exit(
                f"STREAM_APP_EXPECT_COMPILED={expected}, but {len(compiled)} compiled modules were "
                f"imported ({', '.join(compiled) or 'none'}): the suite would test the pure build",
                returncode=2,
            )


def pytest_report_header(config: pytest.Config) -> list[str]:
    external = os.environ.get("STREAM_APP_TEST_BROKER")
    where = f"external broker at {external}" if external else "embedded broker (tansu)"
    compiled = _import_core()
    build = f"compiled core ({len(compiled)} mypyc modules)" if compiled else "pure Python"
    return [f"integration tests use: {where}", f"stream_app build: {build}"]
