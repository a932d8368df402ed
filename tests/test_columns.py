"""Tables by column name (pydlr.data.columns): a model fitted on a DataFrame reads later tables by their
column names, so columns in another order are the same data and other names are an error, never a silent
mismatch of inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import pydlr
from pydlr.errors import InputError
from pydlr.io.saving import load_model, save_model


def table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) * 10, "c": rng.normal(size=n) * 100})
    return df, (df.a > 0).astype(np.int64).to_numpy()


def fitted(df: pd.DataFrame, y: np.ndarray, **fit_args) -> pydlr.Sequential:
    pydlr.utils.set_random_seed(0)
    m = pydlr.Sequential([pydlr.layers.Input((3,)), pydlr.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(df, y, epochs=2, batch_size=32, verbose=0, seed=0, **fit_args)
    return m


def test_columns_in_another_order_are_the_same_data():
    df, y = table()
    m = fitted(df, y)
    assert m.trained_column_names == ["a", "b", "c"]
    shuffled = df[["c", "a", "b"]]
    assert np.array_equal(m.predict(shuffled), m.predict(df))
    assert m.evaluate(shuffled, y, verbose=0) == m.evaluate(df, y, verbose=0)
    assert np.array_equal(m.predict(pa.Table.from_pandas(shuffled)), m.predict(df))  # pyarrow tables too
    assert np.array_equal(m.predict(df.to_numpy()), m.predict(df))  # no names: taken as they come


@pytest.mark.parametrize("other, found", [
    (lambda df: df.rename(columns={"a": "x"}), "a missing, x not among them"),
    (lambda df: df[["a", "b"]], "c missing"),
    (lambda df: df.assign(d=1.0), "d not among them"),
])
def test_other_names_are_refused_before_any_work(other, found):
    df, y = table()
    m = fitted(df, y)
    calls = []
    m.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(InputError, match=rf"columns fit\(\) was given \(a, b, c\).*{found}"):
        m.predict(other(df))
    with pytest.raises(InputError, match=found):
        m.evaluate(other(df), y)
    assert not calls


def test_validation_tables_are_read_by_name_too():
    df, y = table()
    dv, yv = table(60, seed=1)
    ordered = fitted(df, y, validation_data=(dv, yv)).history.history["val_loss"]
    shuffled = fitted(df, y, validation_data=(dv[["b", "c", "a"]], yv)).history.history["val_loss"]
    assert ordered == shuffled


def test_the_names_are_saved_with_the_model(tmp_path):
    df, y = table()
    m = fitted(df, y)
    save_model(m, tmp_path / "m.pydlr")
    loaded = load_model(tmp_path / "m.pydlr")
    assert loaded.trained_column_names == ["a", "b", "c"]
    assert np.array_equal(loaded.predict(df[["b", "c", "a"]]), m.predict(df))


def test_a_fit_on_an_array_forgets_the_names():
    df, y = table()
    m = fitted(df, y)
    m.fit(df.to_numpy(), y, epochs=1, verbose=0)
    assert m.trained_column_names is None
    m.predict(df.rename(columns={"a": "x"}))  # nothing to match by: taken as it comes
