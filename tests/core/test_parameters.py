"""Parameter names and values are checked before anything is submitted."""

import pytest

from offload.core import Executor, ParameterError


@pytest.fixture
def executor(tmp_path):
    return Executor(tmp_path, "local")


def test_misspelled_name_names_the_closest_valid_ones(executor):
    with pytest.raises(ParameterError, match=r"'timout_min'.*Did you mean 'timeout_min'"):
        executor.update_parameters(timout_min=5)


def test_name_without_prefix_is_refused_with_suggestions(executor):
    with pytest.raises(ParameterError, match=r"Did you mean 'mem_gb'"):
        executor.update_parameters(mem=4)


def test_misspelled_parameter_of_another_installed_backend_is_refused(executor):
    with pytest.raises(ParameterError, match=r"Did you mean 'debug_post_mortem'"):
        executor.update_parameters(debug_post_mortm=True)


def test_unknown_name_with_own_prefix_is_refused(executor):
    with pytest.raises(ParameterError, match=r"'local_partition' of the installed backend 'local'"):
        executor.update_parameters(local_partition="x")


def test_other_backends_parameters_are_accepted_and_not_passed_on(executor):
    executor.update_parameters(debug_post_mortem=True, timeout_min=5, cpusched_queue="anything")
    assert executor._own == {"timeout_min": 5}
    assert executor.parameters["cpusched_queue"] == "anything"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("cpus_per_task", "2", "expected int"),
        ("cpus_per_task", True, "expected int"),
        ("cpus_per_task", 0, "greater than 0"),
        ("timeout_min", -1, "greater than 0"),
        ("gpus_per_node", -1, "must not be negative"),
        ("name", "two\nlines", "one line"),
        ("name", "tab\there", "one line"),
        ("env_vars", {"1BAD": "x"}, "not a valid environment variable name"),
        ("env_vars", {"GOOD": 3}, "must be a str"),
        ("debug_post_mortem", "yes", "expected bool"),
        ("checkpoint_signal", "KILL", "cannot be caught"),
        ("checkpoint_signal", "SIGTERM", "stops a job"),
        ("checkpoint_signal", "USR3", "not a signal name"),
    ],
)
def test_bad_values_are_refused(executor, name, value, message):
    with pytest.raises(ParameterError, match=message):
        executor.update_parameters(**{name: value})


def test_a_refused_update_changes_nothing(executor):
    executor.update_parameters(timeout_min=5)
    with pytest.raises(ParameterError):
        executor.update_parameters(timeout_min=10, cpus_per_task="x")
    assert executor.parameters == {"timeout_min": 5}


def test_parameters_can_be_given_to_the_executor(tmp_path):
    executor = Executor(tmp_path, "local", timeout_min=3, env_vars={"A": "b"})
    assert executor._own == {"timeout_min": 3, "env_vars": {"A": "b"}}
    with pytest.raises(ParameterError, match=r"Did you mean 'nodes'"):
        Executor(tmp_path, "local", node=2)
