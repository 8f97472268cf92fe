"""The template search path shared by every backend that renders launch scripts.

A template named ``<backend>/<file>`` is looked up, first match wins, in:

1. the directories given explicitly (e.g. a ``template_dir`` option of the executor);
2. the directories in ``$OFFLOAD_TEMPLATE_PATH`` (separated like ``PATH``);
3. the user's directory, ``$XDG_CONFIG_HOME/offload/templates`` (``~/.config/offload/templates``);
4. the site directory, ``$OFFLOAD_SITE_TEMPLATE_DIR`` or ``/etc/offload/templates``;
5. the backend package's own ``templates/`` folder.

The package's templates are also reachable as ``default/<backend>/<file>``, so a site template
can ``{% extends "default/slurm/batch.sh.j2" %}`` and override a single block.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import jinja2

SITE_DIR = Path("/etc/offload/templates")


def search_path(explicit: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """The directories searched before the package defaults, in order."""
    paths = [Path(p).expanduser() for p in explicit]
    paths += [
        Path(p).expanduser()
        for p in os.environ.get("OFFLOAD_TEMPLATE_PATH", "").split(os.pathsep)
        if p
    ]
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
        os.path.expanduser("~"), ".config"
    )
    paths.append(Path(config_home) / "offload" / "templates")
    paths.append(Path(os.environ.get("OFFLOAD_SITE_TEMPLATE_DIR") or SITE_DIR))
    return paths


def shell_quote(value: object) -> str:
    """Quote ``value`` as one shell word."""
    return shlex.quote(str(value))


def template_environment(
    package: str, explicit: Sequence[str | os.PathLike[str]] = ()
) -> jinja2.Environment:
    """A Jinja2 environment over the search path, ending with ``package``'s ``templates/``.

    ``package`` is the backend's regular package (``"offload.slurm"``), not the namespace.
    Undefined variables are errors. The ``quote`` filter quotes a value as one shell word.
    """
    defaults = jinja2.PackageLoader(package, "templates")
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader([str(p) for p in search_path(explicit)]),
            jinja2.PrefixLoader({"default": defaults}),
            defaults,
        ]
    )
    environment = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    environment.filters["quote"] = shell_quote
    return environment


def template_origin(environment: jinja2.Environment, name: str) -> str:
    """Where the template ``name`` would be loaded from (a file path), for messages and dry runs."""
    template = environment.get_template(name)
    return template.filename or name
