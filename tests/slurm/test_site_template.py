"""Site and user batch-script templates, on the live cluster: where they are found, what the
submitted script holds, what the job sees, and how a broken template is reported."""

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import cloudpickle
import pytest

from offload.core import SubmissionError
from offload.slurm import SlurmExecutor

pytestmark = pytest.mark.slurm

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TEMPLATE = Path("slurm") / "batch.sh.j2"
WAIT = 180  # seconds; another test run may be using the cluster's CPUs
MARKERS = ("LOADED_MODULES", "OFFLOAD_TEST_CONTAINER", "OFFLOAD_TEST_TEMPLATE")


def report_environment():
    """What a rank sees of the variables the templates set."""
    return {name: os.environ.get(name) for name in MARKERS}


def install(folder, text):
    """Write ``text`` as ``<folder>/slurm/batch.sh.j2``; return the file."""
    path = folder / TEMPLATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def marker_template(origin):
    """A template that extends the default and tells, in the job's environment, where it is from."""
    return (
        '{% extends "default/slurm/batch.sh.j2" %}\n'
        "{% block setup %}\n"
        f"export OFFLOAD_TEST_TEMPLATE={origin}\n"
        "{{ super() }}\n"
        "{% endblock %}\n"
    )


@pytest.fixture
def container(tmp_path):
    """A stand-in for a container runtime: sets a variable, then runs its arguments."""
    path = tmp_path / "fake-container"
    path.write_text('#!/bin/sh\nexport OFFLOAD_TEST_CONTAINER=fake-image\nexec "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def site_dir(tmp_path, monkeypatch, container):
    """The site folder, holding a template in the style of a real site's: modules and a container.

    The user's own template folders are pointed at empty places, so that only this test's
    templates are found.
    """
    for name in ("OFFLOAD_TEMPLATE_PATH", *MARKERS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    site = tmp_path / "site"
    install(
        site,
        '{% extends "default/slurm/batch.sh.j2" %}\n'
        "{% block setup %}\n"
        "module() {\n"
        '    if [ "$1" = load ]; then\n'
        "        shift\n"
        '        export LOADED_MODULES="${LOADED_MODULES:+$LOADED_MODULES:}$*"\n'
        "    fi\n"
        "}\n"
        "module load python/3.11\n"
        "export OFFLOAD_TEST_TEMPLATE=site\n"
        "{{ super() }}\n"
        "{% endblock %}\n"
        "{% block command %}"
        f"{shlex.quote(str(container))} {{{{ super() }}}}"
        "{% endblock %}\n",
    )
    monkeypatch.setenv("OFFLOAD_SITE_TEMPLATE_DIR", str(site))
    return site


def batch_script(job):
    return (job.paths.group_dir / "slurm-batch.sh").read_text()


def test_site_template_shapes_the_script_and_the_job(tmp_path, site_dir, container):
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5, tasks_per_node=2)
    job = executor.submit(report_environment)
    script = batch_script(job)
    assert "module load python/3.11\n" in script
    assert "export OFFLOAD_TEST_TEMPLATE=site\n" in script
    assert f'{container} {executor.python} -m offload.core.run "$job_dir"' in script
    # the default template's lines are still there around the site's
    assert script.startswith("#!/bin/bash\n#SBATCH ")
    assert "srun --output=" in script
    assert script.rstrip().endswith("exit $offload_status")
    seen = {
        "LOADED_MODULES": "python/3.11",
        "OFFLOAD_TEST_CONTAINER": "fake-image",
        "OFFLOAD_TEST_TEMPLATE": "site",
    }
    assert job.results(timeout=WAIT) == [seen, seen]  # every rank ran inside the wrapper


def test_site_template_in_arrays_and_after_user_setup(tmp_path, site_dir):
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5, slurm_setup=["module load gcc/13"])
    jobs = executor.map_array(pow, [2, 3, 4], [2, 2, 2])
    script = batch_script(jobs[0])
    assert script.index("module load python/3.11") < script.index("module load gcc/13")
    assert "#SBATCH --array=0-2\n" in script
    assert [job.result(timeout=WAIT) for job in jobs] == [4, 9, 16]


