"""torchrun's environment checked before joining, the torchrun command, failures of peers explained."""

from __future__ import annotations

import pytest

from pydlr.errors import InputError
from pydlr.train.distributed import explain_failure, torchrun_command, torchrun_env

OK = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
      "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def test_outside_torchrun_is_none_and_a_full_environment_parses():
    assert torchrun_env({}) is None
    assert torchrun_env(OK) == {"WORLD_SIZE": 2, "RANK": 1, "LOCAL_RANK": 1}
    assert torchrun_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"})["WORLD_SIZE"] == 1


@pytest.mark.parametrize("change, variable", [
    ({"RANK": None}, "RANK"),
    ({"WORLD_SIZE": None}, "WORLD_SIZE"),
    ({"RANK": "2"}, "RANK"),
    ({"RANK": "one"}, "RANK"),
    ({"LOCAL_RANK": "2"}, "LOCAL_RANK"),
    ({"MASTER_ADDR": None}, "MASTER_ADDR"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT"),
    ({"WORLD_SIZE": "0", "RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE"),
])
def test_missing_or_inconsistent_variables_name_the_variable(change, variable):
    env = {k: v for k, v in {**OK, **change}.items() if v is not None}
    with pytest.raises(InputError) as info:
        torchrun_env(env)
    assert info.value.argument == f"environment variable {variable}"


def test_torchrun_command_single_and_multi_node():
    assert torchrun_command("train.R", 2, program="Rscript") == [
        "torchrun", "--standalone", "--nproc-per-node=2", "--no-python", "Rscript", "train.R"]
    assert torchrun_command("train.py", 4, nnodes=2, rdzv_endpoint="10.0.0.1:29500") == [
        "torchrun", "--nnodes=2", "--nproc-per-node=4", "--rdzv-backend=c10d",
        "--rdzv-endpoint=10.0.0.1:29500", "--rdzv-id=pydlr", "train.py"]
    with pytest.raises(InputError):
        torchrun_command("train.py", 2, nnodes=2)


def test_errors_outside_a_process_group_pass_unchanged():
    with pytest.raises(RuntimeError, match="shape"):
        with explain_failure():
            raise RuntimeError("shape mismatch")


def test_peer_failure_message_keeps_the_gist():
    from pydlr.train.distributed import _first_sentence

    text = ("[/src/gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:6327. This is "
            "typically caused by a remote worker crashing.")
    assert _first_sentence(text) == "Connection closed by peer [127.0.0.1]:6327"


def test_fit_arguments_travel_to_the_processes_and_back(tmp_path):
    import numpy as np

    from pydlr.data.augment import Augment
    from pydlr.train.distributed import _receive_fit_args, _send_fit_args

    x, y = np.zeros((4, 8, 8, 1), np.float32), np.arange(4)
    sent = _send_fit_args({"validation_data": (x[:2], y[:2]), "sample_weight": np.ones(4),
                           "class_weight": {0: 1.0, 1: 2.0}, "augment": Augment(flip="horizontal", shift=(0.1, 0.1)),
                           "shuffle": False, "precision": "bfloat16", "resume": None}, x, y, tmp_path)
    got = _receive_fit_args(sent, tmp_path)
    assert set(got) == {"validation_data", "sample_weight", "class_weight", "augment", "shuffle", "precision"}
    assert isinstance(got["validation_data"], tuple) and got["validation_data"][0].shape == (2, 8, 8, 1)
    assert got["class_weight"] == {0: 1.0, 1: 2.0} and got["augment"] == Augment(flip="horizontal", shift=(0.1, 0.1))
    assert np.load(tmp_path / "x.npy").shape == (4, 8, 8, 1)
    with pytest.raises(InputError) as info:
        _send_fit_args({"print_it": object()}, x, y, tmp_path)
    assert info.value.argument == "print_it"
