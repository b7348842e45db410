"""Shared test setup: strict JAX on several CPU devices, and small helpers.

XLA_FLAGS must be set before jax is first imported anywhere, so it is set here, at the
top of the first module pytest loads. Four host devices let sharded code run for real.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MOTHTUI_RUNS", "/nonexistent-test-guard")  # tests must pass --runs / tmp dirs
# The commands keep JAX's compiled programs in the user's cache dir; tests never write there: the
# settings' cache is off, and the session's own cache below is named in $JAX_COMPILATION_CACHE_DIR
# (which comes first; a test of the user-level cache removes it from its processes' environment).
os.environ.setdefault("MOTHTUI_COMPILATION_CACHE", "off")

# One persistent JAX compilation cache for the whole session, this process and every engine, plan
# and simulator process the tests start (they inherit the environment): a program compiled once is
# loaded from disk by every later process instead of compiled again. Only speed changes. A fresh
# directory per session (removed at the end), so nothing carries over between runs of the suite.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="mothtui-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import contextlib  # noqa: E402
import fcntl  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

# The suite runs on two workers (pytest-xdist, `-n 2` in pyproject.toml). A test that measures
# time (a plan's prediction against a real run) is marked `alone`: it runs while the other worker
# runs nothing, through a readers-writer lock on a file every worker shares (each test holds it
# shared from its set-up to its tear-down, an `alone` test exclusively).
if "MOTHTUI_TEST_LOCK" not in os.environ:
    _lock_dir = tempfile.mkdtemp(prefix="mothtui-test-lock-")
    os.environ["MOTHTUI_TEST_LOCK"] = os.path.join(_lock_dir, "machine.lock")
    atexit.register(shutil.rmtree, _lock_dir, ignore_errors=True)


@contextlib.contextmanager
def _machine(alone: bool):
    with open(os.environ["MOTHTUI_TEST_LOCK"], "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            if alone:
                _wait_for_quiet_cpus()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _wait_for_quiet_cpus(busy_below: float = 0.25, timeout_s: float = 60.0) -> None:
    """Wait (at most `timeout_s`) until the CPUs are mostly idle for a second: an engine or app job a
    test started in its own session may outlive the test that held the lock. Linux's /proc/stat; a
    no-op elsewhere."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle, total = sample()
    except (OSError, ValueError, IndexError):
        return
    deadline, quiet = time.monotonic() + timeout_s, 0
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        idle2, total2 = sample()
        busy = 1 - (idle2 - idle) / max(total2 - total, 1)
        idle, total = idle2, total2
        quiet = quiet + 1 if busy < busy_below else 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Set-up (module fixtures included), call and tear-down of a test, under the machine's lock."""
    with _machine(item.get_closest_marker("alone") is not None):
        return (yield)


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
