"""Batch scripts: rendering, quoting, templates and array chunks, checked by running them in bash
with a fake ``srun`` (no Slurm involved)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offload.core import JobPaths, LaunchRequest, SubmissionError
from offload.core.testing import wait_until
from offload.slurm import cluster
from offload.slurm.script import TEMPLATE, ArrayChunk, context, plan_chunks, render
from offload.slurm.submit import scripts_for

BASH = "/bin/bash"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No Slurm command and no user or site template can be reached from these tests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("OFFLOAD_TEMPLATE_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OFFLOAD_SITE_TEMPLATE_DIR", str(tmp_path / "site"))
    return bin_dir


def make_request(
    tmp_path: Path, num_jobs: int = 1, *, python: Path | str = sys.executable, **parameters
) -> LaunchRequest:
    """A request for ``num_jobs`` jobs whose ranks run ``python`` (a fake, in some tests)."""
    group_dir = tmp_path / "logs dir" / "20240101-000000-abcdef"
    jobs = [JobPaths(group_dir / str(index)) for index in range(num_jobs)]
    for job in jobs:
        job.job_dir.mkdir(parents=True)
    return LaunchRequest(group_dir, jobs, parameters, str(python))


def sbatch_lines(text: str) -> list[str]:
    return [
        line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH")
    ]


def write_fake(path: Path, body: str) -> Path:
    """An executable Python script (no site-packages, so it starts fast)."""
    path.write_text(f"#!{sys.executable} -IS\n{body}")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_srun(isolated, tmp_path):
    """A fake srun on PATH: records its arguments, working folder and environment; exits 0."""
    record = tmp_path / "srun.json"
    write_fake(
        isolated / "srun",
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'w') as f:\n"
        "    json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, f)\n",
    )
    return record


def run_script(text: str, tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """Run a batch script in bash, as a node would; the fake commands come first on PATH."""
    path = tmp_path / "batch.sh"
    path.write_text(text)
    env = {"PATH": f"{os.environ['PATH']}:/usr/bin:/bin", **environ}
    return subprocess.run(
        [BASH, str(path)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


# --- rendering -------------------------------------------------------------------------------


def test_single_job(tmp_path):
    request = make_request(tmp_path, timeout_min=5, name="one")
    script = render(request, None)
    group = request.group_dir
    assert script.path == group / "slurm-batch.sh"
    assert script.chunk is None
    assert script.template.endswith(os.path.join("templates", "slurm", "batch.sh.j2"))
    assert script.text.startswith("#!/bin/bash\n")
    lines = sbatch_lines(script.text)
    assert "--job-name=one" in lines
    assert "--time=5:00" in lines
    assert f'--output="{group}/0/launcher.log"' in lines
    assert "--open-mode=append" in lines
    assert not any(line.startswith(("--array", "--error")) for line in lines)
    assert "export OFFLOAD_SLURM_ARRAY_OFFSET=0\n" in script.text
    assert "ln -sfn" not in script.text


def test_sbatch_lines_come_before_any_command(tmp_path):
    """sbatch stops reading #SBATCH lines at the first command."""
    text = render(make_request(tmp_path, slurm_setup=["echo setup"]), None).text
    lines = [line for line in text.splitlines()[1:] if line.strip()]
    first_command = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])
    assert len(sbatch_lines(text)) == first_command


def test_single_job_runs_srun_in_its_folder(tmp_path, fake_srun):
    request = make_request(tmp_path, slurm_srun_args=["--cpu-bind=none", "two words"])
    finished = run_script(render(request, None).text, tmp_path)
    assert finished.returncode == 0, finished.stderr
    argv = json.loads(fake_srun.read_text())["argv"]
    job_dir = str(request.group_dir / "0")
    assert argv == [
        f"--output={job_dir}/stdout.%t.log",
        f"--error={job_dir}/stderr.%t.log",
        "--open-mode=append",
        "--cpu-bind=none",
        "two words",
        sys.executable,
        "-m",
        "offload.core.run",
        job_dir,
    ]


