"""The domain cores are libraries: importing them pulls in no web, task-queue or database framework.

Each core is imported in a fresh interpreter (this one already holds FastAPI and SQLAlchemy), with
every module of the package and the shared helpers the cores import lazily.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Each core with one module it must contain, so that an empty walk cannot pass.
CORES = {"services.selection.mc": "predictor", "services.quantization.mpq": "allocate",
         "services.training.memlean": "optim"}
# What the cores call inside functions, imported here too so that the check covers those paths.
LAZY_HELPERS = ["services.common.diffusion", "services.common.diffusion.tiny", "services.common.hardware"]
FRAMEWORKS = ("fastapi", "starlette", "celery", "kombu", "sqlalchemy", "alembic", "psycopg", "uvicorn")

PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
modules = [info.name for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
for name in modules + json.loads(sys.argv[2]):
    importlib.import_module(name)
print(json.dumps({"modules": modules, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.parametrize(("core", "known_module"), CORES.items())
def test_a_domain_core_imports_no_framework(core, known_module):
    out = subprocess.run([sys.executable, "-c", PROBE, core, json.dumps(LAZY_HELPERS)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert f"{core}.{known_module}" in report["modules"]
    frameworks = set(report["loaded"]) & set(FRAMEWORKS)
    assert not frameworks, f"{core} pulls in {sorted(frameworks)}"
