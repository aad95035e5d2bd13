"""The step runtime: one dynamic batch in, one answer per request out, errors by whose fault."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ensembles.runtime import ConfigError, RequestError, Step, StepConfig, python_model, run_batch
from ensembles.testing import Request, TritonError, TritonModelException, fake_pb_utils
from serving.render import SpecError, shim


def _config(**kwargs) -> StepConfig:
    defaults = dict(
        model_name="m", version_dir=__import__("pathlib").Path("."), inputs=("X",), outputs=("Y",)
    )
    return StepConfig(**{**defaults, **kwargs})


class Doubler(Step):
    """Refuses negative rows, counts its compute calls, doubles the batch."""

    calls = 0

    def prepare(self, inputs):
        if (inputs["X"] < 0).any():
            raise RequestError("X must not be negative")
        return inputs

    def compute(self, batch):
        Doubler.calls += 1
        return {"Y": batch["X"] * 2}


def test_one_compute_per_dynamic_batch_and_rows_sliced_back() -> None:
    Doubler.calls = 0
    step = Doubler(_config())
    requests = [{"X": np.array([[1.0]])}, {"X": np.array([[2.0], [3.0]])}, {"X": np.array([[-1.0]])}]
    first, second, bad = run_batch(step, requests)
    assert Doubler.calls == 1
    np.testing.assert_array_equal(first["Y"], [[2.0]])
    np.testing.assert_array_equal(second["Y"], [[4.0], [6.0]])
    assert isinstance(bad, RequestError)


def test_unbatched_models_compute_per_request() -> None:
    Doubler.calls = 0
    results = run_batch(Doubler(_config(batched=False)), [{"X": np.ones(3)}, {"X": np.ones(2)}])
    assert Doubler.calls == 2 and [len(r["Y"]) for r in results] == [3, 2]


def test_an_output_with_the_wrong_row_count_fails_the_batch() -> None:
    class Broken(Step):
        def compute(self, batch):
            return {"Y": batch["X"][:1]}

    results = run_batch(Broken(_config()), [{"X": np.ones((2, 1))}, {"X": np.ones((1, 1))}])
    assert all(isinstance(r, RuntimeError) and "rows" in str(r) for r in results)


def _model(step_class: type[Step], parameters: dict[str, str] | None = None):
    config = {
        "name": "m",
        "max_batch_size": 8,
        "input": [{"name": "X", "dims": [1]}],
        "output": [{"name": "Y", "dims": [1]}],
        "parameters": {k: {"string_value": v} for k, v in (parameters or {}).items()},
    }
    model = python_model(step_class, fake_pb_utils())()
    model.initialize({"model_config": json.dumps(config), "model_name": "m", "model_version": "1"})
    return model


def test_a_client_mistake_is_invalid_arg_with_the_bare_reason() -> None:
    (response,) = _model(Doubler).execute([Request(X=np.array([[-1.0]], np.float32))])
    assert response.error.code == TritonError.INVALID_ARG
    assert response.error.message == "X must not be negative"


def test_anything_else_is_internal_and_logged() -> None:
    class Crashes(Step):
        def compute(self, batch):
            raise ZeroDivisionError("boom")

    from ensembles.testing import Logger

    Logger.lines.clear()
    responses = _model(Crashes).execute([Request(X=np.ones((1, 1))), Request(X=np.ones((2, 1)))])
    assert all(r.error.code == TritonError.INTERNAL for r in responses)
    assert "ZeroDivisionError: boom" in responses[0].error.message
    assert any(level == "error" and "boom" in line for level, line in Logger.lines)


def test_inputs_are_copied_out_of_the_request() -> None:
    """``as_numpy()`` views the request's shared memory; a step must never hold on to it."""
    seen = []

    class Keeps(Step):
        def prepare(self, inputs):
            seen.append(inputs["X"])
            return inputs

    data = np.ones((1, 1), np.float32)
    _model(Keeps).execute([Request(X=data)])
    assert not np.shares_memory(seen[0], data)


def test_parameters_are_typed_once_and_bad_ones_refuse_to_load() -> None:
    class Typed(Step):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.k, self.soft = config.integer("K"), config.flag("SOFT")

    model = _model(Typed, {"K": "5", "SOFT": "TRUE"})
    assert (model.step_instance.k, model.step_instance.soft) == (5, True)
    with pytest.raises(TritonModelException, match="K='five' is not an integer"):
        _model(Typed, {"K": "five", "SOFT": "false"})
    with pytest.raises(TritonModelException, match="parameter K is missing"):
        _model(Typed, {"SOFT": "false"})
    with pytest.raises(ConfigError, match="not true/false"):
        _config(parameters={"S": "yes"}).flag("S")


def test_the_rendered_model_py_is_a_shim_that_runs_the_named_step() -> None:
    text = shim("ensembles.steps.faq:FaqPreprocess")
    assert "from ensembles.steps.faq import FaqPreprocess" in text
    assert "TritonPythonModel = python_model(FaqPreprocess)" in text
    compile(text, "model.py", "exec")
    with pytest.raises(SpecError):
        shim("ensembles.steps.faq")
