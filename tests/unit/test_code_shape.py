# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every function under plugins/ stays readable without scrolling and callable without counting:
at most MAX_LINES lines (docstring excluded) and MAX_POSITIONAL positional parameters (self and
cls excluded; keyword-only parameters are named at the call site, so they do not count).
"""

from __future__ import annotations

import ast
import os

import pytest

MAX_LINES = 60
MAX_POSITIONAL = 6

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")


def python_files():
    found = []
    for directory, dummy, names in os.walk(PLUGINS):
        found.extend(os.path.relpath(os.path.join(directory, name), ROOT) for name in names if name.endswith(".py"))
    return sorted(found)


def functions(tree):
    """(qualified name, node) of every function and method, nested ones included."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def length(node):
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def positional(node):
    names = [arg.arg for arg in node.args.posonlyargs + node.args.args]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names)


def problems(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    found = []
    for name, node in functions(tree):
        if length(node) > MAX_LINES:
            found.append("%s:%s is %d lines long (at most %d)" % (path, name, length(node), MAX_LINES))
        if positional(node) > MAX_POSITIONAL:
            found.append("%s:%s takes %d positional parameters (at most %d)" % (path, name, positional(node), MAX_POSITIONAL))
    return found


def test_plugins_hold_python_files():
    assert python_files()


@pytest.mark.parametrize("path", python_files())
def test_functions_are_short_with_few_positional_parameters(path):
    found = problems(path)
    assert not found, "\n".join(found)


def test_the_checks_measure_what_they_say():
    source = (
        "def short(a, b, *, c, d, e, f, g):\n"
        "    '''Docstring\n\n    over lines.\n    '''\n"
        + "    x = 1\n" * (MAX_LINES - 1)
        + "class Shape:\n"
        "    def method(self, a, b, c, d, e, f):\n"
        "        def inner(a, b, c, d, e, f, g):\n"
        "            return a\n"
        "        return inner\n"
    )
    nodes = dict(functions(ast.parse(source)))
    assert sorted(nodes) == ["Shape.method", "Shape.method.inner", "short"]
    assert (length(nodes["short"]), positional(nodes["short"])) == (MAX_LINES, 2)
    assert positional(nodes["Shape.method"]) == MAX_POSITIONAL
    assert positional(nodes["Shape.method.inner"]) == MAX_POSITIONAL + 1