@pytest.mark.parametrize("use_srun", [True, False])
def test_the_scripts_exit_status_is_the_ranks(tmp_path, isolated, use_srun):
    write_fake(isolated / "srun", "import sys\nsys.exit(3)\n")
    python = write_fake(tmp_path / "python", "import sys\nsys.exit(3)\n")
    request = make_request(tmp_path, slurm_use_srun=use_srun, python=python)
    finished = run_script(render(request, None).text, tmp_path)
    assert finished.returncode == 3


def test_one_plain_task_runs_without_srun_and_several_ranks_with_it(tmp_path):
    assert "srun --" not in render(make_request(tmp_path / "a"), None).text
    assert "srun --" in render(make_request(tmp_path / "b", tasks_per_node=2), None).text
    assert "srun --" in render(make_request(tmp_path / "c", slurm_srun_args=["-v"]), None).text


def test_without_srun_the_shell_passes_the_checkpoint_signal_on_and_outlives_sigterm(tmp_path):
    """Slurm signals the batch shell (--signal=B:...) and, on preemption or at the time limit,
    sends SIGTERM to every process of the job: the rank must get the first, and the shell must
    wait for the rank after the second."""
    seen, ready, finish = tmp_path / "seen", tmp_path / "ready", tmp_path / "finish"
    python = write_fake(
        tmp_path / "python",
        "import os, signal, sys, time\n"
        f"def note(number, frame):\n    open({str(seen)!r}, 'a').write(f'{{number}}\\n')\n"
        "signal.signal(signal.SIGUSR2, note)\nsignal.signal(signal.SIGTERM, note)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        f"while not os.path.exists({str(finish)!r}):\n    time.sleep(0.02)\n"
        "sys.exit(7)\n",
    )
    request = make_request(tmp_path, python=python)
    text = render(request, None).text
    assert "#SBATCH --signal=B:USR2@" in text
    path = tmp_path / "batch.sh"
    path.write_text(text)
    shell = subprocess.Popen([BASH, str(path)], cwd=tmp_path)
    try:
        wait_until(ready.exists, 30, "the rank to start")
        shell.send_signal(signal.SIGUSR2)
        wait_until(
            lambda: seen.exists() and seen.read_text() == f"{int(signal.SIGUSR2)}\n",
            30,
            "the rank to get the checkpoint signal",
        )
        shell.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert shell.poll() is None, "the shell ended on SIGTERM before its rank"
        finish.touch()
        assert shell.wait(timeout=30) == 7
    finally:
        shell.kill()


def test_array_chunk_at_offset_zero(tmp_path, fake_srun):
    request = make_request(tmp_path, 10, slurm_array_parallelism=3, slurm_use_srun=True)
    script = render(request, ArrayChunk(0, 10, 3))
    assert script.path == request.group_dir / "slurm-batch.sh"
    lines = sbatch_lines(script.text)
    assert "--array=0-9%3" in lines
    assert f'--output="{request.group_dir}/%a/launcher.log"' in lines
    assert "ln -sfn" not in script.text
    finished = run_script(script.text, tmp_path, SLURM_ARRAY_TASK_ID="7")
    assert finished.returncode == 0, finished.stderr
    recorded = json.loads(fake_srun.read_text())
    assert recorded["argv"][-1] == str(request.group_dir / "7")
    assert recorded["env"]["OFFLOAD_SLURM_ARRAY_OFFSET"] == "0"


def test_array_chunk_at_an_offset_links_its_launcher_log(tmp_path, fake_srun):
    request = make_request(tmp_path, 1003, slurm_use_srun=True)
    script = render(request, ArrayChunk(1000, 3))
    assert script.path == request.group_dir / "slurm-batch.1000.sh"
    lines = sbatch_lines(script.text)
    assert "--array=0-2" in lines
    assert f'--output="{request.group_dir}/launcher.1000+%a.log"' in lines
    assert "ln -sfn" in script.text
    finished = run_script(script.text, tmp_path, SLURM_ARRAY_TASK_ID="2")
    assert finished.returncode == 0, finished.stderr
    recorded = json.loads(fake_srun.read_text())
    job_dir = request.group_dir / "1002"
    assert recorded["argv"][-1] == str(job_dir)
    assert recorded["env"]["OFFLOAD_SLURM_ARRAY_OFFSET"] == "1000"
    link = job_dir / "launcher.log"
    assert os.readlink(link) == "../launcher.1000+2.log"
    # where sbatch writes element 2's output (``%a`` is 2) is where the link leads
    assert link.resolve() == (request.group_dir / "launcher.1000+2.log").resolve()


