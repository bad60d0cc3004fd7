"""configs/train.yaml end to end on CT phantoms: every stage, weights passed on, frozen parts, resume, MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bundle.engines import STAGE_ORDER, latest_checkpoint

from .bundle_runs import META, REPO, TRAIN_CONFIGS, run_training_stage, train_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cascade_run(tmp_path_factory: pytest.TempPathFactory, phantom_dir: Path) -> Path:
    """The four stages in order, two iterations each, with the small networks."""
    root = tmp_path_factory.mktemp("cascade")
    for stage in STAGE_ORDER:
        run_training_stage(root, phantom_dir, stage)
    return root / "models"


def _load(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_stage_writes_its_model_and_the_final_one(cascade_run: Path) -> None:
    for stage in ("coarse", "2d", "hybrid"):
        assert (cascade_run / stage / "model.pt").is_file(), stage
        assert latest_checkpoint(str(cascade_run / stage)) is not None, stage
    final = _load(cascade_run / "model.pt")
    assert any(k.startswith("coarse.") for k in final) and any(k.startswith("fine.dense3d.") for k in final)


def test_each_stage_starts_from_the_previous_one_and_trains_only_its_part(cascade_run: Path) -> None:
    coarse, two_d, hybrid, joint = (
        _load(cascade_run / name) for name in ("coarse/model.pt", "2d/model.pt", "hybrid/model.pt", "model.pt")
    )
    # the coarse network is trained once and carried through every later stage unchanged
    assert _same(_part(coarse, "coarse."), _part(two_d, "coarse."))
    assert _same(_part(coarse, "coarse."), _part(joint, "coarse."))
    # 2d stage trains the 2D branch only
    assert not _same(_part(coarse, "fine.dense2d."), _part(two_d, "fine.dense2d."))
    assert _same(_part(coarse, "fine.dense3d."), _part(two_d, "fine.dense3d."))
    # hybrid: the 2D branch (weights and BatchNorm statistics) does not change, the 3D branch and HFF do
    assert _same(_part(two_d, "fine.dense2d."), _part(hybrid, "fine.dense2d."))
    assert not _same(_part(two_d, "fine.dense3d."), _part(hybrid, "fine.dense3d."))
    assert not _same(_part(two_d, "fine.hff."), _part(hybrid, "fine.hff."))
    # joint fine-tuning moves both branches
    assert not _same(_part(hybrid, "fine.dense2d."), _part(joint, "fine.dense2d."))
    assert not _same(_part(hybrid, "fine.dense3d."), _part(joint, "fine.dense3d."))


def test_a_stage_without_its_predecessor_says_which_to_run(tmp_path: Path, phantom_dir: Path) -> None:
    with pytest.raises(Exception) as info:  # MONAI wraps the error of a config expression in a RuntimeError
        run_training_stage(tmp_path, phantom_dir, "hybrid")
    chain, error = [], info.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    assert any("Run the previous stage first" in m and str(Path("models") / "2d" / "model.pt") in m for m in chain)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path, phantom_dir: Path) -> None:
    """Iteration, learning rate, weights and optimizer state after epoch 2: straight through vs stopped + resumed."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    run_training_stage(straight, phantom_dir, "coarse", epochs=2, val_interval=2)
    run_training_stage(interrupted, phantom_dir, "coarse", epochs=2, val_interval=2, stop_after_epoch=1)
    assert latest_checkpoint(str(interrupted / "models" / "coarse")).endswith("checkpoint_epoch=1.pt")
    resumed = run_training_stage(interrupted, phantom_dir, "coarse", epochs=2, val_interval=2, resume=True)

    trainer = resumed.parser.get_parsed_content("train#trainer")
    assert (trainer.state.epoch, trainer.state.iteration) == (2, 4)
    a = torch.load(latest_checkpoint(str(straight / "models" / "coarse")), weights_only=True)
    b = torch.load(latest_checkpoint(str(interrupted / "models" / "coarse")), weights_only=True)
    assert a["trainer"]["iteration"] == b["trainer"]["iteration"] == 4
    assert a["lr_scheduler"] == b["lr_scheduler"]
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(b["optimizer"]["param_groups"][0]["lr"])
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-5, atol=1e-6, msg=key)


def test_mlflow_store_holds_params_metrics_and_the_best_checkpoint(tmp_path: Path, phantom_dir: Path) -> None:
    from mlflow.tracking import MlflowClient

    run_training_stage(tmp_path, phantom_dir, "coarse", tracking="mlflow", experiment_name="liver_test")
    uri = f"sqlite:///{tmp_path / 'eval' / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("liver_test")
    (run,) = client.search_runs([experiment.experiment_id])
    params = run.data.params
    assert params["stage"] == "coarse" and params["network_size"] == "small"
    assert params["patch_size"] == "[64, 64, 8]" and params["num_training"] == "2" and params["num_validation"] == "2"
    assert "train_loss" in run.data.metrics and "val_mean_dice" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2  # per iteration
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "model.pt" in artifacts


def test_the_training_entry_of_older_command_lines(tmp_path: Path, phantom_dir: Path) -> None:
    """`monai.bundle run training ...` (the form older MONAI and MONAI Label use) runs the same job."""
    overrides = train_overrides(tmp_path, phantom_dir, stage="coarse")
    args = [f"--{k}={v}" for k, v in overrides.items()]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "monai.bundle", "run", "training", f"--config_file={TRAIN_CONFIGS}"]
    result = subprocess.run(
        [*command, f"--meta_file={META}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "models" / "coarse" / "model.pt").is_file()
