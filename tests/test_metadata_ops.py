"""The file store on a parallel filesystem's terms: few metadata operations per round trip,
no directory that grows without bound, no lost object under racing processes, and handles
that name the store by an id only the user's own records resolve."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import byref

sys.path.insert(0, str(Path(__file__).parent.parent / "benches"))
import fsops

needs_strace = pytest.mark.skipif(
    fsops.available() is not None, reason=f"counting needs strace: {fsops.available()}"
)

SETUP = """
import pickle, byref
store = byref.Store({url!r})
value = {{"task": 1, "name": "small"}}
for _ in range(3):  # the runtime started and the fan-out directory made
    pickle.loads(pickle.dumps(store.proxy(value, evict=True))).keys()
"""


def counted(tmp_path: Path, body: str, extra_setup: str = "") -> dict[str, float]:
    store = tmp_path / "store"
    setup = SETUP.format(url=store.as_uri()) + extra_setup
    return fsops.count(body, store, n=40, setup=setup)


@needs_strace
def test_a_small_round_trip_is_three_metadata_operations(tmp_path: Path) -> None:
    """proxy(evict=True), pickle, unpickle, resolve: create, rename, unlink (the design before
    this one took 8: a reference directory and a marker file per object, and a move aside)."""
    ops = counted(tmp_path, "pickle.loads(pickle.dumps(store.proxy(value, evict=True))).keys()")
    assert ops["changes"] == 3, ops
    # Put lists the key's fan-out directory (is it there already?); resolve opens the
    # reference's own name, and the release opens it again to learn if it was the file's last
    # name, then lists to learn if it was the key's.
    assert ops["listings"] == 2 and ops["opens"] == 2, ops


@needs_strace
def test_each_operation_costs_at_most_two(tmp_path: Path) -> None:
    first_put = counted(tmp_path / "a", "store.evict(store.put(value))")
    assert first_put["changes"] == 3, first_put  # create, rename; unlink
    again = counted(tmp_path / "b", "store.put(value)", "store.put(value)\n")
    assert again["changes"] == 1, again  # one link to the file there
    get = counted(tmp_path / "c", "store.get(key)", "key = store.put(value)\n")
    assert get["changes"] == 0 and get["opens"] == 1, get


def test_objects_fan_out_and_no_directory_is_made_per_object(file_store: byref.Store) -> None:
    root = Path(file_store.url.removeprefix("file://"))
    keys = [file_store.put(i) for i in range(3000)]
    dirs = [p for p in root.rglob("*") if p.is_dir()]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert {p.relative_to(root).parts[0] for p in dirs} == {"objects", "tmp"}
    # objects/<3 hex digits>/<key>.<reference>: one file per reference, nothing else.
    assert all(len(p.relative_to(root).parts) == 3 for p in files)
    assert sorted(p.name.split(".")[0] for p in files) == sorted(keys)
    per_directory = Counter(p.parent for p in files)
    assert max(per_directory.values()) < 20, "3,000 objects over 4,096 directories"
    assert len(dirs) <= 4096 + 2


RACER = """
import sys, numpy as np, byref
store = byref.Store({url!r})
data = np.arange(300_000)
for _ in range(60):
    key = store.put(data)
    assert np.array_equal(store.get(key), data), "a put's own reference lost its object"
    store.evict(key)
print("ok")
"""


def test_racing_puts_and_evicts_of_equal_data_lose_nothing_and_leave_nothing(
    file_store: byref.Store,
) -> None:
    """Four processes put, read and evict the same data at once, with nobody else holding
    it: each always reads its own put back, and at the end no name is left."""
    code = RACER.format(url=file_store.url)
    racers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for racer in racers:
        out, _ = racer.communicate(timeout=300)
        assert racer.returncode == 0 and out.strip() == "ok"
    root = Path(file_store.url.removeprefix("file://"))
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_a_store_id_resolves_only_through_the_users_own_records(
    file_store: byref.Store, tmp_path: Path
) -> None:
    wire = pickle.dumps(file_store.proxy(np.arange(10)))
    assert file_store.url.encode() not in wire, "a file store travels as its id"
    code = "import pickle, sys; print(int(pickle.loads(sys.stdin.buffer.read()).sum()))"

    def resolve(**env: str) -> tuple[str, str]:
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=wire,
            env={**os.environ, **env},
            capture_output=True,
        )
        return done.stdout.decode().strip(), done.stderr.decode()

    assert resolve()[0] == "45"  # this session's records
    _, err = resolve(BYREF_CONFIG_DIR=str(tmp_path / "other"))
    assert "HandleError" in err and "no record" in err, err
    assert "BYREF_URL" in err, "the message says how to fix it"
    assert resolve(BYREF_CONFIG_DIR=str(tmp_path / "other"), BYREF_URL=file_store.url)[0] == "45"
    # A record that names another store is not believed.
    records = Path(os.environ["BYREF_CONFIG_DIR"], "stores")
    planted = tmp_path / "planted"
    (planted / "stores").mkdir(parents=True)
    for record in records.iterdir():
        (planted / "stores" / record.name).write_text("file:///etc")
    _, err = resolve(BYREF_CONFIG_DIR=str(planted))
    assert "another store" in err, err


def test_store_ids_off_puts_the_url_in_the_handle(file_store: byref.Store, tmp_path: Path) -> None:
    """For workers that cannot see the putting side's home directory (a container)."""
    code = (
        "import pickle, sys, numpy as np, byref\n"
        f"sys.stdout.buffer.write(pickle.dumps(byref.Store({file_store.url!r}).proxy(np.arange(10))))"
    )
    env = {**os.environ, "BYREF_STORE_IDS": "off"}
    wire = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).stdout
    assert file_store.url.encode() in wire
    env = {**os.environ, "BYREF_CONFIG_DIR": str(tmp_path / "none")}
    resolve = "import pickle, sys; print(int(pickle.loads(sys.stdin.buffer.read()).sum()))"
    done = subprocess.run([sys.executable, "-c", resolve], input=wire, env=env, capture_output=True)
    assert done.stdout.decode().strip() == "45", done.stderr.decode()
