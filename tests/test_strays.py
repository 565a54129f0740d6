"""The check `make test` ends with finds what a run leaves running, in its own session too."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from .servers import wait_for
from .strays import kill_marked, marked


def test_a_marked_process_in_a_session_of_its_own_is_found_and_killed() -> None:
    mark = uuid.uuid4().hex
    # As Parsl starts a worker pool: a session of its own, out of its parent's process group.
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "BYREF_TEST_STRAY": mark},
        start_new_session=True,
    )
    try:
        assert list(marked("BYREF_TEST_STRAY", mark)) == [stray.pid]
        assert list(kill_marked("BYREF_TEST_STRAY", mark)) == [stray.pid]
        assert stray.wait(timeout=10) == -9
        wait_for(lambda: not marked("BYREF_TEST_STRAY", mark), "the stray's end", timeout=10)
    finally:
        stray.kill()
        stray.wait()