def test_environment_values_are_inert_and_round_trip(tmp_path, fake_srun):
    marker = tmp_path / "executed"
    env_vars = {
        "PLAIN": "value",
        "SPACES": "  two  spaces  ",
        "QUOTES": """it's "quoted" ''""",
        "SUBSHELL": f"$(touch {marker})",
        "BACKTICKS": f"`touch {marker}`",
        "SEMICOLON": f"x; touch {marker}; y",
        "EXPANSIONS": "$HOME ${PATH} $1 $? !! ~ * [a-z]",
        "BACKSLASH": "a\\b\\'c\\",
        "NEWLINES": f"first\nsecond\n$(touch {marker})\n",
        "EMPTY": "",
        "UNICODE": "ünïcödé ✓",
        "MIXED": f"\"'; touch {marker}; echo '\"",
    }
    text = render(make_request(tmp_path, env_vars=env_vars, slurm_use_srun=True), None).text
    syntax = subprocess.run([BASH, "-n"], input=text, capture_output=True, text=True, timeout=60)
    assert syntax.returncode == 0, syntax.stderr
    finished = run_script(text, tmp_path)
    assert finished.returncode == 0, finished.stderr
    environment = json.loads(fake_srun.read_text())["env"]
    assert {name: environment.get(name) for name in env_vars} == env_vars
    assert not marker.exists()


@pytest.mark.parametrize("timeout_min", [None, 5])
def test_the_submitters_job_side_variables_do_not_reach_the_job(tmp_path, fake_srun, timeout_min):
    """sbatch passes the submitting environment on: submitted from inside another job, a job
    must not inherit that job's checkpoint time, with or without a time limit of its own."""
    parameters = {"timeout_min": timeout_min} if timeout_min else {}
    request = make_request(tmp_path, slurm_use_srun=True, **parameters)
    started = time.time()
    inherited = {"OFFLOAD_CHECKPOINT_AT": "12345", "OFFLOAD_SIGTERM_WAITS": "0"}
    finished = run_script(render(request, None).text, tmp_path, **inherited)
    assert finished.returncode == 0, finished.stderr
    environment = json.loads(fake_srun.read_text())["env"]
    assert environment["OFFLOAD_SIGTERM_WAITS"] == "1"
    if timeout_min is None:
        assert "OFFLOAD_CHECKPOINT_AT" not in environment
    else:  # 90 s before the limit, counted from the job's start
        due = float(environment["OFFLOAD_CHECKPOINT_AT"]) - started
        assert timeout_min * 60 - 90 - 2 <= due <= timeout_min * 60 - 90 + 2


def test_setup_lines_run_in_order_before_the_launch(tmp_path, fake_srun):
    setup = ["echo one >> setup.log", "export FROM_SETUP=yes", "echo two >> setup.log"]
    request = make_request(tmp_path, slurm_setup=setup, slurm_use_srun=True)
    finished = run_script(render(request, None).text, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "setup.log").read_text() == "one\ntwo\n"
    assert json.loads(fake_srun.read_text())["env"]["FROM_SETUP"] == "yes"


def test_without_srun_one_task_runs_directly(tmp_path, isolated):
    python = write_fake(
        tmp_path / "python with space",
        "import sys\nprint(' '.join(sys.argv[1:]))\nprint('oops', file=sys.stderr)\n",
    )
    request = make_request(tmp_path, slurm_use_srun=False, python=python)
    text = render(request, None).text
    assert "srun --" not in text
    finished = run_script(text, tmp_path)
    assert finished.returncode == 0, finished.stderr
    job = request.jobs[0]
    assert job.stdout(0).read_text() == f"-m offload.core.run {job.job_dir}\n"
    assert job.stderr(0).read_text() == "oops\n"


