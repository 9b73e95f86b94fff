"""The command line on the spec's shapes (issue 20): analyze and detect-live show what the provider
said (a readable table, ``--json`` whole) and take their parameters; swap takes local files, float
timeouts and ``--sync``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import EmulatorProcess, aioface
from tests.support.files import files_in, image_bytes

URL = "https://cdn.acedata.cloud/n1lmd8.png"


@pytest.fixture(scope="module")
def emulator(fast_emulator: EmulatorProcess) -> EmulatorProcess:
    return fast_emulator


def test_analyze_and_detect_live_show_the_specs_facts(emulator: EmulatorProcess, tmp_path: Path) -> None:
    env = emulator.env(tmp_path)
    r = aioface("analyze", URL, "--mode", "1", "--face-model-version", "3.0", "--need-rotate-detection", "0", "--json",
                env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    face = doc["faces"][0]
    assert sum(len(face[part]) for part in ("face_profile", "left_eye", "right_eye", "left_eye_brow",
               "right_eye_brow", "left_pupil", "right_pupil", "nose", "mouth")) == 90  # fmt: skip
    assert (doc["image_width"], doc["image_height"], doc["face_model_version"]) == (512, 512, "3.0")
    r = aioface("analyze", URL, env=env)
    assert r.returncode == 0, r.stderr
    assert "key points" in r.stdout and "90" in r.stdout and "512x512" in r.stdout
    r = aioface("detect-live", URL, "--threshold", "50", "--json", env=env)
    assert r.returncode == 0, r.stderr
    live = json.loads(r.stdout)
    assert live["is_live"] is (live["score"] >= 50) and live["threshold"] == 50 and live["face_model_version"]
    r = aioface("detect-live", URL, env=env)
    assert r.returncode == 0 and "score" in r.stdout and "is_live" not in r.stdout
    r = aioface("analyze", URL, "--mode", '"fast"', env=env)
    assert r.returncode == 2 and "mode" in r.stderr  # refused before anything is sent


def test_swap_of_a_local_file(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """(The hand-written ``swap`` command still takes an integer ``--timeout`` and has no ``--sync``:
    changing it needs the CLI module, out of this change's reach.)"""
    face = tmp_path / "me.png"
    face.write_bytes(image_bytes("PNG", color="blue"))
    out = tmp_path / "out"
    before = emulator.stats().get("acedata_uploads", 0)
    r = aioface("swap", "--source", str(face), "--target", URL, "--timeout", "60", "--out", str(out), "--name", "s",
                env=emulator.env(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert files_in(out) == ["s.png"] and emulator.stats()["acedata_uploads"] == before + 1


def test_batch_swap_sync_and_float_timeout(emulator: EmulatorProcess, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"id": "a", "op": "swap", "source": URL, "target": URL, "timeout": 60.5},
        {"id": "s", "op": "swap", "source": URL, "target": URL, "timeout": 30.5, "sync": True},
        {"id": "b", "op": "beautify", "image_url": URL, "smoothing": 40, "eye_enlarging": 5.5},
        {"id": "g", "op": "change_gender", "image_url": URL, "genders": [1],
         "face_rects": [{"x": 1, "y": 2.5, "width": 30, "height": 40}]},
    ]  # fmt: skip
    jobs.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "out"
    r = aioface("batch", str(jobs), "--out", str(out), "-q", env=emulator.env(tmp_path))
    assert r.returncode == 0, r.stderr + r.stdout
    recs = {x["id"]: x for x in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert all(x["ok"] for x in recs.values()), recs
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "op": "swap", "source": URL, "target": URL, "sync": "yes"}) + "\n")
    r = aioface("batch", str(bad), "--out", str(tmp_path / "o2"), "-q", env=emulator.env(tmp_path))
    assert r.returncode == 1 and "sync must be true or false" in r.stderr  # a bad line, nothing sent
