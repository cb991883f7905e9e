"""The committed SDK (sdk/) is exactly what `make sdk` generates from the current code."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK_ROOT = REPO / "sdk"
CACHE_NAMES = {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"}

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openapi_python_client") is None,
                                reason="openapi-python-client is not installed (pip install -e '.[sdk]')")


def tree(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or CACHE_NAMES & set(relative.parts) or path.suffix == ".pyc":
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def run(*args: str) -> subprocess.CompletedProcess:
    # The generator's post hooks call `ruff` by name: the venv's, as in `make sdk`.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def drift(committed: dict[str, bytes], fresh: dict[str, bytes]) -> list[str]:
    problems = [f"missing from sdk/ (new): {name}" for name in sorted(fresh.keys() - committed.keys())]
    problems += [f"stale in sdk/ (no longer generated): {name}" for name in sorted(committed.keys() - fresh.keys())]
    problems += [f"differs: {name}" for name in sorted(fresh.keys() & committed.keys())
                 if fresh[name] != committed[name]]
    return problems


def test_tree_comparison_sees_changes_and_ignores_caches(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "pkg").mkdir(parents=True)
        (root / "pkg" / "x.py").write_text("x = 1\n")
    (b / "pkg" / "__pycache__").mkdir()
    (b / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (b / ".ruff_cache").mkdir()
    (b / ".ruff_cache" / "CACHEDIR.TAG").write_text("cache")
    assert drift(tree(a), tree(b)) == []
    (b / "pkg" / "x.py").write_text("x = 2\n")
    (b / "pkg" / "y.py").write_text("")
    (a / "pkg" / "z.py").write_text("")
    assert drift(tree(a), tree(b)) == ["missing from sdk/ (new): pkg/y.py",
                                       "stale in sdk/ (no longer generated): pkg/z.py", "differs: pkg/x.py"]


def test_committed_sdk_matches_a_fresh_generation(tmp_path):
    spec = tmp_path / "openapi.json"
    run("-m", "services.gateway.openapi_export", str(spec))
    output = tmp_path / "atelier-client"
    generated = run("-m", "openapi_python_client", "generate", "--path", str(spec), "--output-path", str(output),
                    "--overwrite", "--meta", "pdm", "--config", str(SDK_ROOT / "config.yaml"))
    # The generator drops what it cannot parse with only a warning: a route would vanish from the SDK.
    assert "warning" not in (generated.stdout + generated.stderr).lower(), generated.stdout + generated.stderr
    problems = drift({"openapi.json": (SDK_ROOT / "openapi.json").read_bytes()}, {"openapi.json": spec.read_bytes()})
    problems += drift(tree(SDK_ROOT / "atelier-client"), tree(output))
    assert not problems, "the committed SDK is out of date; run `make sdk` and commit sdk/:\n" + "\n".join(problems)
