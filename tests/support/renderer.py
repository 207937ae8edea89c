"""scripts/render_manifests.py as a module (scripts/ is not a package): the project's one way to
render the chart, for the chart tests and the cluster lane."""

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render_manifests.py"
_spec = importlib.util.spec_from_file_location("render_manifests", _SCRIPT)
assert _spec is not None and _spec.loader is not None
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)
