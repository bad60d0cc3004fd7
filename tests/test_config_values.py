"""Boolean options as typed on the command line: ``--network_def#fast_inference false`` is False, ``--overwrite
maybe`` is refused with a message naming the option (bundle/config_values.py and every place that consumes one)."""

from __future__ import annotations

import operator
import subprocess
import sys
from pathlib import Path

import pytest
from fire import parser as fire_parser
from monai.bundle import ConfigParser

from bundle.config_values import as_bool
from bundle.engines import TrainerCheckpoint
from bundle.networks import CascadedResNet, DenseUNet, DenseUNet569, HDenseUNet, LiverTumorCascade
from bundle.networks.presets import dense2d_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

TRUE_SPELLINGS = [True, 1, "true", "True", "TRUE", "tRuE", "yes", "Yes", "YES", "1", " true "]
FALSE_SPELLINGS = [False, 0, "false", "False", "FALSE", "fAlSe", "no", "No", "NO", "0", "false\n"]
REFUSED = ["maybe", "", " ", "2", "-1", "on", "off", "y", "n", "t", "f", "none", "null", 2, -1, 0.0, 1.0, None, []]


@pytest.mark.parametrize("value", TRUE_SPELLINGS)
def test_true_spellings(value: object) -> None:
    assert as_bool(value, "resume") is True


@pytest.mark.parametrize("value", FALSE_SPELLINGS)
def test_false_spellings(value: object) -> None:
    assert as_bool(value, "resume") is False


@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_is_refused_naming_the_option_and_the_value(value: object) -> None:
    with pytest.raises(ValueError, match="overwrite must be true or false") as info:
        as_bool(value, "overwrite")
    assert f"got {value!r}" in str(info.value)


def test_the_command_line_leaves_lower_case_false_a_string() -> None:
    """Why the parser exists: Fire (monai.bundle's command line) reads ``False`` and ``0`` as values, ``false`` not."""
    assert fire_parser.DefaultParseValue("False") is False
    assert fire_parser.DefaultParseValue("0") == 0
    assert fire_parser.DefaultParseValue("false") == "false"
    assert bool("false") is True


@pytest.mark.parametrize(
    ("build", "flag"),
    [
        (lambda v: LiverTumorCascade(size="small", fast_inference=v), "fast_inference"),
        (lambda v: LiverTumorCascade(size="small", memory_efficient=v), "memory_efficient"),
        (lambda v: LiverTumorCascade(size="small", freeze_bn=v), "freeze_bn"),
        (lambda v: HDenseUNet(size="small", memory_efficient=v), "memory_efficient"),
        (lambda v: HDenseUNet(size="small", freeze_bn=v), "freeze_bn"),
        (lambda v: DenseUNet(2, 3, 3, **dense2d_config("small"), unet_connections=v), "unet_connections"),
        (lambda v: DenseUNet(2, 3, 3, **dense2d_config("small"), memory_efficient=v), "memory_efficient"),
        (lambda v: DenseUNet569(size="small", ds_norm_act=v), "ds_norm_act"),
        (lambda v: CascadedResNet(size="small", multiscale_test=v), "multiscale_test"),
        (lambda v: CascadedResNet(size="small", detach_probabilities=v), "detach_probabilities"),
    ],
)
def test_network_flags_parse_command_line_spellings(build, flag: str) -> None:
    assert build("false") is not None  # a string "false" is accepted ...
    with pytest.raises(ValueError, match=f"{flag} must be true or false.*'maybe'"):
        build("maybe")  # ... and a typo refused, naming the constructor argument


def test_network_attributes_hold_real_bools() -> None:
    assert LiverTumorCascade(size="small", fast_inference="false").fast_inference is False
    net = HDenseUNet(size="small", memory_efficient="True", freeze_bn="no")
    assert net.freeze_bn is False and net.dense2d.memory_efficient is True and net.dense3d.memory_efficient is True
    assert CascadedResNet(size="small", multiscale_test="yes").multiscale_test is True


def test_resume_of_the_checkpoint_handler() -> None:
    assert TrainerCheckpoint(save_dir="unused", save_dict={}, resume="false").resume is False
    with pytest.raises(ValueError, match=r"resume must be true or false.*'ture'"):
        TrainerCheckpoint(save_dir="unused", save_dict={}, resume="ture")


