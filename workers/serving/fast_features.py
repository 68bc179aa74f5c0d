"""The feature step of a scikit-learn pipeline computed from the request's rows with numpy.

A registered pipeline such as ``ColumnTransformer([StandardScaler, OneHotEncoder]) →
LogisticRegression`` spends almost all of a one-row prediction (5-8 ms of a 10 ms request
on the 2-core machine) in the column transformer's pandas machinery — building a
DataFrame, selecting columns, validating feature names — not in arithmetic. For the
transformers whose fitted state is a few arrays (``StandardScaler``, ``OneHotEncoder``,
dropped columns) this module does the same arithmetic on the rows directly; the
pipeline's later steps (the classifier) still run in scikit-learn, on the same feature
matrix, so their answers are the pipeline's own.

``compile_features`` returns None for anything else (another transformer, sparse or
pandas output, float32 columns, infrequent or dropped categories): that version is scored
through MLflow as before. A compiled version is checked when it loads: on probe rows made
from its fitted state, the features must equal the column transformer's bit for bit, or
it is not used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("flowgate.serving")

# Signature types whose values scikit-learn scales in float64 (``validate_data`` turns
# int64 and float64 columns into a float64 array); "float" (float32) columns it would
# scale in float32, so they are not compiled.
FLOAT64_TYPES = {"double", "long", "integer"}

Features = Callable[[list[dict[str, Any]]], Any]  # rows → float64 feature matrix


def compile_features(pipeline: Any, column_types: dict[str, str]) -> Features | None:
    """The rows → features function of ``pipeline``'s first step, or None.

    ``column_types`` maps the signature's fields to their MLflow type ("double",
    "string"...); the rows given to the result are ``coerce_inputs``'s (every field
    present, of its type)."""
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    columns = pipeline.steps[0][1]
    if not isinstance(columns, ColumnTransformer) or sklearn.get_config()["transform_output"] != (
        "default"
    ):
        return None
    # A dense output (the column transformer turns a sparse one-hot block dense when the
    # whole is dense enough): a sparse one would change the classifier's arithmetic.
    if getattr(columns, "sparse_output_", True) or _output_config(columns) != "default":
        return None
    parts = []
    for _, transformer, names in columns.transformers_:
        if transformer == "drop":
            continue
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return None
        part = _compile_part(transformer, names, column_types)
        if part is None:
            return None
        parts.append(part)
    if not parts:
        return None
    features = _join(parts)
    return features if _agrees(columns, features, parts) else None


def _output_config(estimator: Any) -> str:
    return str(getattr(estimator, "_sklearn_output_config", {}).get("transform", "default"))


Part = tuple[str, list[str], Callable[[list[dict[str, Any]]], Any], list[dict[str, Any]]]


def _compile_part(transformer: Any, names: list[str], types: dict[str, str]) -> Part | None:
    """(kind, columns, rows → block of the feature matrix, probe rows' values)."""
    import numpy as np
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if _output_config(transformer) != "default":
        return None
    if type(transformer) is StandardScaler:
        if any(types.get(name) not in FLOAT64_TYPES for name in names):
            return None
        mean = transformer.mean_ if transformer.with_mean else None
        scale = transformer.scale_ if transformer.with_std else None

        def scaled(rows: list[dict[str, Any]]) -> Any:
            block = np.array([[row[name] for name in names] for row in rows], dtype=np.float64)
            # The scaler's own operations, in its order: subtract, then divide.
            if mean is not None:
                block -= mean
            if scale is not None:
                block /= scale
            return block

        probes = _numeric_probes(names, transformer)
        return ("scale", names, scaled, probes)
    if type(transformer) is OneHotEncoder:
        encoder = transformer
        if (
            encoder.drop_idx_ is not None
            or getattr(encoder, "_infrequent_enabled", False)
            or encoder.handle_unknown not in ("ignore", "error")
            or np.dtype(encoder.dtype) != np.float64
            or any(types.get(name) != "string" for name in names)
            or not all(
                categories.dtype == object and all(isinstance(c, str) for c in categories)
                for categories in encoder.categories_
            )
        ):
            return None
        offsets, index = [], []
        width = 0
        for categories in encoder.categories_:
            offsets.append(width)
            index.append({category: position for position, category in enumerate(categories)})
            width += len(categories)

        def encoded(rows: list[dict[str, Any]]) -> Any:
            block = np.zeros((len(rows), width), dtype=np.float64)
            for row_number, row in enumerate(rows):
                for name, offset, positions in zip(names, offsets, index, strict=True):
                    position = positions.get(row[name])
                    if position is not None:
                        block[row_number, offset + position] = 1.0
                    elif encoder.handle_unknown == "error":
                        raise _Unknown
            return block

        probes = [
            {
                name: str(categories[i % len(categories)])
                for name, categories in zip(names, encoder.categories_, strict=True)
            }
            for i in range(max(len(c) for c in encoder.categories_))
        ]
        if encoder.handle_unknown == "ignore":
            probes.append({name: "\x00not a category" for name in names})
        return ("encode", names, encoded, probes)
    return None


class _Unknown(Exception):
    """A category the encoder refuses: scikit-learn raises its own error for it."""


def _numeric_probes(names: list[str], scaler: Any) -> list[dict[str, Any]]:
    import numpy as np

    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(len(names))
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(len(names))
    return [
        {name: float(m + k * s) for name, m, s in zip(names, mean, scale, strict=True)}
        for k in (-2.5, -1.0, 0.0, 0.37, 1.0, 3.0)
    ] + [{name: 0.0 for name in names}, {name: 123456.0 for name in names}]


def _join(parts: Sequence[Part]) -> Features:
    import numpy as np

    def features(rows: list[dict[str, Any]]) -> Any:
        return np.hstack([block(rows) for _, _, block, _ in parts])

    return features


def _agrees(columns: Any, features: Features, parts: Sequence[Part]) -> bool:
    """The compiled features equal the column transformer's on probe rows from its fitted
    state (every category, values around each mean, an unknown category)."""
    import numpy as np
    import pandas as pd

    count = max(len(probes) for _, _, _, probes in parts)
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    for _, _, _, probes in parts:
        for number, row in enumerate(rows):
            row.update(probes[number % len(probes)])
    for name in columns.feature_names_in_:
        for row in rows:
            row.setdefault(str(name), 0.0)
    ordered = [{str(name): row[str(name)] for name in columns.feature_names_in_} for row in rows]
    try:
        expected = columns.transform(pd.DataFrame(ordered))
        mine = features(ordered)
    except Exception as error:
        logger.info("feature step not compiled: probe rows failed (%s)", error)
        return False
    return bool(
        isinstance(expected, np.ndarray)
        and expected.dtype == mine.dtype
        and expected.shape == mine.shape
        and np.array_equal(expected, mine)
    )


def scorer(pipeline: Any, features: Features, method: str) -> Callable[[list[dict[str, Any]]], Any]:
    """rows → the pipeline's ``method`` (``predict_proba``) answers, through its compiled
    feature step and its own final estimator; a category the encoder refuses goes
    through the whole pipeline, so the error is scikit-learn's."""
    import pandas as pd

    final = getattr(pipeline.steps[-1][1], method)
    whole = getattr(pipeline, method)

    def score(rows: list[dict[str, Any]]) -> Any:
        try:
            matrix = features(rows)
        except _Unknown:
            return whole(pd.DataFrame(rows))
        return final(matrix)

    return score
