"""Model pages name a signature's column types as people read them."""

from __future__ import annotations

import numpy
from mlflow.types import DataType

from apps.mlmodels.registry import type_name


def test_column_types_read_as_their_plain_names():
    assert type_name(DataType.double) == "double"
    assert type_name(DataType.string) == "string"
    assert type_name(numpy.dtype("float32")) == "float32"
