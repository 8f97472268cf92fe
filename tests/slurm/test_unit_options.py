"""The Slurm backend's parameters: what validation refuses, and the #SBATCH options they become."""

from __future__ import annotations

import pytest

from offload.core import ParameterError
from offload.core.parameters import validate_parameters
from offload.slurm import options
from offload.slurm.options import (
    PARAMETERS,
    RESERVED_OPTIONS,
    format_time,
    option_lines,
    sbatch_options,
    sbatch_word,
)
from offload.slurm.plugin import SPEC


def validate(**values):
    return validate_parameters(values, SPEC, [SPEC])


def sbatch_reads(line: str) -> list[str]:
    """The words sbatch takes from the text after ``#SBATCH``.

    Slurm's rules for batch-script lines: words are split on blanks; single or double quotes
    group a word and are removed; a backslash takes the next character literally, inside quotes
    too; an unquoted ``#`` starts a comment; an unmatched quote is a fatal error.
    """
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
            word = word if word is not None else []
            continue
        elif quote:
            if char == quote:
                quote = ""
                continue
        elif char in "\"'":
            quote = char
            word = word if word is not None else []
            continue
        elif char == "#":
            break
        elif char.isspace():
            if word is not None:
                words.append("".join(word))
                word = None
            continue
        word = word if word is not None else []
        word.append(char)
    if quote:
        raise ValueError(f"unmatched {quote} in {line!r}")
    if word is not None:
        words.append("".join(word))
    return words


# --- validation ------------------------------------------------------------------------------

STRING_PARAMETERS = [
    "name",
    "slurm_partition",
    "slurm_qos",
    "slurm_account",
    "slurm_constraint",
    "slurm_exclude",
    "slurm_nodelist",
    "slurm_gres",
    "slurm_mail_user",
    "slurm_comment",
    "slurm_template",
]
CONTROL_CHARACTERS = ["\n", "\r", "\t", "\x00", "\x0b", "\x1b", "\x7f"]


def test_every_string_parameter_is_covered():
    declared = {p.name for p in PARAMETERS if p.types == (str,)}
    assert declared - {"slurm_mail_type"} == set(STRING_PARAMETERS) - {"name"}


@pytest.mark.parametrize("name", STRING_PARAMETERS)
@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=repr)
def test_control_characters_are_refused_in_every_string(name, char):
    with pytest.raises(ParameterError, match=name):
        validate(**{name: f"debug{char}#SBATCH --exclusive"})


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=repr)
def test_control_characters_are_refused_in_lists_and_mappings(char):
    with pytest.raises(ParameterError, match="slurm_mail_type"):
        validate(slurm_mail_type=f"END{char}")
    with pytest.raises(ParameterError, match="slurm_setup"):
        validate(slurm_setup=["module load python", f"echo one{char}echo two"])
    with pytest.raises(ParameterError, match="slurm_template_dir"):
        validate(slurm_template_dir=f"/templates{char}")
    with pytest.raises(ParameterError, match="slurm_template_dir"):
        validate(slurm_template_dir=["/ok", f"/templates{char}"])
    with pytest.raises(ParameterError, match="slurm_additional_parameters"):
        validate(slurm_additional_parameters={"mem_per_cpu": f"2G{char}"})
    with pytest.raises(ParameterError, match="slurm_srun_args"):
        validate(slurm_srun_args=["--cpu-bind=none", f"-v{char}"])


@pytest.mark.parametrize("char", ["\n", "\r", "\x00"], ids=repr)
def test_environment_values_with_line_breaks_are_refused(char):
    with pytest.raises(ParameterError, match="env_vars"):
        validate(env_vars={"GREETING": f"hello{char}export OTHER=1"})


def test_valid_parameters_pass_through():
    values = {
        "name": "my job (v2)",
        "timeout_min": 5,
        "slurm_partition": "debug",
        "slurm_comment": 'say "hello"',
        "slurm_setup": ["module load python/3.11", "cd $HOME && ls 'a b'"],
        "slurm_srun_args": ["--cpu-bind=none", "with space", ""],
        "slurm_additional_parameters": {"mem_per_cpu": "2G", "hold": True, "requeue": False},
        "slurm_mail_type": "END,fail",
        "slurm_exclusive": True,
        "slurm_array_parallelism": 4,
        "slurm_use_srun": False,
        "slurm_template_dir": ["/a", "/b"],
    }
    assert validate(**values) == values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"slurm_setup": "echo one"}, "expected list"),
        ({"slurm_setup": ["echo", 3]}, "each item must be a str, not int"),
        ({"slurm_srun_args": ["--x", None]}, "each item must be a str, not NoneType"),
        ({"slurm_srun_args": ["a\x00b"]}, "one line"),
        ({"slurm_array_parallelism": 0}, "greater than 0"),
        ({"slurm_array_parallelism": True}, "expected int"),
        ({"slurm_exclusive": "yes"}, "expected bool"),
        ({"slurm_mail_type": "END,SOMETIMES"}, "unknown mail type"),
        ({"slurm_template_dir": ["/a", 3]}, "each folder must be a str"),
        ({"slurm_partition": "a\"b'c"}, "both single and double quotes"),
        ({"slurm_partion": "debug"}, "Did you mean 'slurm_partition'"),
    ],
)
def test_bad_values_are_refused(values, message):
    with pytest.raises(ParameterError, match=message):
        validate(**values)


