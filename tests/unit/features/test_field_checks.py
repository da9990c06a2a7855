"""A Field's type and bounds are checked when its view is defined; it counts its bad rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlray.errors import DefinitionError
from mlray.features import Entity, FeatureView, Field

user = Entity("user", ("user_id",))


def view_with(*fields: Field) -> FeatureView:
    return FeatureView(name="clicks", entities=[user], schema=list(fields))


@pytest.mark.parametrize(
    "dtype,needle",
    [
        ("float64", "has dtype 'float64', which is not a pyarrow type"),
        (float, "has dtype <class 'float'>, which is not a pyarrow type"),
        (np.float64, "has dtype <class 'numpy.float64'>, which is not a pyarrow type"),
        (pa.float16(), "has dtype halffloat, which a Delta table cannot store"),
        (pa.duration("s"), "has dtype duration[s], which a Delta table cannot store"),
        (pa.null(), "has dtype null, which a Delta table cannot store"),
    ],
)
def test_a_field_of_an_unknown_type_is_a_definition_error_naming_the_view(dtype, needle):
    with pytest.raises(DefinitionError) as e:
        view_with(Field("ctr", pa.float64()), Field("n", dtype))
    message = str(e.value)
    assert message.startswith("feature view 'clicks' (defined at ")
    assert "test_field_checks.py:" in message
    assert f"field 'n' {needle}" in message


@pytest.mark.parametrize(
    "field,needle",
    [
        (Field("tag", pa.string(), ge=0), "field 'tag' has bounds {'ge': 0} but dtype string"),
        (Field("ok", pa.bool_(), le=1), "field 'ok' has bounds {'le': 1} but dtype bool"),
        (Field("ctr", pa.float64(), ge=1, le=0), "field 'ctr': ge=1 is above le=0"),
    ],
)
def test_bounds_must_fit_the_type(field, needle):
    with pytest.raises(DefinitionError, match="feature view 'clicks'") as e:
        view_with(field)
    assert needle in str(e.value)


def test_every_arrow_type_delta_stores_is_accepted():
    v = view_with(
        Field("a", pa.float32(), ge=0, le=1),
        Field("b", pa.int8(), ge=-1),
        Field("c", pa.decimal128(10, 2), le=5),
        Field("d", pa.string()),
        Field("e", pa.timestamp("us", tz="UTC")),
        Field("f", pa.list_(pa.float32())),
        Field("g", pa.date32()),
    )
    assert v.feature_names == ("a", "b", "c", "d", "e", "f", "g")


def test_violations_count_nulls_and_values_outside_the_bounds():
    f = Field("ctr", pa.float64(), nullable=False, ge=0, le=1)
    col = pa.chunked_array([[0.0, None, -0.5, 1.0], [2.0, None, 0.5, -1.0, 1.5]])
    assert f.violations(col) == {"null (nullable=False)": 2, "< ge=0": 2, "> le=1": 2}
    assert Field("ctr", pa.float64()).violations(col) == {}
    ints = pa.array([0, 3, 7, None], pa.int64())
    assert Field("n", pa.int64(), ge=1, le=5).violations(ints) == {"< ge=1": 1, "> le=5": 1}
    assert Field("n", pa.int64(), nullable=False).violations(ints[:3]) == {}
    # A fractional bound on an integer column compares as a number, not truncated.
    assert Field("n", pa.int64(), ge=0.5).violations(ints) == {"< ge=0.5": 1}
