"""The providers' official Python SDKs (``acedatacloud``, ``ailabtools-sdk``: clients nobody here
wrote) against the emulator (issue 20): every face call of the Ace SDK with its documented
parameters, an ``async: true`` swap followed by the SDK's own task polling, the platform upload,
and AILab's submit, ``wait_for_task`` and credits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

# Both SDKs are in the dev extra (the README's install line): clients nobody here wrote.
import acedatacloud
import ailabtools
import anyio
import pytest
from acedatacloud._runtime.tasks import task_status  # the SDK's own reading of a task record

from aioface.emulator import Emulator, EmulatorConfig, Faults
from tests.support.files import image_bytes

pytestmark = pytest.mark.anyio
URL = "https://cdn.acedata.cloud/n1lmd8.png"
TARGET = "https://cdn.acedata.cloud/3np95r.png"
RECT = {"x": 10, "y": 20, "width": 100, "height": 120}


@pytest.fixture
async def ace(emu: Emulator) -> AsyncIterator[Any]:
    client = acedatacloud.AsyncAceDataCloud(
        "sdk-token-1", base_url=emu.url, platform_base_url=emu.url, max_retries=0, timeout=10
    )
    try:
        yield client
    finally:
        await client.close()


async def test_ace_sdk_every_face_call(emu: Emulator, ace: Any) -> None:
    face = ace.face
    analysis = await face.analyze(image_url=URL, mode=0, face_model_version="3.0", need_rotate_detection=1)
    (shape,) = analysis["face_shape_set"]
    assert sum(len(points) for points in shape.values()) == 90 and analysis["face_model_version"] == "3.0"
    assert {analysis["image_width"], analysis["image_height"]} == {512}
    live = await face.detect_live(image_url=URL, face_model_version=3.0)
    assert set(live) == {"score", "face_model_version"} and isinstance(live["score"], int)
    images = [
        await face.beautify(image_url=URL, smoothing=50, whitening=30, face_lifting=20, eye_enlarging=10),
        await face.change_age(image_url=URL, age_infos=[{"age": 60}]),
        await face.change_gender(image_url=URL, gender_infos=[{"gender": 1, "face_rect": RECT}]),
        await face.cartoon(image_url=URL),
        await face.swap(source_image_url=URL, target_image_url=TARGET, timeout=30.5),
    ]
    assert all(str(r["image_url"]).startswith(f"{emu.url}/files/") for r in images)
    assert images[-1]["success"] is True and images[-1]["task_id"]
    assert emu.stats["acedata_requests"] == 7


async def test_ace_sdk_async_swap_then_its_own_task_polling(emu: Emulator, ace: Any) -> None:
    first = await ace.face.swap(source_image_url=URL, target_image_url=TARGET, **{"async": True})
    task_id = first["task_id"]
    assert "image_url" not in first
    with anyio.fail_after(10):
        while True:
            state = await ace.tasks.get(task_id, service="face")
            status = task_status(state)
            assert status != "failed", state
            if status == "succeeded":
                break
            await anyio.sleep(0.02)
    assert state["id"] == task_id and state["response"]["image_url"].startswith(f"{emu.url}/files/")
    again = await ace.face.swap(source_image_url=URL, target_image_url=TARGET, **{"async": True})
    waited = await ace.tasks.wait(again["task_id"], service="face", poll_interval=0.05, max_wait=10)
    assert task_status(waited) == "succeeded" and emu.stats["acedata_polls"] >= 2


async def test_ace_sdk_upload_then_swap(emu: Emulator, ace: Any) -> None:
    data = image_bytes("PNG", color="blue")
    up = await ace.files.upload(data, filename="me.png")
    url = up["url"]
    r = await ace.face.swap(source_image_url=url, target_image_url=TARGET)
    assert r["image_url"] and emu.stats["acedata_uploads"] == 1
    assert emu.state.files[url.rsplit("/", 1)[1]].data == data


@pytest.mark.aioface_emulator(swap_duration=1.0, time_scale=600, task_duration=0.05)
async def test_ace_sdk_sees_the_specs_errors(emu: Emulator, ace: Any) -> None:
    with pytest.raises(acedatacloud.APIError) as ei:  # a sync swap past its timeout: 504 timeout
        await ace.face.swap(source_image_url=URL, target_image_url=TARGET, timeout=0.2)
    assert (ei.value.status_code, ei.value.code) == (504, "timeout")
    emu.state.config.faults.schedule["acedata"] = ["403"] * 20
    with pytest.raises(acedatacloud.APIError) as ei:  # moderation
        await ace.face.swap(source_image_url=URL, target_image_url=TARGET)
    assert (ei.value.status_code, ei.value.code) == (403, "forbidden")


@pytest.fixture
async def ailab(emu: Emulator) -> AsyncIterator[Any]:
    client = ailabtools.AILabClient("sdk-key-1", base_url=emu.url, timeout=10)
    try:
        yield client
    finally:
        await client.aclose()


async def test_ailab_sdk_submit_wait_and_credits(emu: Emulator, ailab: Any) -> None:
    submitted = await ailab.portrait.portraitAIFaceSwap(
        {"imageTarget": image_bytes("JPEG"), "imageTemplate": image_bytes("PNG", color="blue")}
    )
    task_id = submitted["task_id"]
    done = await ailab.wait_for_task(task_id, interval=0.02, timeout=10)
    assert done["task_status"] == 2 and done["data"]["image"].startswith(f"{emu.url}/files/")
    credits = await ailab.common.commonQueryCredits({})
    assert credits["error_code"] == 0 and isinstance(credits["data"][0]["balance"], float)


async def test_ailab_sdk_sees_status_3_as_failed() -> None:
    async with Emulator(EmulatorConfig(task_duration=0.02, faults=Faults(task_fail=1.0))) as emu:
        client = ailabtools.AILabClient("sdk-key-1", base_url=emu.url, timeout=10)
        try:
            submitted = await client.portrait.portraitAIFaceSwap(
                {"imageTarget": image_bytes("JPEG"), "imageTemplate": image_bytes("JPEG")}
            )
            with pytest.raises(RuntimeError, match="failed"):
                await client.wait_for_task(submitted["task_id"], interval=0.02, timeout=10)
        finally:
            await client.aclose()
