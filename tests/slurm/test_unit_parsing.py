"""What Slurm prints, read without a cluster: host lists, state words, sacct and squeue lines,
a job's SLURM_* variables and ``scontrol show config``."""

from __future__ import annotations

import pytest

from offload.core import JobState, JobStatus
from offload.slurm import cluster, commands, status
from offload.slurm.commands import SlurmCommandError
from offload.slurm.environment import environment_from
from offload.slurm.hostlist import expand_hostlist
from offload.slurm.states import normalize


@pytest.fixture(autouse=True)
def no_slurm_on_path(tmp_path, monkeypatch):
    """Whatever a test forgets to fake fails here instead of reaching a real Slurm."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))


# --- host lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostlist", "names"),
    [
        ("node1", ["node1"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("node[01-03]", ["node01", "node02", "node03"]),
        ("node[08-11]", ["node08", "node09", "node10", "node11"]),
        ("node[098-101]", ["node098", "node099", "node100", "node101"]),
        ("node[9-11]", ["node9", "node10", "node11"]),
        ("node[0-2]", ["node0", "node1", "node2"]),
        ("node[7]", ["node7"]),
        ("node[1,3,5-6]", ["node1", "node3", "node5", "node6"]),
        ("node[01-03,7],gpu1", ["node01", "node02", "node03", "node7", "gpu1"]),
        ("a,b,c", ["a", "b", "c"]),
        ("gpu[1-2],cpu[3,5]", ["gpu1", "gpu2", "cpu3", "cpu5"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("r[1-2]c[0-1]n[5]", ["r1c0n5", "r1c1n5", "r2c0n5", "r2c1n5"]),
        ("[1-2]", ["1", "2"]),
        ("node[1-2].example.org", ["node1.example.org", "node2.example.org"]),
        ("  node[1-2]\n", ["node1", "node2"]),
        ("", []),
        ("node1,,node2,", ["node1", "node2"]),
    ],
)
def test_expand_hostlist(hostlist, names):
    assert expand_hostlist(hostlist) == names


@pytest.mark.parametrize(
    ("hostlist", "message"),
    [
        ("node[1-3", "unbalanced '\\['"),
        ("node1-3]", "unbalanced '\\]'"),
        ("node]1[", "unbalanced '\\]'"),
        ("node[1-[2]]", "nested brackets"),
        ("node[]", "bad range ''"),
        ("node[a-c]", "bad range 'a-c'"),
        ("node[1-]", "bad range '1-'"),
        ("node[-3]", "bad range '-3'"),
        ("node[1--3]", "bad range"),
        ("node[1,,3]", "bad range ''"),
        ("node[3-1]", "decreasing range '3-1'"),
    ],
)
def test_malformed_hostlist_raises_value_error(hostlist, message):
    with pytest.raises(ValueError, match=message):
        expand_hostlist(hostlist)


def test_hostlist_is_exported_by_the_package():
    import offload.slurm

    assert offload.slurm.expand_hostlist("n[1-2]") == ["n1", "n2"]


# --- state words -----------------------------------------------------------------------------

EVERY_STATE = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "REQUEUED": JobState.REQUEUED,
    "REQUEUE_HOLD": JobState.REQUEUED,
    "REQUEUE_FED": JobState.REQUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "PREEMPTED": JobState.PREEMPTED,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAIL,
}


@pytest.mark.parametrize(("word", "state"), sorted(EVERY_STATE.items()))
def test_every_slurm_state_word(word, state):
    assert normalize(word) is state
    assert normalize(word.lower()) is state
    assert normalize(f"  {word}  ") is state


@pytest.mark.parametrize(
    ("native", "state"),
    [
        ("CANCELLED by 1000", JobState.CANCELLED),
        ("CANCELLED by 0", JobState.CANCELLED),
        ("CANCELLED+", JobState.CANCELLED),  # sacct's fixed-width column cut "CANCELLED by 1000"
        ("OUT_OF_ME+", JobState.OUT_OF_MEMORY),
        ("NODE_FA+", JobState.NODE_FAIL),
        ("SPECIAL_E+", JobState.FAILED),
        ("COMPLETI+", JobState.RUNNING),
        ("COMPLETE+", JobState.COMPLETED),
        ("REQUEUE+", JobState.REQUEUED),  # three words, one state
        ("PREEMPT+", JobState.PREEMPTED),
        ("COMPLET+", JobState.UNKNOWN),  # COMPLETED or COMPLETING
        ("RES+", JobState.UNKNOWN),  # RESIZING or RESV_DEL_HOLD
        ("+", JobState.UNKNOWN),
        ("XYZ+", JobState.UNKNOWN),
    ],
)
def test_qualified_and_truncated_words(native, state):
    assert normalize(native) is state


@pytest.mark.parametrize("native", ["", "   ", "LAUNCHED", "DONE", "RUN", "PENDINGX", "?"])
def test_unknown_words_are_unknown(native):
    assert normalize(native) is JobState.UNKNOWN


# --- sacct and squeue lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "ids"),
    [
        ("123", ["123"]),
        ("123_4", ["123_4"]),
        ("123+0", ["123+0"]),
        ("272_[2-4%2]", ["272_2", "272_3", "272_4"]),
        ("7_[1,3-5]", ["7_1", "7_3", "7_4", "7_5"]),
        ("7_[1,3-5%10]", ["7_1", "7_3", "7_4", "7_5"]),
        ("7_[6]", ["7_6"]),
        ("7_[]", []),
        ("7_[x-y]", []),
        ("7_[1,x,3]", ["7_1", "7_3"]),
        ("7_[2-1]", []),
    ],
)
def test_expand_ids(field, ids):
    assert status.expand_ids(field) == ids


def test_array_id():
    assert status.array_id("123_4") == "123"
    assert status.array_id("123") == "123"


def test_parse_sacct_skips_blank_short_and_idless_lines():
    output = (
        "\n"
        "101|COMPLETED|0:0|None\n"
        "   \n"
        "garbage\n"
        "102|RUNNING\n"
        "|FAILED|1:0|None\n"
        "103|PENDING|0:0|Priority|extra|fields\n"
        "104|RUNNING|0:0|None\r\n"
    )
    assert status.parse_sacct(output) == {
        "101": JobStatus(JobState.COMPLETED, "COMPLETED", ""),
        "103": JobStatus(JobState.PENDING, "PENDING", "Priority"),
        "104": JobStatus(JobState.RUNNING, "RUNNING", ""),
    }


def test_parse_sacct_expands_array_rows():
    output = (
        "272_0|COMPLETED|0:0|None\n"
        "272_1|RUNNING|0:0|None\n"
        "272_[2-4%2]|PENDING|0:0|JobArrayTaskLimit\n"
    )
    parsed = status.parse_sacct(output)
    assert sorted(parsed) == ["272_0", "272_1", "272_2", "272_3", "272_4"]
    assert parsed["272_0"].state is JobState.COMPLETED
    assert parsed["272_1"].state is JobState.RUNNING
    for element in ("272_2", "272_3", "272_4"):
        assert parsed[element] == JobStatus(JobState.PENDING, "PENDING", "JobArrayTaskLimit")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("5|FAILED|1:0|NonZeroExitCode", JobStatus(JobState.FAILED, "FAILED", "exit code 1")),
        ("5|FAILED|0:9|None", JobStatus(JobState.FAILED, "FAILED", "killed by signal 9")),
        ("5|FAILED|2:15|None", JobStatus(JobState.FAILED, "FAILED", "killed by signal 15")),
        ("5|FAILED|3|None", JobStatus(JobState.FAILED, "FAILED", "exit code 3")),
        ("5|FAILED|0:0|RaisedSignal:9", JobStatus(JobState.FAILED, "FAILED", "RaisedSignal:9")),
        ("5|FAILED||None", JobStatus(JobState.FAILED, "FAILED", "")),
        ("5|COMPLETED|0:0|None", JobStatus(JobState.COMPLETED, "COMPLETED", "")),
        ("5|TIMEOUT|0:15|TimeLimit", JobStatus(JobState.TIMEOUT, "TIMEOUT", "TimeLimit")),
        (
            "5|CANCELLED by 1000|0:15|None",
            JobStatus(JobState.CANCELLED, "CANCELLED by 1000", ""),
        ),
        (
            "5|OUT_OF_MEMORY|0:125|None",
            JobStatus(JobState.OUT_OF_MEMORY, "OUT_OF_MEMORY", ""),
        ),
        ("5|NODE_FAIL|1:0|None", JobStatus(JobState.NODE_FAIL, "NODE_FAIL", "")),
    ],
)
def test_parse_sacct_reason_from_exit_code(line, expected):
    assert status.parse_sacct(line) == {"5": expected}


def test_parse_squeue():
    output = (
        "5|RUNNING|None\n"
        "\n"
        "6|PENDING|Priority\n"
        "7_[3-5%2]|PENDING|JobArrayTaskLimit\n"
        "7_1|COMPLETING|None\n"
        "just-one-field\n"
        "8|RUNNING\n"
        "|RUNNING|None\n"
        "9|PREEMPTED|None\n"
    )
    parsed = status.parse_squeue(output)
    assert sorted(parsed) == ["5", "6", "7_1", "7_3", "7_4", "7_5", "9"]
    assert parsed["5"] == JobStatus(JobState.RUNNING, "RUNNING", "")
    assert parsed["6"] == JobStatus(JobState.PENDING, "PENDING", "Priority")
    assert parsed["7_4"] == JobStatus(JobState.PENDING, "PENDING", "JobArrayTaskLimit")
    assert parsed["7_1"].state is JobState.RUNNING
    assert parsed["9"].state is JobState.PREEMPTED


def test_parse_empty_output():
    assert status.parse_sacct("") == {}
    assert status.parse_squeue("\n\n") == {}


# --- a job's environment ---------------------------------------------------------------------


def test_not_in_a_slurm_job():
    assert environment_from({}) is None
    assert environment_from({"SLURM_JOB_ID": "", "SLURM_PROCID": "0"}) is None


def test_plain_job():
    env = environment_from(
        {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node7", "SLURMD_NODENAME": "node7"}
    )
    assert env is not None
    assert env.backend == "slurm"
    assert env.job_id == "4242"
    assert env.array_job_id is None
    assert env.array_task_id is None
    assert (env.num_tasks, env.num_nodes, env.node, env.global_rank, env.local_rank) == (
        1,
        1,
        0,
        0,
        0,
    )
    assert env.hostnames == ("node7",)


def test_array_element_counts_from_the_start_of_the_whole_array():
    environ = {
        "SLURM_JOB_ID": "5003",
        "SLURM_ARRAY_JOB_ID": "5000",
        "SLURM_ARRAY_TASK_ID": "3",
        "OFFLOAD_SLURM_ARRAY_OFFSET": "1000",
    }
    env = environment_from(environ)
    assert env is not None
    assert env.job_id == "5000_3"  # the id sbatch users (and submit) write
    assert env.array_job_id == "5000"
    assert env.array_task_id == 1003
    env = environment_from({**environ, "OFFLOAD_SLURM_ARRAY_OFFSET": ""})
    assert env is not None and env.array_task_id == 3
    env = environment_from({k: v for k, v in environ.items() if "OFFSET" not in k})
    assert env is not None and env.array_task_id == 3


def test_array_variables_without_a_task_make_a_plain_job():
    env = environment_from({"SLURM_JOB_ID": "77", "SLURM_ARRAY_JOB_ID": "70"})
    assert env is not None
    assert (env.job_id, env.array_job_id, env.array_task_id) == ("77", None, None)


def test_srun_rank_variables():
    env = environment_from(
        {
            "SLURM_JOB_ID": "900",
            "SLURM_PROCID": "3",
            "SLURM_LOCALID": "1",
            "SLURM_NODEID": "1",
            "SLURM_NTASKS": "4",
            "SLURM_JOB_NUM_NODES": "2",
            "SLURM_JOB_NODELIST": "node[1-2]",
            "SLURMD_NODENAME": "node2",
        }
    )
    assert env is not None
    assert env.global_rank == 3
    assert env.local_rank == 1
    assert env.node == 1
    assert env.num_tasks == 4
    assert env.num_nodes == 2
    assert env.hostnames == ("node1", "node2")
    assert env.hostname == "node2"


def test_older_variable_names_and_bad_values_fall_back():
    env = environment_from(
        {
            "SLURM_JOB_ID": "900",
            "SLURM_NNODES": "3",
            "SLURM_NODELIST": "n[1-3]",
            "SLURM_PROCID": "not-a-number",
            "SLURM_NTASKS": "-2",
        }
    )
    assert env is not None
    assert env.num_nodes == 3
    assert env.hostnames == ("n1", "n2", "n3")
    assert env.global_rank == 0
    assert env.num_tasks == 1


def test_malformed_nodelist_falls_back_to_this_node():
    env = environment_from(
        {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "node[1-", "SLURMD_NODENAME": "node1"}
    )
    assert env is not None
    assert env.hostnames == ("node1",)
    env = environment_from({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "node[1-"})
    assert env is not None and env.hostnames == ()


# --- scontrol show config --------------------------------------------------------------------

CONFIG = """\
Configuration data as of 2024-05-01T10:00:00
AccountingStorageType   = accounting_storage/slurmdbd
ClusterName             = test
MaxArraySize            = 4001
MinJobAge               = 300 sec
SlurmctldParameters     = enable_configless,idle_on_node_suspend
Empty                   =
Cgroup Support Configuration:
AllowedRAMSpace         = 100.0%

