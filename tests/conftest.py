"""Shared test setup: strict JAX on several CPU devices, and small helpers.

XLA_FLAGS must be set before jax is first imported anywhere, so it is set here, at the
top of the first module pytest loads. Four host devices let sharded code run for real.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MOTHTUI_RUNS", "/nonexistent-test-guard")  # tests must pass --runs / tmp dirs
# The commands keep JAX's compiled programs in the user's cache dir; tests never write there (a test
# that wants a cache names a temporary one in $JAX_COMPILATION_CACHE_DIR or $MOTHTUI_COMPILATION_CACHE).
os.environ.setdefault("MOTHTUI_COMPILATION_CACHE", "off")

import pytest  # noqa: E402


@pytest.fixture
def runs_dir(tmp_path):
    """An empty run store in a temporary directory."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _own_settings_file(tmp_path, monkeypatch):
    """Each test has its own settings file (absent until written): never the user's, never shared."""
    monkeypatch.setenv("MOTHTUI_SETTINGS", str(tmp_path / "settings" / "settings.toml"))