@pytest.mark.parametrize("name", sorted(RESERVED_OPTIONS))
def test_additional_parameters_refuse_reserved_options(name):
    with pytest.raises(ParameterError, match=f"--{name} is .*offload sets itself"):
        validate(slurm_additional_parameters={name: "x"})
    with pytest.raises(ParameterError, match=f"--{name} is .*offload sets itself"):
        validate(slurm_additional_parameters={name.replace("-", "_"): True})


def test_reserved_options_cover_the_logs_and_the_array():
    assert {"array", "output", "error", "open-mode", "parsable", "wrap"} <= RESERVED_OPTIONS


@pytest.mark.parametrize(
    "name", ["--time", "-t", "Mem", "mem per cpu", "mem=1", "", "9lives", "a;b", 3, None]
)
def test_additional_parameters_refuse_bad_option_names(name):
    with pytest.raises(ParameterError, match="is not an sbatch option name"):
        validate(slurm_additional_parameters={name: "1"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2G\n#SBATCH --exclusive", "one line"),
        ("a'b\"c", "both single and double quotes"),
        (["1", "2"], "must be a str, int, float or bool"),
        ({"x": 1}, "must be a str, int, float or bool"),
    ],
)
def test_additional_parameters_refuse_bad_values(value, message):
    with pytest.raises(ParameterError, match=message):
        validate(slurm_additional_parameters={"comment": value})


def test_additional_parameters_accept_numbers_flags_and_removals():
    values = {"nice": 10, "mem_per_gpu": 1.5, "hold": True, "requeue": False, "x11": None}
    assert validate(slurm_additional_parameters=values) == {"slurm_additional_parameters": values}


# --- sbatch words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["debug", "gpu:a100:2", "node01,gpu7", "a@b.org", "x=1,y=2", "1.5G", "%j_%a"]
)
def test_safe_words_are_not_quoted(value):
    assert sbatch_word(value) == value


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("my job", '"my job"'),
        ("", '""'),
        ("a#b", '"a#b"'),
        ("$HOME `id`", '"$HOME `id`"'),
        ("it's", '"it\'s"'),
        ("node[01-04]", '"node[01-04]"'),
        ('say "hi"', "'say \"hi\"'"),
    ],
)
def test_other_words_are_quoted(value, word):
    assert sbatch_word(value) == word


@pytest.mark.parametrize(
    "value",
    [
        "debug",
        "my job",
        "",
        "  padded  ",
        "it's",
        'say "hi"',
        "a#b # c",
        "back\\slash",
        "ends with a backslash\\",
        '\\"',
        "\\\\server\\share",
        "$HOME `id` $(id) ; & | < > *",
        "100%",
        "ünïcödé ✓",
    ],
)
def test_sbatch_reads_back_exactly_the_value(value):
    line = f"--comment={sbatch_word(value)} # a trailing comment"
    assert sbatch_reads(line) == [f"--comment={value}"]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "nul\x00"])
def test_words_with_control_characters_are_refused(value):
    with pytest.raises(ValueError, match="one line"):
        sbatch_word(value)


def test_word_with_both_quotes_is_refused():
    with pytest.raises(ValueError, match="both single and double quotes"):
        sbatch_word("""it's "quoted\"""")


def test_option_lines():
    options = {"job-name": "my job", "exclusive": None, "time": "5:00", "comment": "a\\b"}
    lines = option_lines(options)
    assert lines == ['--job-name="my job"', "--exclusive", "--time=5:00", '--comment="a\\\\b"']
    assert [sbatch_reads(line) for line in lines] == [
        ["--job-name=my job"],
        ["--exclusive"],
        ["--time=5:00"],
        ["--comment=a\\b"],
    ]


# --- sbatch options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "time"),
    [
        (0.5, "0:30"),
        (1, "1:00"),
        (90, "90:00"),
        (1.5, "1:30"),
        (1 / 60, "0:01"),
        (0.001, "0:01"),  # rounded up, and never 0 (which means no limit)
        (0.0001, "0:01"),
        (1.01, "1:01"),  # 60.6 s
        (4.15, "4:09"),  # 249 s, though 4.15 * 60 is not exactly 249.0 in floating point
        (8.05, "8:03"),
        (2.999, "3:00"),  # 179.94 s → 180 s
        (10_000, "10000:00"),
    ],
)
def test_format_time_rounds_up_to_whole_seconds(minutes, time):
    assert format_time(minutes) == time


DEFAULTS = {
    "job-name": "offload",
    "nodes": "1",
    "ntasks-per-node": "1",
    "signal": "B:USR2@90",
    "requeue": None,
}


def test_defaults():
    assert sbatch_options({}) == DEFAULTS


