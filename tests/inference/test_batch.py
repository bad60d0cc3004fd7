"""Batch inference keeps going past bad cases, reports each with its reason, and reruns only what is missing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bundle.inference import FAILURES_FILE
from tests.conftest import REAL_DATA_DIR
from tests.data.bad_inputs import BAD_KINDS, KIND_OPTIONS, LABEL_KINDS, write_bad_inputs, write_good_inputs

from .test_inference_config import run_inference

pytestmark = pytest.mark.slow


def test_bad_cases_are_reported_and_good_ones_written(tmp_path: Path, random_checkpoint: Path) -> None:
    """Synthetic bad files (tests/data/bad_inputs.py) beside good ones, and a real MR image where ../shared is
    present: the bad are listed with their reasons, the good written, the job exits non-zero."""
    corpus = write_bad_inputs(tmp_path / "bad")
    image_kinds = [k for k in BAD_KINDS if k not in LABEL_KINDS and k not in KIND_OPTIONS]
    good = write_good_inputs(tmp_path / "good", n=2)
    mr = REAL_DATA_DIR / "other" / "ts-mr-sm_volume.nii.gz"
    entries = [{"image": str(corpus[k][0])} for k in image_kinds] + [{"image": e["image"]} for e in good]
    if mr.is_file():  # the synthetic "mr_like" case is checked without it
        entries.append({"image": str(mr)})
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"test": entries}))
    out = tmp_path / "out"

    with pytest.raises(RuntimeError) as info:  # MONAI wraps the error raised by the config's finalize step
        run_inference(datalist, out, random_checkpoint)
    assert "case(s) failed" in str(info.value.__cause__)

    failures = json.loads((out / FAILURES_FILE).read_text())
    by_file = {f["file"]: f["error"] for f in failures}
    for kind in image_kinds:
        path, phrase = corpus[kind]
        assert str(path) in by_file, kind
        assert phrase in by_file[str(path)] or "same case name" in by_file[str(path)], (kind, by_file[str(path)])
    assert "mr_like" in image_kinds
    if mr.is_file():
        assert "do not look like CT" in by_file[str(mr)]
    segs = {}
    for entry in good:
        case = Path(entry["image"]).name.split(".nii")[0]
        segs[case] = out / case / f"{case}_seg.nii.gz"
        assert segs[case].is_file() and str(entry["image"]) not in by_file
    assert not list(out.rglob(".*.tmp")), "a temporary file was left behind"

    # a rerun skips the finished cases (files untouched) and still reports the bad ones
    stamps = {case: os.stat(p).st_mtime_ns for case, p in segs.items()}
    with pytest.raises(RuntimeError):
        run_inference(datalist, out, random_checkpoint)
    assert {case: os.stat(p).st_mtime_ns for case, p in segs.items()} == stamps
    # --overwrite redoes them
    with pytest.raises(RuntimeError):
        run_inference(datalist, out, random_checkpoint, overwrite=True)
    assert all(os.stat(p).st_mtime_ns > stamps[case] for case, p in segs.items())


def test_a_clean_batch_exits_normally(tmp_path: Path, random_checkpoint: Path) -> None:
    good = write_good_inputs(tmp_path / "good", n=1)
    run_inference(Path(good[0]["image"]), tmp_path / "out", random_checkpoint)
    assert json.loads((tmp_path / "out" / FAILURES_FILE).read_text()) == []
