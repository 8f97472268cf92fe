"""Write docs/hooks.md, the hook reference, from the docstrings of offload/core/hookspecs.py.

    python docs/gen_hooks.py          # rewrite docs/hooks.md
    python docs/gen_hooks.py --check  # exit 1 if docs/hooks.md is out of date

The hook specifications are the single source: edit their docstrings, then run this script.
tests/docs/test_hook_reference.py fails when docs/hooks.md is stale or a hook is undocumented.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from pathlib import Path
from types import FunctionType

from offload.core import hookspecs

OUTPUT = Path(__file__).with_name("hooks.md")
PREFIX = hookspecs.PROJECT + "_"
_ROLE = re.compile(r":(?:func|meth|class|attr|mod|data|exc):`(~?)([\w.]+)`")
_FIELD = re.compile(r"^:(param (\w+)|returns?):\s*(.*)$")


LINE_LENGTH = 100
"""The project's line length (``[tool.ruff] line-length``), which code blocks keep to."""


def hook_specs() -> list[FunctionType]:
    """The hook specifications, in source order."""
    found = [
        value
        for name, value in vars(hookspecs).items()
        if name.startswith(PREFIX) and hasattr(value, f"{hookspecs.PROJECT}_spec")
    ]
    return sorted(found, key=lambda function: function.__code__.co_firstlineno)


def is_firstresult(function: FunctionType) -> bool:
    return bool(getattr(function, f"{hookspecs.PROJECT}_spec").get("firstresult"))


def _signatures() -> dict[str, str]:
    """Each hook's ``def`` line, as written in the source (annotations unevaluated)."""
    tree = ast.parse(inspect.getsource(hookspecs))
    lines = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith(PREFIX):
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            line = f"def {node.name}({ast.unparse(node.args)}){returns}: ..."
            if len(line) > LINE_LENGTH:  # wrapped as ruff format wraps it
                line = f"def {node.name}(\n    {ast.unparse(node.args)}\n){returns}: ..."
            lines[node.name] = line
    return lines


def _groups() -> dict[str, str]:
    """Each hook's group, from the ``# ----`` banner comments above it in the source."""
    groups, current, banner = {}, "", False
    for line in inspect.getsource(hookspecs).splitlines():
        if line.startswith("# ---"):
            banner = True
        elif banner and line.startswith("# "):
            current, banner = line[2:].strip(), False
        else:
            banner = False
            match = re.match(rf"def ({PREFIX}\w+)\(", line)
            if match:
                groups[match.group(1)] = current
    return groups


def _inline(text: str, hooks: set[str]) -> str:
    """reST inline markup to Markdown: roles and ``literals`` become code, hooks become links."""

    def role(match: re.Match[str]) -> str:
        short, target = match.groups()
        label = target.rsplit(".", 1)[-1] if short else target
        name = target.rsplit(".", 1)[-1]
        return f"[`{label}`](#{name})" if name in hooks else f"`{label}`"

    return _ROLE.sub(role, text).replace("``", "`")


def _markdown(docstring: str, hooks: set[str]) -> str:
    """A docstring (reST, with ``:param:`` fields and ``::`` literal blocks) as Markdown."""
    blocks: list[str] = []  # paragraphs of text, and fenced code blocks
    text: list[str] = []
    code: list[str] | None = None  # lines of the literal block being read
    fields: list[list[str]] = []  # [name or "", text] of each :param: / :return:

    def end_code() -> None:
        nonlocal code
        if code is not None:
            while code and not code[-1].strip():
                code.pop()
            blocks.append("```\n" + "\n".join(code) + "\n```")
            code = None

    for line in inspect.cleandoc(docstring).splitlines():
        field = _FIELD.match(line)
        if field:
            end_code()
            fields.append([field.group(2) or "", field.group(3)])
        elif fields and line.startswith("    "):
            fields[-1][1] += " " + line.strip()
        elif code is not None and (line.startswith("    ") or not line.strip()):
            if code or line.strip():
                code.append(line[4:])
        else:
            end_code()
            if line.rstrip().endswith("::"):  # "text::" introduces an indented literal block
                text.append(line.rstrip()[:-1])
                blocks.append(_inline("\n".join(text).strip(), hooks))
                text, code = [], []
            elif not line.strip() and text:
                blocks.append(_inline("\n".join(text).strip(), hooks))
                text = []
            elif line.strip():
                text.append(line)
    end_code()
    if text:
        blocks.append(_inline("\n".join(text).strip(), hooks))
    params = [f"- `{name}`: {body}" for name, body in fields if name]
    if params:
        blocks.append("**Parameters**\n\n" + _inline("\n".join(params), hooks))
    blocks += ["**Returns**: " + _inline(body, hooks) for name, body in fields if not name]
    return "\n\n".join(block for block in blocks if block)


def render() -> str:
    """The content of docs/hooks.md."""
    specs = hook_specs()
    hooks = {function.__name__ for function in specs}
    signatures, groups = _signatures(), _groups()
    out = [
        "<!-- Generated by docs/gen_hooks.py from offload/core/hookspecs.py. Do not edit: edit the"
        " docstrings, then run `python docs/gen_hooks.py`. -->",
        "",
        "# Hook reference",
        "",
        _markdown(hookspecs.__doc__ or "", hooks),
        "",
        "Implement a hook with a function of the same name decorated with `offload.core.hookimpl`."
        " Your function may take fewer arguments than the specification (pluggy passes only the"
        " ones it names), never others.",
        "",
        "| hook | called | answers |",
        "| --- | --- | --- |",
    ]
    for function in specs:
        name = function.__name__
        answers = "first non-`None` answer wins" if is_firstresult(function) else "all collected"
        out.append(f"| [`{name}`](#{name}) | {groups.get(name, '')} | {answers} |")
    group = None
    for function in specs:
        name = function.__name__
        if groups.get(name) != group:
            group = groups.get(name)
            out += ["", f"## {(group or 'other hooks').capitalize()}"]
        kind = (
            "`firstresult`: the first answer that is not `None` wins."
            if is_firstresult(function)
            else "Not `firstresult`: the answers of every plugin are collected."
        )
        out += [
            "",
            f"### {name}",
            "",
            "```python signature",
            f"@hookimpl\n{signatures[name]}",
            "```",
            "",
            kind,
            "",
            _markdown(function.__doc__ or "*(no docstring)*", hooks),
        ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    arguments = parser.parse_args(argv)
    text = render()
    current = OUTPUT.read_text() if OUTPUT.exists() else ""
    if arguments.check:
        if current != text:
            print(f"{OUTPUT} is out of date: run python docs/gen_hooks.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