def test_user_template_dir_wins_over_the_site(tmp_path, site_dir):
    user = tmp_path / "user"
    path = install(user, marker_template("user"))
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5, slurm_template_dir=str(user))
    assert executor.preview()[0].template == str(path)
    job = executor.submit(report_environment)
    script = batch_script(job)
    assert "export OFFLOAD_TEST_TEMPLATE=user\n" in script
    assert "module load" not in script  # the first template found is used whole
    assert job.result(timeout=WAIT) == {
        "LOADED_MODULES": None,
        "OFFLOAD_TEST_CONTAINER": None,
        "OFFLOAD_TEST_TEMPLATE": "user",
    }


def test_template_path_wins_over_the_site(tmp_path, site_dir, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    install(second, marker_template("second"))
    monkeypatch.setenv("OFFLOAD_TEMPLATE_PATH", f"{first}{os.pathsep}{second}")
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5)
    job = executor.submit(report_environment)
    assert "export OFFLOAD_TEST_TEMPLATE=second\n" in batch_script(job)
    assert job.result(timeout=WAIT)["OFFLOAD_TEST_TEMPLATE"] == "second"
    # an earlier folder of the path wins over a later one; the parameter over the whole path
    install(first, marker_template("first"))
    assert "OFFLOAD_TEST_TEMPLATE=first\n" in executor.preview()[0].script
    third = tmp_path / "third"
    install(third, marker_template("third"))
    executor.update_parameters(slurm_template_dir=[str(third)])
    assert "OFFLOAD_TEST_TEMPLATE=third\n" in executor.preview()[0].script


def test_user_config_folder_wins_over_the_site(tmp_path, site_dir):
    path = install(tmp_path / "config" / "offload" / "templates", marker_template("config"))
    [draft] = SlurmExecutor(tmp_path / "jobs").preview()
    assert draft.template == str(path)
    assert "OFFLOAD_TEST_TEMPLATE=config\n" in draft.script


def test_syntax_error_is_reported_at_submit(tmp_path, site_dir):
    path = install(
        site_dir,
        '{% extends "default/slurm/batch.sh.j2" %}\n{% block setup %}\n{% if %}\n{% endblock %}\n',
    )
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5)
    with pytest.raises(SubmissionError) as caught:
        executor.submit(pow, 2, 2)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert list((tmp_path / "jobs").glob("2*")) == []  # the submission's folder is removed


def test_undefined_variable_is_reported_at_submit(tmp_path, site_dir):
    install(
        site_dir,
        '{% extends "default/slurm/batch.sh.j2" %}\n'
        "{% block setup %}\n"
        "module load {{ modules }}\n"
        "{% endblock %}\n",
    )
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5)
    with pytest.raises(SubmissionError) as caught:
        executor.submit(pow, 2, 2)
    message = str(caught.value)
    assert "batch-script template" in message
    assert str(TEMPLATE) in message
    assert "'modules' is undefined" in message
    assert list((tmp_path / "jobs").glob("2*")) == []


def test_missing_template_names_the_folders_searched(tmp_path, site_dir):
    executor = SlurmExecutor(tmp_path / "jobs", slurm_template="slurm/nowhere.sh.j2")
    with pytest.raises(SubmissionError) as caught:
        executor.submit(pow, 2, 2)
    assert "slurm/nowhere.sh.j2" in str(caught.value)
    assert str(site_dir) in str(caught.value)


def _jobs_named(name):
    listed = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%i"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return listed.stdout.split()


def test_preview_shows_the_site_lines_without_submitting(tmp_path, site_dir, container):
    name = f"offload-preview-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "jobs"
    executor = SlurmExecutor(folder, timeout_min=5, name=name)
    drafts = executor.preview(3, test_only=True)
    assert len(drafts) == 1
    [draft] = drafts
    assert draft.template == str(site_dir / TEMPLATE)
    assert "module load python/3.11\n" in draft.script
    assert f"{container} " in draft.script
    assert "#SBATCH --array=0-2\n" in draft.script
    assert f"#SBATCH --job-name={name}\n" in draft.script
    assert draft.accepted, draft.test_only
    assert draft.command == ["sbatch", "--parsable", draft.path]
    assert not folder.exists()
    assert _jobs_named(name) == []
