"""``new_reading`` builds the same frozen :class:`Reading` as its constructor."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.model import Reading, Status, new_reading

names = st.text(min_size=1, max_size=8)


@given(
    st.tuples(
        names,
        names,
        names,
        st.integers(0, 2**62),
        st.floats(allow_nan=False),
        names,
        names,
        st.sampled_from(Status),
    )
)
def test_new_reading_is_the_constructors_reading(
    args: tuple[str, str, str, int, float, str, str, Status],
) -> None:
    fast, slow = new_reading(*args), Reading(*args)
    assert fast == slow and hash(fast) == hash(slow)
    assert dataclasses.astuple(fast) == args


def test_new_reading_is_frozen_and_defaults_to_valid() -> None:
    r = new_reading("p", "s", "nox", 1, 2.0, "nox", "mg/Nm3")
    assert r.status is Status.VALID
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 3.0  # type: ignore[misc]
    assert dataclasses.replace(r, value=3.0).value == 3.0
