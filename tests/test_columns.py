"""Tables by column name (pydlr.data.columns): a model fitted on a DataFrame reads later tables by their
column names, so columns in another order are the same data and other names are an error, never a silent
mismatch of inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import pydlr
from pydlr.data.columns import on_columns
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


def test_named_plain_arrays_are_read_by_their_names():
    """R's data.frames cross as plain arrays with their names beside them (`names`)."""
    df, y = table()
    m = fitted(df, y)
    order = ["c", "a", "b"]
    assert np.array_equal(on_columns(df[order].to_numpy(), m.trained_column_names, "predict", names=order),
                          df.to_numpy())
    with pytest.raises(InputError, match=r"columns a missing, x not among them"):
        on_columns(df.to_numpy(), m.trained_column_names, "predict", names=["x", "b", "c"])
    assert on_columns(df.to_numpy(), None, "predict", names=order) is not None  # the model has no names
    wide = [f"pixel{i}" for i in range(200)]  # a message one can read, whatever the table's width
    with pytest.raises(InputError, match=r"\(pixel0, .*pixel7 and 192 more\); received 'columns pixel0, "
                                         r"pixel1 and 198 more missing, x, y and 198 more not among them'"):
        on_columns(np.zeros((1, 200)), wide, "predict", names=["x", "y", *(f"z{i}" for i in range(198))])


def test_r_door_names_the_columns_from_the_start_of_the_fit(tmp_path):
    """api_r's fit keeps R's data.frame names on the model (checkpoints written during the fit included), reads
    validation data and predict()/evaluate() data by them."""
    from pydlr.api_r import training
    df, y = table()
    pydlr.utils.set_random_seed(0)
    m = pydlr.Sequential([pydlr.layers.Input((3,)), pydlr.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    seen = []
    probe = pydlr.train.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(m.trained_column_names))
    order = ["b", "c", "a"]
    h = training.fit(m, df.to_numpy(), y, column_names=["a", "b", "c"], epochs=2, batch_size=32, verbose=0,
                     seed=0, validation_data=[df[order].to_numpy(), y], validation_column_names=order,
                     callbacks=[probe])
    assert seen == [["a", "b", "c"]] * 2 and m.trained_column_names == ["a", "b", "c"]
    # the validation columns were put back in the training order: its loss is the training data's
    assert h["metrics"]["val_loss"][-1] == pytest.approx(m.evaluate(df.to_numpy(), y, verbose=0)[0], rel=1e-5)
    assert np.array_equal(training.predict(m, df[order].to_numpy(), column_names=order)["out"], m.predict(df.to_numpy()))
    assert training.evaluate(m, df[order].to_numpy(), y, column_names=order) == \
        training.evaluate(m, df.to_numpy(), y, column_names=["a", "b", "c"])
    with pytest.raises(InputError, match=r"validation_data\[\[1\]\].*c missing, d not among them"):
        training.fit(m, df.to_numpy(), y, column_names=["a", "b", "c"], epochs=1, verbose=0,
                     validation_data=[df.to_numpy(), y], validation_column_names=["a", "b", "d"])
