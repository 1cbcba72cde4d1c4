"""Every docstring example runs, and so does the README's Python example."""

from __future__ import annotations

import doctest
import pathlib
import re

import pytest

import pi_match
import pi_match._core
import pi_match.artefact
import pi_match.count
import pi_match.io
import pi_match.outputs
import pi_match.synth
import pi_match.testing

README = pathlib.Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize(
    "module",
    [
        pi_match,
        pi_match.artefact,
        pi_match.synth,
        pi_match.io,
        pi_match.testing,
        pi_match._core,
        pi_match.outputs,
        pi_match.count,
    ],  # fmt: skip
)
def test_docstring_examples(module: object) -> None:
    globs = {**vars(module), **{name: getattr(pi_match, name) for name in pi_match.__all__}}
    finder = doctest.DocTestFinder(exclude_empty=True)
    # The native module's objects report "pi_match._core" but DocTestFinder only recurses
    # into objects it believes are defined in the module; look at each one directly.
    tests = finder.find(module, globs=dict(globs))
    if module is pi_match._core:
        for name in dir(module):
            obj = getattr(module, name)
            if getattr(obj, "__doc__", None) and ">>>" in obj.__doc__:
                tests += finder.find(obj, name=f"_core.{name}", module=False, globs=dict(globs))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted > 0


def test_readme_python_example_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