Slurmctld(primary) at ctl is UP
"""


def test_parse_config():
    config = cluster.parse_config(CONFIG)
    assert config["MaxArraySize"] == "4001"
    assert config["MinJobAge"] == "300 sec"
    assert config["SlurmctldParameters"] == "enable_configless,idle_on_node_suspend"
    assert config["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert config["Empty"] == ""
    assert config["AllowedRAMSpace"] == "100.0%"
    assert not any(key.startswith(("Configuration", "Cgroup", "Slurmctld(")) for key in config)


@pytest.fixture
def fresh_cluster(monkeypatch):
    """No configuration read yet, and a fake scontrol: the answers and calls are in the dict."""
    monkeypatch.setattr(cluster, "_config", {})
    fake = {"answer": CONFIG, "calls": 0}

    def run(args, *, timeout=None):
        assert list(args) == ["scontrol", "show", "config"]
        fake["calls"] += 1
        if isinstance(fake["answer"], Exception):
            raise fake["answer"]
        return fake["answer"]

    monkeypatch.setattr(commands, "run", run)
    return fake


def test_max_array_size_is_read_once(fresh_cluster):
    assert cluster.max_array_size() == 4001
    assert cluster.max_array_size() == 4001
    assert fresh_cluster["calls"] == 1


def test_max_array_size_falls_back_when_scontrol_fails_and_asks_again(fresh_cluster):
    fresh_cluster["answer"] = SlurmCommandError(
        ["scontrol"], "Unable to contact slurm controller (connect failure)", 1
    )
    assert cluster.max_array_size() == cluster.DEFAULT_MAX_ARRAY_SIZE == 1001
    assert cluster.config() == {}
    fresh_cluster["answer"] = CONFIG
    assert cluster.max_array_size() == 4001  # the failure was not remembered
    assert fresh_cluster["calls"] == 3


@pytest.mark.parametrize("value", ["0", "", "lots", "-5"])
def test_unusable_max_array_size_falls_back(fresh_cluster, value):
    fresh_cluster["answer"] = f"ClusterName = test\nMaxArraySize = {value}\n"
    assert cluster.max_array_size() == 1001


def test_config_returns_a_copy(fresh_cluster):
    cluster.config()["MaxArraySize"] = "2"
    assert cluster.max_array_size() == 4001


def test_a_job_requeues_itself_alone_by_its_array_element_id(monkeypatch, tmp_path):
    from offload.slurm import commands, plugin

    calls = []
    monkeypatch.setattr(commands, "run_with_retries", lambda args, **kw: calls.append(args))
    # the first element started of array 8817 has SLURM_JOB_ID 8817, which scontrol reads as
    # the whole array: a requeue by that id would stop every element
    element = {"SLURM_JOB_ID": "8817", "SLURM_ARRAY_JOB_ID": "8817", "SLURM_ARRAY_TASK_ID": "1"}
    environment = environment_from(element)
    assert plugin.offload_job_requeue("slurm", environment, tmp_path) is True
    assert calls == [["scontrol", "requeue", "8817_1"]]
