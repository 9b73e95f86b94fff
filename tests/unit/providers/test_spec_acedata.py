"""aioface against a tiny server that answers exactly Ace Data Cloud's OpenAPI spec examples (issue 20).

The spec (``analysis/specs/face-change.json`` of AceDataCloud/SDK) differs from the integration
guides: analyze answers 90 key points per face, detect-live ``{score, face_model_version}``, and a
synchronous swap past its ``timeout`` a 504 ``timeout`` with no task id. This server answers every
synchronous swap so; a swap sent with ``async: true`` gets a task id, and ``POST /face/tasks`` (the
platform's convention for its other services, a guess for face) gives the task record.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp import web

import aioface
from aioface import PollPolicy
from aioface.providers.acedata import GenerationTimeoutError
from aioface.providers.acedata import _adapter as ace
from aioface.providers.acedata import _facts as facts
from tests.support.files import files_in
from tests.support.servers import picture, serve

pytestmark = pytest.mark.anyio
SRC = "https://cdn.acedata.cloud/n1lmd8.png"
DST = "https://cdn.acedata.cloud/3np95r.png"
TRACE = "2efa9340-b21b-4e26-9e14-4aac95f343ab"

#: The spec's own example answer of /face/analyze (AceDataCloud/SDK analysis/specs/face-change.json), verbatim.
ANALYZE_EXAMPLE: dict[str, Any] = json.loads(
    '{"image_width":904,"image_height":602,"face_shape_set":[{"nose":[{"x":561,"y":312},{"x":559,"y":250},{"x":55'
    '1,"y":267},{"x":544,"y":283},{"x":536,"y":300},{"x":527,"y":317},{"x":544,"y":326},{"x":560,"y":329},{"x":57'
    '4,"y":326},{"x":589,"y":317},{"x":582,"y":300},{"x":574,"y":284},{"x":566,"y":267}],"mouth":[{"x":513,"y":36'
    '3},{"x":526,"y":375},{"x":541,"y":383},{"x":558,"y":386},{"x":574,"y":383},{"x":589,"y":375},{"x":600,"y":36'
    '3},{"x":586,"y":356},{"x":572,"y":350},{"x":559,"y":354},{"x":545,"y":350},{"x":529,"y":356},{"x":528,"y":36'
    '4},{"x":543,"y":366},{"x":558,"y":367},{"x":572,"y":365},{"x":586,"y":364},{"x":586,"y":363},{"x":572,"y":36'
    '4},{"x":558,"y":365},{"x":543,"y":364},{"x":528,"y":363}],"left_eye":[{"x":470,"y":242},{"x":481,"y":247},{"'
    'x":492,"y":249},{"x":504,"y":248},{"x":516,"y":245},{"x":506,"y":237},{"x":494,"y":233},{"x":481,"y":235}],"'
    'right_eye":[{"x":641,"y":245},{"x":630,"y":250},{"x":618,"y":251},{"x":606,"y":251},{"x":594,"y":248},{"x":6'
    '04,"y":238},{"x":617,"y":235},{"x":630,"y":236}],"left_pupil":[{"x":494,"y":239}],"right_pupil":[{"x":618,"y'
    '":242}],"face_profile":[{"x":432,"y":240},{"x":432,"y":266},{"x":434,"y":291},{"x":439,"y":316},{"x":445,"y"'
    ':341},{"x":456,"y":364},{"X":470,"Y":385},{"X":488,"Y":403},{"X":508,"Y":418},{"X":531,"Y":430},{"X":556,"Y"'
    ':434},{"X":580,"Y":429},{"X":602,"Y":417},{"X":621,"Y":402},{"X":638,"Y":384},{"X":652,"Y":364},{"X":662,"Y"'
    ':341},{"X":669,"Y":318},{"X":673,"Y":293},{"X":676,"Y":269},{"X":676,"Y":244}],"left_eye_brow":[{"x":447,"y"'
    ':217},{"x":466,"y":219},{"x":485,"y":221},{"x":504,"y":224},{"x":523,"y":226},{"x":507,"y":214},{"x":486,"y"'
    ':209},{"x":466,"y":208}],"right_eye_brow":[{"x":662,"y":223},{"x":644,"y":224},{"x":626,"y":225},{"x":608,"y'
    '":227},{"x":590,"y":227},{"x":606,"y":217},{"x":626,"y":213},{"x":646,"y":212}]}],"face_model_version":"3.0"'
    "}"
)


class Spec:
    """What the spec-shaped server saw."""

    def __init__(self, *, done_after: int = 2, score: object = 6) -> None:
        self.done_after = done_after
        self.score = score
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.polls: list[float] = []
        self.auth: dict[str, set[str]] = {}


def spec_server(img: bytes, spec: Spec) -> web.Application:
    def seen(request: web.Request, what: str, body: dict[str, Any] | None = None) -> None:
        spec.bodies.setdefault(what, []).append(body or {})
        spec.auth.setdefault(what, set()).add(request.headers.get("authorization", ""))

    async def face(request: web.Request) -> web.Response:
        op = request.match_info["op"]
        body = await request.json()
        seen(request, op, body)
        if op == "analyze":
            return web.json_response(ANALYZE_EXAMPLE)
        if op == "detect-live":
            return web.json_response({"score": spec.score, "face_model_version": "3.0"})
        if op == "swap":
            if "forbidden" in body.get("source_image_url", ""):
                msg = "Sorry! Our Al moderators feel your prompt might be against our community standards."
                return web.json_response(
                    {"error": {"code": "forbidden", "message": msg}, "trace_id": TRACE}, status=403
                )
            if body.get("async") is True:
                return web.json_response({"success": True, "task_id": "t-42"})
            error = {"code": "timeout", "message": "Timeout to generate the image."}
            return web.json_response({"error": error, "trace_id": TRACE}, status=504)  # every sync swap
        return web.json_response({"image_url": f"http://{request.host}/files/r.png"})

    async def tasks(request: web.Request) -> web.Response:
        body = await request.json()
        seen(request, "tasks", body)
        spec.polls.append(time.monotonic())
        record: dict[str, Any] = {"id": body["id"], "created_at": 1.0, "request": spec.bodies["swap"][-1]}
        if len(spec.polls) < spec.done_after:
            return web.json_response(record)
        answer = {
            "success": True,
            "task_id": body["id"],
            "image_url": f"http://{request.host}/files/r.png",
            "image_width": "96",  # the spec types these as strings
            "image_height": "80",
        }
        return web.json_response({**record, "finished_at": 2.0, "response": answer})

    async def file(request: web.Request) -> web.Response:
        seen(request, "file")
        return web.Response(body=img, content_type="image/png")

    app = web.Application()
    app.router.add_post("/face/tasks", tasks)
    app.router.add_post("/face/{op}", face)
    app.router.add_get("/files/r.png", file)
    return app


def _client(base: str, **kw: Any) -> aioface.Client:
    return aioface.Client(acedata_token="spec-token-1", acedata_base_url=base, persist_limits=False, env={}, **kw)


# ------------------------------------------------------------------------------ 1. analyze, detect-live
async def test_analyze_is_typed_key_points_from_the_spec_example() -> None:
    spec = Spec()
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        a = await c.acedata.analyze(SRC, mode=1, face_model_version="3.0", need_rotate_detection=0)
    assert spec.bodies["analyze"] == [
        {"image_url": SRC, "mode": 1, "face_model_version": "3.0", "need_rotate_detection": 0}
    ]
    assert (a.image_width, a.image_height, a.face_model_version) == (904, 602, "3.0")
    (face,) = a.faces
    lengths = {part: len(getattr(face, part)) for part in aioface._types.FACE_PARTS}
    assert lengths == {
        "face_profile": 21,
        "left_eye": 8,
        "right_eye": 8,
        "left_eye_brow": 8,
        "right_eye_brow": 8,
        "left_pupil": 1,
        "right_pupil": 1,
        "nose": 13,
        "mouth": 22,
    }
    assert len(face.points) == 90
    assert face.left_pupil[0] == (494.0, 239.0) and face.face_profile[-1] == (676.0, 244.0)  # an {"X", "Y"} point
    assert a["face_shape_set"] == ANALYZE_EXAMPLE["face_shape_set"]  # the provider's JSON kept
    columns, rows = a.table()
    assert rows == [[1, 90, "432,208 244x226", "904x602", "3.0"]] and "key points" in columns
    doc = a.to_json()
    assert doc["face_num"] == 1 and doc["faces"][0]["nose"][0] == {"x": 561.0, "y": 312.0}
    assert "face_shape_set" not in doc  # the points once, typed
    more = facts.analysis({**ANALYZE_EXAMPLE, "angle": 12}).to_json()
    assert more["angle"] == 12  # --json is whole: fields aioface does not know are kept


@pytest.mark.parametrize("score", [6, 6.5, "6.5"])
async def test_detect_live_is_the_score_and_decides_nothing(score: float | str) -> None:
    spec = Spec(score=score)
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        live = await c.acedata.detect_live(SRC)
        judged = await c.acedata.detect_live(SRC, face_model_version="3.0", threshold=6.2)
    assert live.score == float(score) and isinstance(live.score, float) and live.face_model_version == "3.0"
    assert live.is_live is None and "is_live" not in live.to_json()
    assert facts.liveness({"score": 1, "face_model_version": "3.0", "extra": "kept"}).to_json()["extra"] == "kept"
    assert judged.is_live is (float(score) >= 6.2) and judged.threshold == 6.2
    assert spec.bodies["detect-live"][1] == {"image_url": SRC, "face_model_version": "3.0"}


# ------------------------------------------------------------------------------ 2. swaps, tasks
async def test_a_default_swap_is_async_one_request_then_task_polls(tmp_path: Any) -> None:
    spec = Spec(done_after=2)
    async with serve(spec_server(picture(), spec)) as base, _client(base, poll=PollPolicy(floor=0.05)) as c:
        r = await c.acedata.swap(tmp_path / "s", source=SRC, target=DST, timeout=90.5)
    assert spec.bodies["swap"] == [{"source_image_url": SRC, "target_image_url": DST, "timeout": 90.5, "async": True}]
    assert spec.bodies["tasks"] == [{"id": "t-42", "action": "retrieve"}] * 2
    assert r.task_id == "t-42" and r.path is not None and files_in(tmp_path) == ["s.png"]
    assert (r.width, r.height) == (96, 80) and r.extra["image_width"] == 96  # the spec's strings, read
    assert spec.auth["file"] == {""}  # the token never goes to the file host


async def test_a_sync_swap_past_its_timeout_is_a_typed_timeout_not_retried(tmp_path: Any) -> None:
    spec = Spec()
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        with pytest.raises(GenerationTimeoutError) as ei:
            await c.acedata.swap(tmp_path / "s", source=SRC, target=DST, timeout=2, sync=True)
    e = ei.value
    assert (e.status, e.code, e.request_id, e.provider) == (504, "timeout", TRACE, "acedata")
    assert "Timeout to generate the image." in str(e) and "sync=True" in str(e)
    assert len(spec.bodies["swap"]) == 1 and "async" not in spec.bodies["swap"][0]  # sent once: it may be billed
    assert "tasks" not in spec.bodies and files_in(tmp_path) == []


async def test_forbidden_is_the_moderation_refusal(tmp_path: Any) -> None:
    spec = Spec()
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        with pytest.raises(aioface.PermissionDeniedError) as ei:
            await c.acedata.swap(tmp_path / "s", source="https://x.example/forbidden.png", target=DST)
    assert (ei.value.status, ei.value.code) == (403, "forbidden") and "moderators" in ei.value.message
    assert len(spec.bodies["swap"]) == 1


async def test_result_polls_the_same_way(tmp_path: Any) -> None:
    spec = Spec(done_after=3)
    spec.bodies["swap"] = [{}]
    async with serve(spec_server(picture(), spec)) as base, _client(base, poll=PollPolicy(floor=0.01)) as c:
        r = await c.acedata.result("t-42", tmp_path / "later")
    assert r.task_id == "t-42" and len(spec.polls) == 3 and files_in(tmp_path) == ["later.png"]


def test_task_records_done_failed_or_running() -> None:
    answer = {"success": True, "task_id": "t", "image_url": "https://x/r.png"}
    assert ace.task_outcome({"id": "t", "response": answer}, "t") == answer
    assert ace.task_outcome({"id": "t"}, "t") is None
    assert ace.task_outcome({"id": "t", "status": "processing"}, "t") is None
    assert ace.task_outcome({"id": "t", "state": "queued", "response": {"progress": 10}}, "t") is None
    failures: list[dict[str, Any]] = [
        {"id": "t", "status": "failed"},
        {"id": "t", "response": {"success": False, "error": {"code": "api_error", "message": "no face"}}},
        {"id": "t", "response": {"success": False}},
        {"id": "t", "finished_at": 5, "success": False},
        {"id": "t", "response": {"state": "Cancelled"}},
    ]
    for record in failures:
        with pytest.raises(aioface.TaskFailedError) as ei:
            ace.task_outcome(record, "t")
        assert ei.value.task_id == "t", record
    with pytest.raises(aioface.ProtocolError):  # says it succeeded, but holds nothing to download
        ace.task_outcome({"id": "t", "status": "succeeded"}, "t")
    with pytest.raises(aioface.ProtocolError):
        ace.task_outcome({"id": "t", "finished_at": 5, "response": {"success": True}}, "t")


# --------------------------------------------------------------------------- 6. politeness
async def test_task_polls_keep_the_providers_floor_scaled_by_time_scale(tmp_path: Any) -> None:
    """Ace's SDK polls every 3 s: no two polls of one task closer than that (here /10 by time_scale),
    however eager the schedule; an explicit ``floor`` lowers it."""
    eager = PollPolicy(initial=0.01, max_interval=0.02, learn=False, jitter=0)
    spec = Spec(done_after=3)
    async with serve(spec_server(picture(), spec)) as base, _client(base, poll=eager, time_scale=10) as c:
        await c.acedata.swap(tmp_path / "a", source=SRC, target=DST)
    gaps = [b - a for a, b in zip(spec.polls, spec.polls[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.29, gaps
    spec = Spec(done_after=3)
    lowered = PollPolicy(initial=0.01, max_interval=0.02, learn=False, jitter=0, floor=0.0)
    async with serve(spec_server(picture(), spec)) as base, _client(base, poll=lowered, time_scale=10) as c:
        await c.acedata.swap(tmp_path / "b", source=SRC, target=DST)
    gaps = [b - a for a, b in zip(spec.polls, spec.polls[1:], strict=False)]
    assert len(gaps) == 2 and max(gaps) < 0.2, gaps


# ------------------------------------------------------------------------------ 3. parameters
async def test_every_documented_parameter_is_sent(tmp_path: Any) -> None:
    spec = Spec()
    rect = {"x": 10, "y": 20.5, "width": 100, "height": 120}
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        await c.acedata.change_gender(SRC, [1, 0], tmp_path / "g", face_rects=[rect, rect])
        await c.acedata.beautify(SRC, tmp_path / "b", smoothing=50, whitening=0.5, face_lifting=10, eye_enlarging=70)
        await c.acedata.change_age(SRC, [60], tmp_path / "a", face_rects=[rect])  # guide only: kept
    assert spec.bodies["change-gender"] == [
        {"image_url": SRC, "gender_infos": [{"gender": 1, "face_rect": rect}, {"gender": 0, "face_rect": rect}]}
    ]
    assert spec.bodies["beautify"] == [
        {"image_url": SRC, "smoothing": 50, "whitening": 0.5, "face_lifting": 10, "eye_enlarging": 70}
    ]
    assert spec.bodies["change-age"] == [{"image_url": SRC, "age_infos": [{"age": 60, "face_rect": rect}]}]


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda c: c.acedata.beautify(SRC, smoothing="soft"), "smoothing"),
        (lambda c: c.acedata.beautify(SRC, eye_enlarging=True), "eye_enlarging"),
        (lambda c: c.acedata.analyze(SRC, mode="fast"), "mode"),
        (lambda c: c.acedata.analyze(SRC, face_model_version=""), "face_model_version"),
        (lambda c: c.acedata.analyze(SRC, need_rotate_detection=[1]), "need_rotate_detection"),
        (lambda c: c.acedata.change_gender(SRC, [1], face_rects=[{"x": 1, "y": 2, "width": 3}]), "face_rects"),
        (lambda c: c.acedata.change_gender(SRC, [1], face_rects=[{"x": 1, "y": 2, "width": 3, "height": "4"}]),
         "face_rects[0].height"),
        (lambda c: c.acedata.change_gender(SRC, [1, 0], face_rects=[{"x": 1, "y": 2, "width": 3, "height": 4}]),
         "face_rects"),
        (lambda c: c.acedata.detect_live(SRC, threshold="high"), "threshold"),
        (lambda c: c.acedata.swap(source=SRC, target=DST, timeout="60"), "timeout"),
    ],
)  # fmt: skip
async def test_bad_parameters_are_typed_errors_before_anything_is_sent(call: Any, param: str) -> None:
    spec = Spec()
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        with pytest.raises(aioface.InvalidRequestError) as ei:
            await call(c)
    assert ei.value.param == param and spec.bodies == {}


async def test_no_invented_bounds(tmp_path: Any) -> None:
    """The spec gives no ranges: big, negative or fractional numbers are the provider's to judge."""
    spec = Spec()
    async with serve(spec_server(picture(), spec)) as base, _client(base) as c:
        await c.acedata.beautify(SRC, tmp_path / "b", smoothing=1000, whitening=-5)
        await c.acedata.analyze(SRC, mode=7.5)
        rect = {"x": -1, "y": 0, "width": 1e6, "height": 0.5}
        await c.acedata.change_gender(SRC, [0], tmp_path / "g", face_rects=[rect])
    assert spec.bodies["beautify"][0]["smoothing"] == 1000 and spec.bodies["analyze"][0]["mode"] == 7.5
    assert spec.bodies["change-gender"][0]["gender_infos"][0]["face_rect"] == rect
