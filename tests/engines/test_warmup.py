"""The decoder warm-up of the 2d stage (H-DenseUNet paper, section III-C-2): the first epochs train the 2D DenseUNet
without its UNet connections, then with them; on by default with --pretrained_2d, off without."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from torch import nn

from bundle.engines import DecoderWarmup
from bundle.networks import LiverTumorCascade
from bundle.networks.dense_blocks import UpLevel

from .bundle_runs import REPO, TRAIN_CONFIGS, run_workflow, train_overrides

CONFIGS = REPO / "configs"


def _perturbed_skips(net: nn.Module) -> list:
    """Forward pre-hooks on every decoder level of ``net`` that replace the skip activations by large noise."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        x, skip, use_skip = args
        return x, torch.randn_like(skip) * 100.0, use_skip

    return [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, UpLevel)]


def _depends_on_skips(dense2d: nn.Module, stacks: torch.Tensor) -> bool:
    """Whether the 2D network's logits change when its skip activations are replaced by noise (eval mode)."""
    was_training = dense2d.training
    dense2d.eval()
    with torch.no_grad():
        plain = dense2d(stacks)[1]
        hooks = _perturbed_skips(dense2d)
        try:
            perturbed = dense2d(stacks)[1]
        finally:
            for h in hooks:
                h.remove()
    dense2d.train(was_training)
    return not torch.equal(plain, perturbed)


def test_warmup_epochs_train_without_the_skips_then_with_them() -> None:
    """A 3-epoch 2d stage with 2 warm-up epochs: in the training iterations of epochs 1-2 the 2D logits do not depend
    on the skip activations and the skip projections get no gradient; in epoch 3 both do. Between iterations (where
    validation and checkpoints run) the UNet connections are always on."""
    torch.manual_seed(0)
    cascade = LiverTumorCascade(size="small", stage="2d").train()
    dense2d = cascade.fine.dense2d
    projections = [m.skip_proj for m in dense2d.decoder if isinstance(m.skip_proj, nn.Conv2d)]
    assert projections, "the small 2D preset has skip projections (levels 1 and 2)"
    optimizer = torch.optim.SGD(cascade.trainable_parameters(), lr=0.01)
    seen: dict[int, list[tuple[bool, bool]]] = {}
    between: list[bool] = []

    def step(engine: Engine, batch: torch.Tensor) -> None:
        stacks = torch.rand(2, 3, 64, 64)
        depends = _depends_on_skips(dense2d, stacks)
        optimizer.zero_grad(set_to_none=True)
        cascade(batch).square().mean().backward()  # stage 2d: the 2D branch on the volume's slices
        trained = all(p.grad is not None for proj in projections for p in proj.parameters())
        optimizer.step()
        seen.setdefault(engine.state.epoch, []).append((depends, trained))

    engine = Engine(step)
    DecoderWarmup(cascade, epochs=2).attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: between.append(dense2d.unet_connections))
    engine.run([torch.rand(1, 1, 64, 64, 4) for _ in range(2)], max_epochs=3)

    assert seen[1] == seen[2] == [(False, False), (False, False)]
    assert seen[3] == [(True, True), (True, True)]
    assert between == [True, True, True] and dense2d.unet_connections
    assert cascade.fine.dense3d.unet_connections is True  # the 3D branch is not touched


def test_a_resumed_run_continues_the_warmup_and_zero_epochs_attach_nothing() -> None:
    cascade = LiverTumorCascade(size="small", stage="2d")
    warmup = DecoderWarmup(cascade, epochs=3)
    engine = Engine(lambda e, b: cascade.fine.dense2d.unet_connections)
    warmup.attach(engine)
    engine.state.epoch = 2  # as restored from checkpoint_epoch=2.pt
    engine.state.max_epochs = 10
    warmup.iteration_started(engine)
    assert cascade.fine.dense2d.unet_connections is False
    warmup.iteration_completed(engine)
    engine.state.epoch = 4
    warmup.iteration_started(engine)
    assert cascade.fine.dense2d.unet_connections is True

    off = Engine(lambda e, b: None)
    DecoderWarmup(cascade, epochs=0).attach(off)
    assert all(not off._event_handlers[event] for event in (Events.ITERATION_STARTED, Events.ITERATION_COMPLETED))


def test_a_warmup_as_long_as_the_stage_or_on_another_network_is_refused() -> None:
    cascade = LiverTumorCascade(size="small", stage="2d")
    engine = Engine(lambda e, b: None)
    engine.state.max_epochs = 2
    with pytest.raises(ValueError, match="warmup_epochs 2 leaves none of the stage's 2 epochs"):
        DecoderWarmup(cascade, epochs=2).attach(engine)
    with pytest.raises(ValueError, match="warmup_epochs must be 0"):
        DecoderWarmup(cascade, epochs=-1)
    with pytest.raises(TypeError, match="needs a 2D DenseUNet"):
        DecoderWarmup(LiverTumorCascade(size="small", network_name="raunet"), epochs=1).attach(engine)