@pytest.mark.parametrize(("nodes", "tasks_per_node"), [(2, 1), (1, 2), (3, 4)])
def test_without_srun_several_tasks_are_refused(tmp_path, nodes, tasks_per_node):
    request = make_request(
        tmp_path, slurm_use_srun=False, nodes=nodes, tasks_per_node=tasks_per_node
    )
    with pytest.raises(SubmissionError, match=f"slurm_use_srun=False.*= {nodes * tasks_per_node}"):
        render(request, None)


def test_context_lists_what_templates_see(tmp_path):
    request = make_request(tmp_path, 4, env_vars={"A": "1"}, slurm_setup=["true"])
    seen = context(request, ArrayChunk(0, 4))
    assert seen["num_jobs"] == 4
    assert seen["num_tasks"] == 1
    assert seen["env_vars"] == {"A": "1"}
    assert seen["setup"] == ["true"]
    assert seen["use_srun"] is False, "one plain task needs no srun"
    assert seen["checkpoint_signal"] == "USR2"
    assert seen["python"] == sys.executable
    assert seen["group_dir"] == str(request.group_dir)
    assert seen["options"]["array"] == "0-3"
    assert seen["options"]["open-mode"] == "append"
    assert seen["sbatch_options"][-3:] == [
        "--array=0-3",
        f'--output="{request.group_dir}/%a/launcher.log"',
        "--open-mode=append",
    ]


# --- templates -------------------------------------------------------------------------------

EXTENDING = """{% extends "default/slurm/batch.sh.j2" %}
{% block setup %}
echo custom setup for {{ num_jobs }} job(s)
{{ super() }}
{% endblock %}
"""


def test_template_given_as_a_file(tmp_path):
    template = tmp_path / "mine" / "custom.sh.j2"
    template.parent.mkdir()
    template.write_text(EXTENDING)
    request = make_request(tmp_path, slurm_template=str(template), slurm_setup=["module load x"])
    script = render(request, None)
    assert script.template == str(template)
    assert "echo custom setup for 1 job(s)\nmodule load x\n" in script.text
    assert "#SBATCH --open-mode=append" in script.text  # the rest comes from the default


def test_template_folder_overrides_the_default(tmp_path):
    folder = tmp_path / "templates"
    (folder / "slurm").mkdir(parents=True)
    (folder / "slurm" / "batch.sh.j2").write_text(EXTENDING)
    script = render(make_request(tmp_path, slurm_template_dir=str(folder)), None)
    assert script.template == str(folder / "slurm" / "batch.sh.j2")
    assert "echo custom setup" in script.text


def test_template_by_name_in_a_folder_list(tmp_path):
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        folder.mkdir()
    (folders[1] / "mine.j2").write_text("#!/bin/bash\n# {{ num_jobs }} job(s)\n")
    request = make_request(
        tmp_path, slurm_template="mine.j2", slurm_template_dir=[str(f) for f in folders]
    )
    script = render(request, None)
    assert script.text == "#!/bin/bash\n# 1 job(s)\n"
    assert script.template == str(folders[1] / "mine.j2")


def test_missing_template_names_the_folders_searched(tmp_path):
    folder = tmp_path / "my templates"
    request = make_request(tmp_path, slurm_template="nope.sh.j2", slurm_template_dir=str(folder))
    with pytest.raises(SubmissionError) as raised:
        render(request, None)
    message = str(raised.value)
    assert "'nope.sh.j2' not found" in message
    assert str(folder) in message
    assert str(tmp_path / "config" / "offload" / "templates") in message
    assert str(tmp_path / "site") in message
    assert "offload.slurm package" in message


def test_template_with_a_syntax_error(tmp_path):
    template = tmp_path / "broken.j2"
    template.write_text("#!/bin/bash\n\n{% if %}\n")
    with pytest.raises(SubmissionError, match=r"broken\.j2, line 3"):
        render(make_request(tmp_path, slurm_template=str(template)), None)


