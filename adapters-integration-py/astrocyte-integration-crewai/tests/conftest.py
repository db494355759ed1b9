"""CrewAI must not phone home (no network exists where these tests run) nor write into
the user's home: its task-output database and any storage go to a temporary folder."""

import atexit
import os
import shutil
import tempfile

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_DISABLE_TRACKING"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ.setdefault("OPENAI_API_KEY", "k")

_DATA = tempfile.mkdtemp(prefix="astrocyte-crewai-tests-")
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
os.environ["XDG_DATA_HOME"] = _DATA
os.environ["CREWAI_STORAGE_DIR"] = _DATA
