"""The pytest plugin misused: marker arguments it cannot use, two event loops. Each a clear error,
never a silent ignore or a hang (run in a pytest subprocess, bounded in time)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

RUN = ("-p", "no:cacheprovider", "--strict-markers", "-p", "no:timeout")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=source)
    return pytester.runpytest_subprocess(*RUN, *args, timeout=90)


def test_a_positional_client_marker_is_refused_by_name(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.mark.aioface_client({"facestudio_key": ""})
        async def test_it(aioface_client):
            assert "facestudio=no key" in repr(aioface_client)
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aioface_client*keyword arguments*"])


def test_an_unknown_client_option_is_refused_by_name(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.mark.aioface_client(facestudio_kye="x")
        async def test_it(aioface_client):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aioface_client*facestudio_kye*"])


@pytest.mark.parametrize(
    ("marker", "named"),
    [
        ('faults={"task_fail": 1.0}', "*faults*Faults*dict*"),
        ('time_scale="fast"', "*time_scale*float*str*"),
        ("strict=1", "*strict*bool*int*"),
        ('keys=["k"]', "*keys*dict*list*"),
        ("ailab_credits=2.5", "*ailab_credits*int*float*"),
    ],
)
def test_a_wrongly_typed_emulator_field_is_refused_by_name(pytester: pytest.Pytester, marker: str, named: str) -> None:
    result = run(
        pytester,
        f"""
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.mark.aioface_emulator({marker})
        async def test_it(aioface_client, tmp_path):
            await aioface_client.facestudio.generate(tmp_path / "f", age=30)
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*aioface_emulator{named}"])


def test_well_typed_fields_still_pass(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from aioface.emulator import Faults

        pytestmark = pytest.mark.anyio

        @pytest.mark.aioface_emulator(time_scale=600, task_duration=0.01, strict=False, faults=Faults(), seed=None,
                                      keys={"k": "basic"}, acedata_limits=((5, 1.0),))
        @pytest.mark.aioface_client(facestudio_key="")
        async def test_it(aioface_emulator, aioface_client):
            assert aioface_emulator.config.time_scale == 600
        """,
    )
    result.assert_outcomes(passed=1)


def test_anyio_marks_under_pytest_asyncio_auto_mode_fail_fast_not_hang(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    result = run(
        pytester,
        """
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_it(aioface_client, tmp_path):
            await aioface_client.facestudio.generate(tmp_path / "f", age=30)
        """,
        "-o",
        "asyncio_mode=auto",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*asyncio_mode*auto*anyio*"])
