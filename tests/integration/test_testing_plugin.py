"""The pytest plugin (aioface.testing), run the way a user runs it: pytest on a test file in a
folder with no conftest, the plugin found through its ``pytest11`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aioface.emulator import Emulator, EmulatorConfig

USER_TESTS = """
import pytest

import aioface
from aioface.emulator import EmulatorConfig, Faults

pytestmark = pytest.mark.anyio


async def test_defaults(aioface_client, aioface_emulator, tmp_path):
    face = await aioface_client.facestudio.generate(tmp_path / "face", age=30)
    assert face.path.exists() and face.width
    assert aioface_emulator.stats["facestudio_images"] == 1
    assert aioface_emulator.config.time_scale == 600


@pytest.mark.aioface_emulator(time_scale=120, task_duration=0.02, keys={"pro-key": "professional"})
async def test_marker(aioface_emulator):
    assert aioface_emulator.config.time_scale == 120
    assert aioface_emulator.config.task_duration == 0.02
    assert aioface_emulator.config.keys == {"pro-key": "professional"}


@pytest.mark.aioface_emulator(faults=Faults(schedule={"facestudio": ["429", "429"]}))
async def test_faults_are_retried(aioface_client, aioface_emulator, tmp_path):
    face = await aioface_client.facestudio.generate(tmp_path / "face", age=30)
    assert face.path.exists()
    assert aioface_emulator.stats["fault_429"] == 2


@pytest.mark.aioface_client(facestudio_key="")
async def test_client_options(aioface_client):
    assert "facestudio=no key" in repr(aioface_client)


@pytest.mark.aioface_emulator(strict=True)
async def test_typed_errors(aioface_client, tmp_path):
    with pytest.raises(aioface.AuthenticationError):
        await aioface_client.facestudio.generate(tmp_path / "face", age=30)
"""

OVERRIDE_TESTS = """
import pytest

from aioface.emulator import EmulatorConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
def aioface_emulator_config():
    return EmulatorConfig(time_scale=30, default_tier="professional")


async def test_fixture_override(aioface_emulator):
    assert aioface_emulator.config.time_scale == 30
    assert aioface_emulator.config.default_tier == "professional"


@pytest.mark.aioface_emulator(time_scale=90)
async def test_marker_beats_fixture(aioface_emulator):
    assert (aioface_emulator.config.time_scale, aioface_emulator.config.default_tier) == (90, "professional")
"""


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_user_test_file_without_conftest(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "test_override.py").write_text(textwrap.dedent(OVERRIDE_TESTS))
    assert not (tmp_path / "conftest.py").exists()
    proc = run_pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 passed" in proc.stdout


def test_a_failing_user_test_fails_and_bad_marker_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(
        textwrap.dedent("""
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_wrong(aioface_emulator):
            assert aioface_emulator.stats["facestudio_images"] == 1

        @pytest.mark.aioface_emulator(time_scael=2)
        async def test_typo(aioface_emulator):
            pass
        """)
    )
    proc = run_pytest(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "time_scael" in proc.stdout and "1 failed" in proc.stdout and "1 error" in proc.stdout


def test_with_pytest_asyncio_auto_mode(tmp_path: Path) -> None:
    pytest.importorskip("pytest_asyncio")
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent("""
        async def test_generate(aioface_client, aioface_emulator, tmp_path):
            face = await aioface_client.facestudio.generate(tmp_path / "face", age=30)
            assert face.path.exists() and aioface_emulator.stats["facestudio_images"] == 1
        """)
    )
    proc = run_pytest(tmp_path, "-p", "no:anyio", "-o", "asyncio_mode=auto")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the project's own tests use the fixtures --------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.aioface_emulator(time_scale=60)
async def test_plugin_fixtures_in_this_project(aioface_emulator: Emulator, aioface_client: object) -> None:
    assert isinstance(aioface_emulator.config, EmulatorConfig)
    assert aioface_emulator.config.time_scale == 60
    assert aioface_emulator.url in repr(aioface_emulator.client().base_urls)
