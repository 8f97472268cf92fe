"""The template search path: explicit dirs, $OFFLOAD_TEMPLATE_PATH, user dir, site dir, package."""

import sys

import pytest

from offload.core.templates import search_path, template_environment


@pytest.fixture
def backend_package(tmp_path, monkeypatch):
    package = tmp_path / "packages" / "fakebackend"
    (package / "templates" / "fake").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "templates" / "fake" / "job.sh.j2").write_text(
        "{% block header %}\n#!/bin/bash\n{% endblock %}\n"
        "{% block launch %}\nrun {{ name | quote }}\n{% endblock %}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "packages"))
    monkeypatch.delitem(sys.modules, "fakebackend", raising=False)
    return "fakebackend"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    made = {}
    for name in ("explicit", "env", "user", "site"):
        made[name] = tmp_path / name / "templates" if name == "user" else tmp_path / name
    monkeypatch.setenv("OFFLOAD_TEMPLATE_PATH", str(made["env"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    made["user"] = tmp_path / "user" / "offload" / "templates"
    monkeypatch.setenv("OFFLOAD_SITE_TEMPLATE_DIR", str(made["site"]))
    return made


def put(directory, text):
    (directory / "fake").mkdir(parents=True, exist_ok=True)
    (directory / "fake" / "job.sh.j2").write_text(text)


def render(backend_package, dirs):
    environment = template_environment(backend_package, [dirs["explicit"]])
    return environment.get_template("fake/job.sh.j2").render(name="it's")


def test_search_path_order(dirs):
    assert search_path([dirs["explicit"]]) == [
        dirs["explicit"],
        dirs["env"],
        dirs["user"],
        dirs["site"],
    ]


def test_package_default_is_used_last_and_values_are_quoted(backend_package, dirs):
    assert render(backend_package, dirs) == "#!/bin/bash\nrun 'it'\"'\"'s'\n"


@pytest.mark.parametrize("winner", ["site", "user", "env", "explicit"])
def test_first_match_wins(backend_package, dirs, winner):
    order = ["site", "user", "env", "explicit"]
    for name in order[: order.index(winner) + 1]:
        put(dirs[name], f"from {name}\n")
    assert render(backend_package, dirs) == f"from {winner}\n"


def test_a_site_template_extends_the_default_and_overrides_one_block(backend_package, dirs):
    put(
        dirs["site"],
        '{% extends "default/fake/job.sh.j2" %}\n'
        "{% block header %}\n{{ super() }}module load python\n{% endblock %}\n",
    )
    assert render(backend_package, dirs) == "#!/bin/bash\nmodule load python\nrun 'it'\"'\"'s'\n"


def test_undefined_variables_are_errors(backend_package, dirs):
    import jinja2

    put(dirs["user"], "{{ missing }}")
    with pytest.raises(jinja2.UndefinedError):
        render(backend_package, dirs)