def _parser(configs: list[str], **overrides) -> ConfigParser:
    """The configs with command-line overrides, as Fire delivers them (strings for ``false``, ``maybe``)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in configs])
    for key, value in overrides.items():
        parser[key] = value
    return parser


def _probabilities_writer(parser: ConfigParser) -> str:
    """The id of inference.yaml's ``<case>_probabilities.nii.gz`` writer (its ``_disabled_`` reads the flag)."""
    transforms = parser["postprocessing"]["transforms"]
    index = next(i for i, t in enumerate(transforms) if t.get("postfix") == "probabilities")
    return f"postprocessing#transforms#{index}#_disabled_"


@pytest.mark.parametrize(
    ("configs", "option", "typed", "item", "attribute", "expected"),
    [
        (["inference.yaml"], "network_def#fast_inference", "false", "network_def", "fast_inference", False),
        (["train.yaml"], "memory_efficient", "false", "network_def", "fine.dense2d.memory_efficient", False),
        (["train.yaml"], "memory_efficient", "TRUE", "network_def", "fine.dense3d.memory_efficient", True),
        (["train.yaml"], "amp", "false", "train#trainer#amp", "", False),
        (["train.yaml"], "amp", "false", "validate#evaluator#amp", "", False),
        (["train.yaml"], "resume", "no", "train#handlers#0#_disabled_", "", False),  # joint: loads the hybrid model
        (["train.yaml"], "resume", "True", "train#handlers#0#_disabled_", "", True),
        (["inference.yaml"], "save_probabilities", "false", "probabilities writer", "", True),
        (["inference.yaml"], "save_probabilities", "yes", "probabilities writer", "", False),
        (
            ["train.yaml", "multi_gpu_train.yaml"],
            "find_unused_parameters",
            "false",
            "network#find_unused_parameters",
            "",
            False,
        ),
    ],
)
def test_config_booleans_typed_lower_case_are_what_they_say(
    configs: list[str], option: str, typed: str, item: str, attribute: str, expected: bool
) -> None:
    parser = _parser(configs, network_size="small", **{option: typed})
    item = _probabilities_writer(parser) if item == "probabilities writer" else item
    value = parser.get_parsed_content(item)
    assert (operator.attrgetter(attribute)(value) if attribute else value) is expected


def _cause_chain(error: BaseException) -> str:
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__
    return "\n".join(messages)


@pytest.mark.parametrize(
    ("configs", "option", "item"),
    [
        (["inference.yaml"], "overwrite", "datalist"),
        (["inference.yaml"], "allow_non_ct", "datalist"),
        (["inference.yaml"], "save_probabilities", "probabilities writer"),
        (["train.yaml"], "resume", "train#handlers#0#_disabled_"),
        (["train.yaml"], "resume", "train#handlers#1#_disabled_"),
        (["train.yaml"], "amp", "train#trainer#amp"),
    ],
)
def test_config_booleans_refuse_a_typo_naming_the_option(
    configs: list[str], option: str, item: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]")  # inference input: a datalist of no case, so only the flags are checked
    parser = _parser(configs, input=str(empty), output_dir=str(tmp_path / "out"), **{option: "maybe"})
    item = _probabilities_writer(parser) if item == "probabilities writer" else item
    # MONAI wraps the ValueError raised inside a $ expression in a RuntimeError
    with pytest.raises((RuntimeError, ValueError)) as info:
        parser.get_parsed_content(item)
    assert f"{option} must be true or false (or yes/no, 1/0, in any case), got 'maybe'" in _cause_chain(info.value)


@pytest.mark.slow
def test_monai_bundle_run_reads_lower_case_false_as_false(tmp_path: Path) -> None:
    """The real command line: ``--network_def#fast_inference false`` reaches the network as ``False``."""
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    command = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", "configs/inference.yaml",
        "--network_size", "small",
        "--input", str(empty),
        "--output_dir", str(tmp_path / "out"),
        "--network_def#fast_inference", "false",
        "--run#0", '$print("fast_inference:", repr(@network_def.fast_inference))',
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fast_inference: False" in result.stdout