def test_checkpoint_signal_and_delay():
    assert sbatch_options({"checkpoint_signal": "SIGUSR1", "signal_delay_s": 30})["signal"] == (
        "B:USR1@30"
    )
    # never more than half the time limit, so that a short job still gets some work done
    assert sbatch_options({"timeout_min": 1})["signal"] == "B:USR2@30"
    assert sbatch_options({"timeout_min": 10, "signal_delay_s": 2.5})["signal"] == "B:USR2@3"


def test_the_checkpoint_signal_goes_to_srun_tasks_or_to_the_batch_shell():
    assert sbatch_options({"nodes": 2})["signal"] == "USR2@90", "srun's tasks"
    assert sbatch_options({"slurm_use_srun": True})["signal"] == "USR2@90"
    assert sbatch_options({})["signal"] == "B:USR2@90", "the shell that started the one rank"


def test_requeue_can_be_turned_off():
    options = sbatch_options({"slurm_additional_parameters": {"requeue": False}})
    assert "requeue" not in options


def test_generic_parameters_map_to_sbatch_names():
    options = sbatch_options(
        {
            "name": "train",
            "nodes": 2,
            "tasks_per_node": 4,
            "cpus_per_task": 8,
            "gpus_per_node": 4,
            "mem_gb": 1.5,
            "timeout_min": 0.5,
        }
    )
    assert options == {
        "job-name": "train",
        "nodes": "2",
        "ntasks-per-node": "4",
        "cpus-per-task": "8",
        "gpus-per-node": "4",
        "mem": "1536M",
        "time": "0:30",
        "signal": "USR2@15",
        "requeue": None,
    }


@pytest.mark.parametrize(
    ("mem_gb", "mem"), [(1.5, "1536M"), (4, "4096M"), (0.1, "103M"), (1 / 1024, "1M")]
)
def test_memory_in_megabytes_rounded_up(mem_gb, mem):
    assert sbatch_options({"mem_gb": mem_gb})["mem"] == mem


def test_timeout_of_ninety_minutes():
    assert sbatch_options({"timeout_min": 90})["time"] == "90:00"


def test_zero_gpus_ask_for_no_gpu_option():
    assert "gpus-per-node" not in sbatch_options({"gpus_per_node": 0})


def test_backend_parameters_map_to_sbatch_names():
    options = sbatch_options(
        {
            "slurm_partition": "debug",
            "slurm_qos": "high",
            "slurm_account": "proj",
            "slurm_constraint": "a100&ib",
            "slurm_exclude": "node[1-2]",
            "slurm_nodelist": "node3",
            "slurm_gres": "gpu:2",
            "slurm_mail_type": "END",
            "slurm_mail_user": "me@example.org",
            "slurm_comment": "nightly run",
            "slurm_exclusive": True,
        }
    )
    assert options["partition"] == "debug"
    assert options["qos"] == "high"
    assert options["account"] == "proj"
    assert options["constraint"] == "a100&ib"
    assert options["exclude"] == "node[1-2]"
    assert options["nodelist"] == "node3"
    assert options["gres"] == "gpu:2"
    assert options["mail-type"] == "END"
    assert options["mail-user"] == "me@example.org"
    assert options["comment"] == "nightly run"
    assert "exclusive" in options and options["exclusive"] is None


def test_exclusive_false_is_no_option():
    assert "exclusive" not in sbatch_options({"slurm_exclusive": False})


def test_parameters_not_for_sbatch_make_no_option():
    options = sbatch_options(
        {
            "env_vars": {"A": "1"},
            "slurm_setup": ["echo"],
            "slurm_srun_args": ["-v"],
            "slurm_use_srun": True,
            "slurm_array_parallelism": 3,
            "slurm_template": "x.j2",
            "slurm_template_dir": "/t",
        }
    )
    assert options == {**DEFAULTS, "signal": "USR2@90"}, "only where the signal goes changes"


def test_additional_parameters_come_last_and_win():
    options = sbatch_options(
        {
            "timeout_min": 5,
            "slurm_partition": "debug",
            "slurm_additional_parameters": {
                "mem_per_cpu": "2G",
                "hold": True,
                "time": "1-00:00:00",
                "partition": False,
                "nodes": None,
                "nice": 10,
                "requeue": False,
            },
        }
    )
    assert options["mem-per-cpu"] == "2G"
    assert options["hold"] is None  # a flag
    assert options["time"] == "1-00:00:00"
    assert options["nice"] == "10"
    assert "partition" not in options  # False removes the generic option
    assert "nodes" not in options
    assert "requeue" not in options
    assert list(options)[-3:] == ["mem-per-cpu", "hold", "nice"]


@pytest.mark.parametrize("name", ["out", "outp", "arr", "wr", "err", "open", "open_mode", "pars"])
def test_abbreviations_of_reserved_options_are_refused(name):
    """sbatch accepts unambiguous prefixes of long options, so these would reach --output..."""
    with pytest.raises(ValueError, match="offload sets itself"):
        options._additional({name: "x"})


def test_options_that_only_share_a_letter_with_reserved_ones_pass():
    options._additional({"exclude": "node1", "export": "ALL", "partition": "debug"})