def test_template_using_an_unknown_variable(tmp_path):
    template = tmp_path / "typo.j2"
    template.write_text("#!/bin/bash\necho {{ nmu_jobs }}\n")
    with pytest.raises(SubmissionError, match=r"failed to render.*nmu_jobs"):
        render(make_request(tmp_path, slurm_template=str(template)), None)


def test_default_template_name():
    assert TEMPLATE == "slurm/batch.sh.j2"


# --- array chunks ----------------------------------------------------------------------------


def test_chunks_up_to_the_maximum_are_one_array():
    assert plan_chunks(1001, 1001, None) == [ArrayChunk(0, 1001, None)]


def test_one_more_makes_a_second_array():
    assert plan_chunks(1002, 1001, None) == [ArrayChunk(0, 1001), ArrayChunk(1001, 1)]


def test_chunks_with_offsets_and_sizes():
    chunks = plan_chunks(2500, 1000, 16)
    assert [(c.offset, c.size) for c in chunks] == [(0, 1000), (1000, 1000), (2000, 500)]
    assert [c.spec for c in chunks] == ["0-999%16", "0-999%16", "0-499%16"]
    assert sum(c.size for c in chunks) == 2500


def test_chunk_spec():
    assert ArrayChunk(0, 1).spec == "0-0"
    assert ArrayChunk(5, 200, None).spec == "0-199"
    assert ArrayChunk(0, 200, 4).spec == "0-199%4"


def test_no_jobs_no_chunk_and_a_bad_maximum_still_progresses():
    assert plan_chunks(0, 1001, None) == []
    assert plan_chunks(3, 0, None) == [ArrayChunk(0, 1), ArrayChunk(1, 1), ArrayChunk(2, 1)]


def test_scripts_for_an_array_split_by_max_array_size(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "max_array_size", lambda: 2)
    request = make_request(tmp_path, 5, slurm_array_parallelism=1)
    scripts = scripts_for(request)
    assert [s.path.name for s in scripts] == [
        "slurm-batch.sh",
        "slurm-batch.2.sh",
        "slurm-batch.4.sh",
    ]
    assert [s.chunk for s in scripts] == [
        ArrayChunk(0, 2, 1),
        ArrayChunk(2, 2, 1),
        ArrayChunk(4, 1, 1),
    ]
    assert [[x for x in sbatch_lines(s.text) if x.startswith("--array")] for s in scripts] == [
        ["--array=0-1%1"],
        ["--array=0-1%1"],
        ["--array=0-0%1"],
    ]


def test_scripts_for_a_single_job_is_no_array(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "max_array_size", lambda: pytest.fail("not needed"))
    (script,) = scripts_for(make_request(tmp_path))
    assert script.chunk is None
    assert not any(line.startswith("--array") for line in sbatch_lines(script.text))


def test_a_folder_with_a_percent_sign_is_refused(tmp_path):
    """Slurm would expand %j, %a... inside the log paths and lose the logs."""
    group_dir = tmp_path / "100%" / "20240101-000000-abcdef"
    request = LaunchRequest(group_dir, [JobPaths(group_dir / "0")], {}, sys.executable)
    with pytest.raises(SubmissionError, match="contains '%'"):
        render(request, None)


def test_a_template_extending_itself_says_so(tmp_path):
    folder = tmp_path / "templates" / "slurm"
    folder.mkdir(parents=True)
    (folder / "batch.sh.j2").write_text('{% extends "slurm/batch.sh.j2" %}\n')
    request = make_request(tmp_path, slurm_template_dir=str(tmp_path / "templates"))
    with pytest.raises(SubmissionError, match=r"extends or includes itself.*'default/slurm"):
        render(request, None)


def test_a_job_name_sbatch_could_not_read_is_refused_at_submit(tmp_path):
    request = make_request(tmp_path, name="""both ' and " quotes""")
    with pytest.raises(SubmissionError, match=r"job-name.*both single and double quotes"):
        render(request, None)