def _train_parser(**overrides: object) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml")])
    for key, value in {"network_size": "small", **overrides}.items():
        parser[key] = value
    return parser


def _warmup_handler_id(parser: ConfigParser) -> str:
    handlers = parser["train"]["handlers"]
    index = next(i for i, h in enumerate(handlers) if h["_target_"] == "bundle.engines.DecoderWarmup")
    return f"train#handlers#{index}"


@pytest.mark.parametrize(
    ("pretrained_2d", "epochs", "expected"),
    [(None, 100, 0), ("densenet161.pth", 100, 5), ("densenet161.pth", 10, 1), ("densenet161.pth", 60, 3)],
)
def test_the_warmup_is_on_by_default_with_pretrained_2d_only(
    pretrained_2d: str | None, epochs: int, expected: int
) -> None:
    parser = _train_parser(stage="2d", pretrained_2d=pretrained_2d, epochs=epochs)
    assert parser.get_parsed_content("warmup_epochs") == expected
    handler = _warmup_handler_id(parser)
    assert parser.get_parsed_content(f"{handler}#_disabled_") is False  # the 2d stage attaches it
    assert parser.get_parsed_content(f"{handler}#epochs") == expected
    # --warmup_epochs overrides the default either way; other stages never warm up
    assert (
        _train_parser(stage="2d", pretrained_2d=pretrained_2d, warmup_epochs=7).get_parsed_content("warmup_epochs") == 7
    )
    for stage in ("coarse", "hybrid", "joint"):
        assert _train_parser(stage=stage, pretrained_2d=pretrained_2d).get_parsed_content(f"{handler}#_disabled_")


def test_ddp_finds_unused_parameters_only_for_a_warmup() -> None:
    """The skip projections get no gradient during the warm-up: DDP must look for unused parameters then only."""

    def find_unused(**overrides: object) -> bool:
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / "train.yaml"), str(CONFIGS / "multi_gpu_train.yaml")])
        for key, value in overrides.items():
            parser[key] = value
        return parser.get_parsed_content("find_unused_parameters")

    assert find_unused(stage="2d", pretrained_2d="densenet161.pth") is True
    assert find_unused(stage="2d", pretrained_2d=None) is False
    assert find_unused(stage="2d", pretrained_2d="densenet161.pth", warmup_epochs=0) is False
    assert find_unused(stage="joint", pretrained_2d="densenet161.pth") is False


@pytest.mark.slow
def test_the_2d_stage_with_pretrained_weights_warms_up_through_monai_bundle_config(
    tmp_path: Path, phantom_dir: Path
) -> None:
    """configs/train.yaml + demo.yaml, stage 2d with --pretrained_2d (a small encoder in the file's layout) and 2
    epochs: the default warm-up is 1 epoch; the trainer's iterations run without UNet connections in epoch 1 and with
    them in epoch 2; the saved 2d model carries ImageNet's input normalisation into the next stage."""
    root = tmp_path / "run"
    (root / "models" / "coarse").mkdir(parents=True)
    torch.manual_seed(0)
    cascade = LiverTumorCascade(size="small")
    torch.save(cascade.state_dict(), root / "models" / "coarse" / "model.pt")
    encoder = {
        k: torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v)
        for k, v in cascade.fine.dense2d.state_dict().items()
        if k.startswith("features.") and v.is_floating_point()
    }
    torch.save(encoder, tmp_path / "encoder.pth")

    seen: list[tuple[int, bool]] = []

    def record(workflow) -> None:
        trainer = workflow.parser.get_parsed_content("train#trainer")
        assert workflow.parser.get_parsed_content("warmup_epochs") == 1
        network = workflow.parser.get_parsed_content("network")

        def forward_hook(module: nn.Module, args: tuple, output: object) -> None:
            if module.training:
                seen.append((trainer.state.epoch, module.unet_connections))

        network.fine.dense2d.register_forward_hook(forward_hook)

    run_workflow(
        TRAIN_CONFIGS,
        "train",
        before_run=record,
        **train_overrides(root, phantom_dir, stage="2d", epochs=2, pretrained_2d=str(tmp_path / "encoder.pth")),
    )
    assert {epoch for epoch, _ in seen} == {1, 2}
    assert all(connections is (epoch == 2) for epoch, connections in seen)
    saved = torch.load(root / "models" / "2d" / "model.pt", map_location="cpu", weights_only=True)
    assert saved["fine.dense2d.input_mean"].flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert saved["fine.dense2d.input_std"].flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])
    assert saved["fine.dense3d.input_mean"].abs().sum() == 0  # the 3D branch's input is not ImageNet's
