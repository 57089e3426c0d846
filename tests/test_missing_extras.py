"""A missing optional extra is one line that says how to install it, and nothing is written."""

import builtins

import pytest

from conftest import run_main


def block(monkeypatch, prefix: str) -> None:
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name == prefix or name.startswith(prefix + "."):
            raise ImportError(f"No module named {prefix!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)


@pytest.mark.parametrize(
    "module, command, extra",
    [
        ("matplotlib", ["plot", "{run}", "-o", "{tmp}/c.png"], "plot"),
        ("onnx", ["export", "{run}", "--onnx", "{tmp}/m.onnx"], "onnx"),
        ("uvicorn", ["serve", "{run}", "--port", "0"], "serve"),
    ],
)
def test_a_missing_extra_says_how_to_install_it(tiny_run, tmp_path, monkeypatch, module, command, extra):
    block(monkeypatch, module)
    done = run_main(*(part.format(run=tiny_run, tmp=tmp_path) for part in command))
    assert done.returncode == 1 and f"pip install -e '.[{extra}]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
