"""Compiling the fitted pipeline to ONNX at train time, and proving that the compiled form answers alike.

The fitted scikit-learn pipeline stays the model of record (it is evaluated and gated); its
ONNX form is what the server runs when it exists. It exists only when skl2onnx converts the
pipeline, ONNX Runtime loads it, and on the held-out rows, fed as the server feeds JSON
records (``model/inputs.py``), every label is identical and no probability (regressors: no
prediction, relative to their scale) differs by more than ``serving.parity_limit``. Anything
else is reported in the metadata's ``compiled`` entry and on stderr, and scikit-learn serves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from model.compiled import CLASSES_KEY, INPUTS_KEY, ONNX_FILE, CompiledModel, load_compiled, onnxruntime
from model.estimator import CategoryText
from model.records import Compiled, Feature, Label, Parity, Status
from pipeline.config import ServingConfig
from pipeline.core.values import json_records
from pipeline.errors import first_line

TEXT_ALIAS = "MlCicdCategoryText"  # CategoryText's name in skl2onnx's registry
ML_OPSET = 3  # the ai.onnx.ml opset onnxmltools' XGBoost and LightGBM converters write
PARITY_ROWS = 10_000  # held-out rows compared (the first ones: their order is the hash split's)


def compile_model(
    pipeline: Any,
    features: Sequence[Feature],
    labels: Sequence[Label] | None,
    holdout: pd.DataFrame,
    serving: ServingConfig,
) -> tuple[Compiled, bytes | None]:
    """Convert ``pipeline`` and check parity on ``holdout``; return the record and the ONNX bytes to ship.

    ``labels`` are a classifier's classes (None: a regressor). The bytes are None unless the
    record's status is passed.
    """
    if not serving.onnx:
        return _not_served(Status.SKIPPED, None, "serving.onnx is false: scikit-learn serves"), None
    classifier = labels is not None
    kind = type(pipeline.steps[-1][1]).__name__
    try:
        onnx = convert(pipeline, features, classifier)
    except Exception as exc:  # skl2onnx raises whatever its converters raise
        reason = first_line(_root(exc))
        return _not_served(
            Status.ERROR, None, f"skl2onnx cannot convert {kind} ({reason}): scikit-learn serves"
        ), None
    version = onnxruntime().__version__
    try:
        compiled = load_compiled(onnx, features, labels)
    except ValueError as exc:
        return _not_served(Status.ERROR, version, f"{exc}: scikit-learn serves"), None
    rows = holdout.iloc[:PARITY_ROWS]
    if rows.empty:
        return _not_served(
            Status.ERROR, version, "no held-out rows to check parity on: scikit-learn serves"
        ), None
    parity = measure_parity(pipeline, compiled, rows, classifier, serving.parity_limit)
    if not parity.holds:
        message = f"{describe(parity)}: the ONNX form does not answer alike, scikit-learn serves"
        return Compiled(Status.FAILED, None, None, version, parity, message), None
    sha = hashlib.sha256(onnx).hexdigest()
    message = f"ONNX Runtime {version} serves it; {describe(parity)}"
    return Compiled(Status.PASSED, ONNX_FILE, sha, version, parity, message), onnx


def measure_parity(
    pipeline: Any, compiled: CompiledModel, rows: pd.DataFrame, classifier: bool, limit: float
) -> Parity:
    """Compare scikit-learn on ``rows`` with ONNX Runtime on the same rows as JSON records."""
    names = [f.name for f in compiled.features]
    frame = rows[names]
    booleans = {f.name for f in compiled.features if f.type == "boolean"}
    predictions, proba = compiled.predict(json_records(frame, booleans))
    if classifier:
        expected = np.asarray(pipeline.predict(frame))
        flips = int(np.sum(expected.astype(object) != predictions.astype(object)))
        reference = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
        assert proba is not None
        diff = float(np.max(np.abs(reference - proba))) if len(reference) else 0.0
        return Parity(len(frame), "probability", flips, diff, limit)
    expected = np.asarray(pipeline.predict(frame), dtype=np.float64)
    diff = float(np.max(np.abs(expected - predictions.astype(np.float64))))
    scale = max(1.0, float(np.max(np.abs(expected))))
    return Parity(len(frame), "prediction", None, diff, limit * scale)


def describe(parity: Parity) -> str:
    """Return one line: rows compared, label flips and the largest difference against its limit."""
    flips = f"{parity.label_flips} label flips, " if parity.label_flips is not None else ""
    sign = "<=" if parity.max_abs_diff <= parity.limit else ">"
    return (
        f"parity on {parity.rows} held-out rows: {flips}max |Δ {parity.what}| "
        f"{parity.max_abs_diff:.2g} {sign} {parity.limit:.2g}"
    )


def convert(pipeline: Any, features: Sequence[Feature], classifier: bool) -> bytes:
    """Return the ONNX bytes of ``pipeline``: one ``[rows, 1]`` input per feature, probabilities as a tensor."""
    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    update_registered_converter(
        CategoryText, TEXT_ALIAS, _text_shape, _text_identity, parser=_text_parser, overwrite=True
    )
    opset = _register_boosted(type(pipeline.steps[-1][1]))
    inputs = [
        (f.name, StringTensorType([None, 1]) if f.type == "categorical" else FloatTensorType([None, 1]))
        for f in features
    ]
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    model = convert_sklearn(pipeline, initial_types=inputs, options=options, target_opset=opset)
    # Inside the hashed file, for the server: which graph input each feature feeds (skl2onnx
    # renames inputs whose names are not identifiers, e.g. "mean radius"), and a classifier's classes.
    graph_inputs = [i.name for i in model.graph.input]
    if len(graph_inputs) != len(features):
        raise ValueError(f"the ONNX graph has {len(graph_inputs)} inputs for {len(features)} features")
    entries = {INPUTS_KEY: json.dumps(dict(zip([f.name for f in features], graph_inputs, strict=True)))}
    if classifier:
        entries[CLASSES_KEY] = json.dumps([plain(c) for c in pipeline.classes_])
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(model.SerializeToString())


def _register_boosted(cls: type) -> dict[str, int] | None:
    """Register onnxmltools' converter for an XGBoost or LightGBM estimator class with skl2onnx.

    Return the opsets to convert with (onnxmltools' tree converters write ``ai.onnx.ml`` 3, which
    ONNX Runtime runs), or None for any other estimator: skl2onnx's defaults.
    """
    from skl2onnx import get_latest_tested_opset_version, update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    names = {c.__name__ for c in cls.__mro__}
    if "XGBModel" in names:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as converter
    elif "LGBMModel" in names:
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as converter
    else:
        return None
    classifier = "ClassifierMixin" in names
    shape = (
        calculate_linear_classifier_output_shapes if classifier else calculate_linear_regressor_output_shapes
    )
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]} if classifier else None
    update_registered_converter(
        cls, f"MlCicd{cls.__name__}", shape, converter, options=options, overwrite=True
    )
    return {"": get_latest_tested_opset_version(), "ai.onnx.ml": ML_OPSET}


def _text_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """skl2onnx parser for CategoryText: its output is text (the default parser would guess floats)."""
    from skl2onnx.common.data_types import StringTensorType

    operator = scope.declare_local_operator(TEXT_ALIAS, model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("category_text", StringTensorType()))
    return operator.outputs


def _text_shape(operator: Any) -> None:
    """skl2onnx shape rule for CategoryText: the input's text columns, unchanged."""
    from skl2onnx.common.data_types import StringTensorType

    widths = [v.type.shape[1] for v in operator.inputs]
    columns = None if None in widths else sum(widths)
    operator.outputs[0].type = StringTensorType([operator.inputs[0].get_first_dimension(), columns])


def _text_identity(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for CategoryText: the identity (the server sends category text already)."""
    names = [v.full_name for v in operator.inputs]
    output = [operator.outputs[0].full_name]
    if len(names) == 1:
        container.add_node("Identity", names, output, name=scope.get_unique_operator_name("CategoryText"))
    else:
        container.add_node(
            "Concat", names, output, axis=1, name=scope.get_unique_operator_name("CategoryText")
        )


def _root(exc: BaseException) -> BaseException:
    """Return the innermost cause of ``exc`` (skl2onnx wraps the specific error in a generic one)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _not_served(status: Status, version: str | None, message: str) -> Compiled:
    return Compiled(status, None, None, version, None, message)
