"""configs/multi_gpu_train.yaml: two CPU processes (torchrun, gloo) train the coarse stage on CT phantoms.

One torchrun job (about 20-35 s here) proves: both ranks train and exit with code 0, rank 0 alone writes the checkpoints
and logs (StatsHandler, MLflow), the checkpoints load into the single-process network (no ``module.`` prefix), the
ranks train on different volumes and hold the same weights at the start and the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from monai.handlers import StatsHandler, from_engine

from bundle.engines import TrainerCheckpoint
from bundle.engines import distributed as ddp_helpers
from bundle.networks import LiverTumorCascade

from .bundle_runs import META, REPO, TRAIN_CONFIGS, train_overrides

MULTI_GPU_CONFIG = str(REPO / "configs" / "multi_gpu_train.yaml")
WORLD_SIZE = 2

# Test-only overlay: every rank records what it trained on and its parameters (RankRecord below).
RECORD_OVERLAY = """\
+train#handlers:
- _target_: tests.engines.test_multi_gpu.RankRecord
  network: $@network.module
  path: "$@output_dir + '/rank' + os.environ['RANK'] + '.pt'"
"""


class RankRecord:
    """Test-only train handler: the parameters when training starts and ends, and a fingerprint (image and label
    sums) of every training batch, saved per rank to ``path``."""

    def __init__(self, network: torch.nn.Module, path: str) -> None:
        self.network, self.path = network, path
        self.record: dict = {"batches": []}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._parameters, "start")
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._batch)
        engine.add_event_handler(Events.COMPLETED, self._parameters, "end")
        engine.add_event_handler(Events.COMPLETED, self._save)

    def _parameters(self, engine: Engine, when: str) -> None:
        self.record[when] = {k: v.detach().clone() for k, v in self.network.named_parameters()}

    def _batch(self, engine: Engine) -> None:
        images, labels = from_engine(["image", "label"])(engine.state.output)  # what the trainer trained on
        self.record["batches"].append((float(sum(i.sum() for i in images)), float(sum(x.sum() for x in labels))))

    def _save(self, engine: Engine) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.record, self.path)


def _torchrun(root: Path, data: Path, *extra_args: str, **overrides: object) -> subprocess.CompletedProcess:
    (root / "record.yaml").write_text(RECORD_OVERLAY)
    configs = [*TRAIN_CONFIGS, MULTI_GPU_CONFIG, str(root / "record.yaml")]
    args = [f"--{k}={v}" for k, v in train_overrides(root, data, stage="coarse", **overrides).items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}"]
    command += ["-m", "monai.bundle", "run", f"--config_file={configs}", f"--meta_file={META}", *args, *extra_args]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, phantom_dir: Path) -> tuple[Path, str]:
    """One epoch of the coarse stage on 2 processes, with MLflow tracking; (bundle root, combined output)."""
    root = tmp_path_factory.mktemp("ddp")
    result = _torchrun(root, phantom_dir, "--tracking=mlflow", experiment_name="liver_ddp")
    output = result.stdout + result.stderr
    (root / "torchrun.log").write_text(output)
    errors = "\n".join(line for line in output.splitlines() if "Error" in line or "terminate called" in line)
    # No retry. Measured here (2 CPUs, gloo): this job with the overlay's shutdown() exited 0 in 30 of 30 runs (with
    # destroy_process_group() alone, 33 of 33); a plain DDP script with destroy_process_group() alone aborted at exit
    # ("terminate called without an active exception") in 1 of 50 runs, with shutdown() in 0 of 30.
    assert result.returncode == 0, f"{errors}\n(full output: {root / 'torchrun.log'})"
    return root, output


@pytest.mark.slow
def test_both_ranks_train_and_exit_cleanly(ddp_run: tuple[Path, str]) -> None:
    _, output = ddp_run
    assert output.count("rank 0 of 2 on cpu (gloo)") == 1 and output.count("rank 1 of 2 on cpu (gloo)") == 1
    assert output.count("SupervisedTrainer - INFO - Engine run finished") == WORLD_SIZE
    assert "terminate called" not in output


@pytest.mark.slow
def test_rank_zero_alone_saves_and_logs(ddp_run: tuple[Path, str]) -> None:
    root, output = ddp_run
    # one iteration per rank and epoch (2 volumes, 2 ranks); StatsHandler and the savers run on rank 0 only
    assert output.count("Epoch: 1/1, Iter: 1/1 -- train_loss") == 1
    assert output.count("Saved checkpoint at epoch: 1") == 1
    assert output.count("Key metric: val_mean_dice best value") == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'eval' / 'mlruns.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("liver_ddp").experiment_id])
    assert run.data.params["stage"] == "coarse"  # MLflowRunExtras, on rank 0
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 1


@pytest.mark.slow
def test_checkpoints_load_into_the_single_process_network(ddp_run: tuple[Path, str]) -> None:
    root, _ = ddp_run
    best = torch.load(root / "models" / "coarse" / "model.pt", map_location="cpu", weights_only=True)
    resumable = torch.load(root / "models" / "coarse" / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True)
    for state in (best, resumable["model"]):
        assert not any(key.startswith("module.") for key in state)
        LiverTumorCascade(size="small").load_state_dict(state)  # strict: every key matches
    assert resumable["trainer"]["iteration"] == 1


@pytest.mark.slow
def test_ranks_saw_different_data_and_ended_with_the_same_weights(ddp_run: tuple[Path, str]) -> None:
    root, _ = ddp_run
    records = [torch.load(root / "eval" / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert [len(r["batches"]) for r in records] == [1, 1]  # each rank one of the two training volumes
    assert records[0]["batches"] != records[1]["batches"]
    # each rank seeds its own initial weights; DDP starts them all from rank 0's and keeps them equal
    for when in ("start", "end"):
        for key, value in records[0][when].items():
            assert torch.equal(value, records[1][when][key]), (when, key)
    assert any(not torch.equal(records[0]["start"][k], records[0]["end"][k]) for k in records[0]["start"])
    # what rank 0 saved is what both ranks ended with
    saved = torch.load(root / "models" / "coarse" / "model.pt", map_location="cpu", weights_only=True)
    for key, value in records[0]["end"].items():
        assert torch.equal(saved[key], value), key


def test_stage_all_is_refused_under_torchrun() -> None:
    with pytest.raises(ValueError, match="one stage per command"):
        ddp_helpers.setup_distributed("all", "cpu")
    assert ddp_helpers.require_single_stage("2d") == "2d"


def test_other_ranks_drop_the_handlers_that_write(monkeypatch: pytest.MonkeyPatch) -> None:
    stats = StatsHandler()
    resuming = TrainerCheckpoint(save_dir="unused", save_dict={}, resume=True)
    plain = TrainerCheckpoint(save_dir="unused", save_dict={})
    other = object()
    handlers = [stats, resuming, plain, other]
    assert ddp_helpers.rank_zero_only(handlers) == handlers  # no process group: all of them
    monkeypatch.setattr(ddp_helpers.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(ddp_helpers.dist, "get_rank", lambda: 0)
    assert ddp_helpers.rank_zero_only(handlers) == handlers
    monkeypatch.setattr(ddp_helpers.dist, "get_rank", lambda: 1)
    kept = ddp_helpers.rank_zero_only(handlers)
    assert len(kept) == 2 and kept[1] is other
    assert isinstance(kept[0], ddp_helpers._ResumeOnly) and kept[0].checkpoint is resuming


def test_the_overlay_overrides_what_it_means_to() -> None:
    """The overlay addresses two list items of train.yaml by position: fail here, not in torchrun, if they move."""
    train = ConfigParser()
    train.read_config(TRAIN_CONFIGS[0])
    assert train["initialize#0"] == "$monai.utils.set_determinism(seed=0)"  # replaced by setup_distributed
    assert train["train#handlers#1#_target_"] == "bundle.engines.LoadPretrainedEncoder"
    overlay = yaml.safe_load(Path(MULTI_GPU_CONFIG).read_text())
    assert [k for k in overlay if k.startswith(("train#handlers#", "initialize#"))] == [
        "train#handlers#1#network",
        "initialize#0",
    ]
