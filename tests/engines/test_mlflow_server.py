"""`--tracking mlflow` against a real `mlflow server` on 127.0.0.1, the run read back over its REST API only.

The other MLflow test (test_training.py) uses the local sqlite store through MLflow's Python client; this one starts
the server a user would watch training in, runs the README's command line in a subprocess with
``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``, and checks what the server holds with plain HTTP requests: run
status, parameters, the per-iteration loss against what the trainer printed, and the best checkpoint and executed
config uploaded through the server's artifact proxy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .bundle_runs import META, REPO, TRAIN_CONFIGS, train_overrides

pytestmark = pytest.mark.slow

EXPERIMENT = "liver_server_test"
EPOCHS = 2
ITERATIONS_PER_EPOCH = 2  # two training phantoms, one patch each, batch size 1 (bundle_runs.train_overrides)
SERVER_START_TIMEOUT_S = 120.0  # an upper bound for a loaded machine; on an idle one the server answers in ~10 s
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> bytes:
    """GET ``url`` (or POST ``body`` as JSON); the response body, or an ``AssertionError`` with the server's reply."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{url}: HTTP {error.code} {error.read()[:2000]!r}") from error


def _api(base: str, endpoint: str, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
    """One call of MLflow's REST API 2.0, e.g. ``_api(base, "runs/search", {"experiment_ids": ["1"]})``."""
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return json.loads(_http(url, body) or b"{}")


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group (uvicorn and its workers), SIGKILL whatever is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_healthy(process: subprocess.Popen, base: str, stderr: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}; stderr:\n{stderr.read_text()[-4000:]}")
        try:
            if _http(f"{base}/health", timeout=2.0).strip() == b"OK":
                return
        except (OSError, AssertionError):  # refused, reset or not yet routed: still starting
            pass
        time.sleep(0.25)
    pytest.fail(
        f"mlflow server gave no /health in {SERVER_START_TIMEOUT_S:.0f} s; stderr:\n{stderr.read_text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` with a sqlite store and proxied artifacts in a temporary folder; yields its base URL.

    One uvicorn worker and no job runner (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: its huey consumers serve
    GenAI jobs only) keep it light on a shared CPU. Its own session, so teardown stops the whole process group.
    """
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--serve-artifacts", "--artifacts-destination", str(folder / "artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {**os.environ, **QUIET_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    stderr = folder / "server.stderr"
    with open(folder / "server.stdout", "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=err, start_new_session=True)
    try:
        _wait_until_healthy(process, base, stderr)
        yield base
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def tracked_run(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory, phantom_dir: Path) -> dict[str, Any]:
    """The coarse stage, two epochs of two iterations, trained by the README's command line against the server.

    One validation, after the last epoch. ``output_dir`` is left to train.yaml (``<bundle_root>/eval``): MONAI
    names the executed config's artifact by appending to that expression, which a literal path would break.
    Returns the run as ``runs/search`` gives it, plus ``"root"``: the folder the training wrote to, and ``"log"``:
    what the command printed.
    """
    root = tmp_path_factory.mktemp("tracked")
    overrides = train_overrides(
        root, phantom_dir, stage="coarse", epochs=EPOCHS, val_interval=EPOCHS, experiment_name=EXPERIMENT
    )
    del overrides["output_dir"]
    command = [sys.executable, "-m", "monai.bundle", "run", "training", f"--config_file={TRAIN_CONFIGS}"]
    args = [f"--meta_file={META}", "--tracking=mlflow", *(f"--{k}={v}" for k, v in overrides.items())]
    env = {**os.environ, **QUIET_ENV, "MLFLOW_TRACKING_URI": mlflow_server}
    result = subprocess.run(
        [*command, *args], cwd=REPO, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (root / "eval" / "mlruns.db").exists(), "tracked to the local sqlite store, not to the server"

    experiment = _api(mlflow_server, "experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    runs = _api(mlflow_server, "runs/search", {"experiment_ids": [experiment["experiment_id"]]}).get("runs", [])
    assert len(runs) == 1, runs
    return {**runs[0], "root": root, "log": result.stdout + result.stderr}


def test_the_run_finished_with_the_bundles_parameters(tracked_run: dict[str, Any]) -> None:
    assert tracked_run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in tracked_run["data"]["params"]}
    assert params["stage"] == "coarse" and params["network_name"] == "hdenseunet" and params["network_size"] == "small"
    assert params["optimizer"] == "Adam"  # configs/demo.yaml replaces train.yaml's SGD
    assert float(params["learning_rate"]) == pytest.approx(1e-3)  # the rate Adam was built with, not train.yaml's
    assert params["patch_size"] == "[64, 64, 8]" and params["epochs"] == str(EPOCHS)
    assert params["num_training"] == "2" and params["num_validation"] == "2" and params["fold"] == "0"


def test_the_loss_has_one_point_per_iteration_and_dice_one_per_validation(
    mlflow_server: str, tracked_run: dict[str, Any]
) -> None:
    run_id, log = tracked_run["info"]["run_id"], tracked_run["log"]

    def history(key: str) -> list[dict[str, Any]]:
        return _api(mlflow_server, "metrics/get-history", run_id=run_id, metric_key=key).get("metrics", [])

    served = {m["step"]: m["value"] for m in history("train_loss")}
    assert sorted(served) == list(range(1, EPOCHS * ITERATIONS_PER_EPOCH + 1))
    # StatsHandler's lines, e.g. "Epoch: 2/2, Iter: 1/2 -- train_loss: 0.8636": the same losses, to 4 decimals
    printed = {
        (int(epoch) - 1) * ITERATIONS_PER_EPOCH + int(iteration): float(value)
        for epoch, iteration, value in re.findall(r"Epoch: (\d+)/\d+, Iter: (\d+)/\d+ -- train_loss: ([\d.]+)", log)
    }
    assert printed.keys() == served.keys(), log[-3000:]
    assert all(served[step] == pytest.approx(printed[step], abs=1e-4) for step in served), (served, printed)
    (dice,) = history("val_mean_dice")
    (printed_dice,) = re.findall(r"Metrics -- val_mean_dice: ([\d.]+)", log)
    assert dice["step"] == EPOCHS and dice["value"] == pytest.approx(float(printed_dice), abs=1e-4), dice


def test_the_best_checkpoint_and_the_executed_config_are_served(
    mlflow_server: str, tracked_run: dict[str, Any]
) -> None:
    run_id = tracked_run["info"]["run_id"]
    assert tracked_run["info"]["artifact_uri"].startswith("mlflow-artifacts:/"), "artifacts not proxied by the server"
    files = {f["path"]: f for f in _api(mlflow_server, "artifacts/list", run_id=run_id).get("files", [])}

    def download(path: str) -> bytes:
        return _http(f"{mlflow_server}/get-artifact?" + urllib.parse.urlencode({"path": path, "run_uuid": run_id}))

    local = tracked_run["root"] / "models" / "coarse" / "model.pt"  # the stage's best model (MLflowRunExtras)
    assert "model.pt" in files, files
    assert int(files["model.pt"]["file_size"]) == local.stat().st_size
    assert hashlib.sha256(download("model.pt")).digest() == hashlib.sha256(local.read_bytes()).digest()
    (config,) = (path for path in files if path.startswith("config_") and path.endswith(".json"))
    executed = json.loads(download(config))  # MONAI's MLFlowHandler logs the config as the run executed it
    assert executed["stage"] == "coarse" and executed["experiment_name"] == EXPERIMENT
