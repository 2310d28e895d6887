"""The Ray executor on a real local Ray cluster (``ray.init(num_cpus=2)``, once for this module).

- the same grid on ``--executor local`` and ``--executor ray`` gives the same record files, codes,
  scores and map.csv;
- a worker killed mid-cell (SIGKILL from inside the method's fit) leaves no record; the cell is run
  again (``max_retries=1``) or, with no retry left, reported while the other cells finish, and a
  second run trains only that cell;
- workers read the representation the driver cached instead of computing it again;
- kill -9 of ``hashbench run --executor ray`` while a cell runs leaves no process of the local Ray
  instance it started; with ``--address`` it stops its cells and leaves the cluster up;
- without Ray, ``--executor ray`` is a one-line error with the install command, and the default
  install never imports Ray.

Cluster tests are ``slow`` (a Ray start costs 10-20 s on a shared 2-core machine); run them with
``python -m pytest -m slow tests/test_ray.py``. They skip, saying so, when Ray is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from hashbench import records as rec
from hashbench.cli import main
from hashbench.errors import HashbenchError, InvalidInput
from hashbench.methods import _REGISTRY, register

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install 'hashbench[ray]')")

#: methods for the crash tests, in a module the Ray workers import (they are other processes, so a
#: class defined in this test file would not be found there). Each kills its own worker process.
METHODS_MODULE = '''
import os
import signal
from pathlib import Path

from hashbench_baselines.lsh import LSH

MARKERS = Path({markers!r})


def _kill_once(name):
    marker = MARKERS / name
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


class KillOnce(LSH):
    """LSH whose first fit kills its worker (the marker file remembers the attempt)."""

    def fit(self, X, y=None):
        _kill_once("killonce")
        return super().fit(X, y)


class KillOnceRetried(LSH):
    def fit(self, X, y=None):
        _kill_once("killonce_retried")
        return super().fit(X, y)


class KillAlways(LSH):
    def fit(self, X, y=None):
        os.kill(os.getpid(), signal.SIGKILL)


class Raises(LSH):
    def fit(self, X, y=None):
        raise ValueError("this method always fails")
'''

GRID = ["--dataset", "digits", "--bits", "16,32", "--no-progress", "--no-plots"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs whose workers can import the crash-test methods."""
    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'hashbench[ray]')")
    import ray

    root = tmp_path_factory.mktemp("ray")
    moddir, markers = root / "modules", root / "markers"
    moddir.mkdir()
    markers.mkdir()
    (moddir / "hb_ray_test_methods.py").write_text(METHODS_MODULE.format(markers=str(markers)))
    sys.path.insert(0, str(moddir))
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 2**20,
        runtime_env={"env_vars": {"PYTHONPATH": str(moddir), "OMP_NUM_THREADS": "1"}},
    )
    import hb_ray_test_methods as m

    names = {
        "killonce": m.KillOnce,
        "killonce_retried": m.KillOnceRetried,
        "killalways": m.KillAlways,
        "raises": m.Raises,
    }
    for name, cls in names.items():
        register(name, cls)
    try:
        yield {"markers": markers, "module": m}
    finally:
        for name in names:
            _REGISTRY.pop(name, None)
        sys.path.remove(str(moddir))
        ray.shutdown()


def _records(out: Path) -> dict[str, rec.Record]:
    return {p.name: rec.read_record(p) for p in rec.iter_record_paths(out / "digits" / "records")}


def _map_csv(out: Path) -> str:
    return (out / "digits" / "map.csv").read_text()


def _scores(out: Path) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    found = {}
    for p in sorted((out / "digits" / "scores").glob("*.npz")):
        with np.load(p) as z:
            found[p.name] = (json.loads(str(z["meta"]))["scores"], {k: z[k] for k in z.files if k != "meta"})
    return found


# -- no cluster needed -----------------------------------------------------------------------------
def test_without_ray_the_error_names_the_install_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    from hashbench.run.ray_executor import RayExecutor, RayMissing
    from hashbench.run.runner import get_executor

    with pytest.raises(RayMissing, match=r"pip install 'hashbench\[ray\]'"):
        RayExecutor()
    with pytest.raises(HashbenchError, match="--executor local"):
        get_executor("ray")
    rc = main(["run", "--methods", "lsh", "--out", "unused", *GRID, "--executor", "ray"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "hashbench[ray]" in err and "Traceback" not in err


def test_no_module_imports_ray_at_import_time():
    """Only function bodies of hashbench.run.ray_executor may import ray: the default install has no Ray."""
    import ast

    import hashbench

    def top_level(stmts):  # statements run at import: not inside a function
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            yield stmt
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from top_level(getattr(stmt, field, []))

    offenders = []
    for path in Path(hashbench.__file__).parent.rglob("*.py"):
        for stmt in top_level(ast.parse(path.read_text(), str(path)).body):
            if isinstance(stmt, ast.Import):
                names = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                names = [stmt.module or ""]
            else:
                continue
            if any(n == "ray" or n.startswith("ray.") for n in names):
                offenders.append(f"{path.name}:{stmt.lineno}")
    assert offenders == []


@pytest.mark.slow
def test_default_install_never_imports_ray():
    code = (
        "import sys, hashbench.cli, hashbench.run.runner, hashbench.run.executors, hashbench.run.ray_executor; "
        "sys.exit(1 if 'ray' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_task_resources_follow_the_method():
    from hashbench.run.plan import Task
    from hashbench.run.ray_executor import task_resources

    def task(method):
        return Task(method, {}, 16, 0, 0, {}, "", "x.npz")

    assert task_resources(task("lsh"), "cpu") == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert task_resources(task("lsh"), "cuda") == {"num_cpus": 1.0, "num_gpus": 0.0}  # shallow: never a GPU
    assert task_resources(task("ssdh"), "cpu", deep_cpus=3) == {"num_cpus": 3.0, "num_gpus": 0.0}
    assert task_resources(task("ssdh"), "cuda:0") == {"num_cpus": 2.0, "num_gpus": 1.0}
    # never more CPUs than the largest node has, or the task could never be scheduled
    assert task_resources(task("uhga+ga"), "cpu", deep_cpus=8, max_node_cpus=2)["num_cpus"] == 2.0


@needs_ray
def test_bad_arguments_are_input_errors():
    from hashbench.run.ray_executor import RayExecutor

    for kwargs in ({"num_cpus": 0}, {"deep_cpus": 0}, {"max_retries": -1}):
        with pytest.raises(InvalidInput):
            RayExecutor(**kwargs)


@needs_ray
def test_an_address_where_nothing_listens_fails_at_once():
    import socket

    from hashbench.run.ray_executor import _check_reachable

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InvalidInput, match="ray start --head"):
        _check_reachable(f"127.0.0.1:{port}")
    _check_reachable("auto")  # forms Ray resolves itself are left to it


# -- a real local cluster ------------------------------------------------------------------------------
@pytest.mark.slow
def test_same_grid_on_local_and_ray(cluster, tmp_path):
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert main(["run", "--methods", "itq,lsh", "--out", str(local), *GRID]) == 0
    assert main(["run", "--methods", "itq,lsh", "--out", str(ray_out), *GRID, "--executor", "ray"]) == 0

    a, b = _records(local), _records(ray_out)
    assert len(a) == 4 and sorted(a) == sorted(b)  # record keys (file names)
    for name in a:
        for field in ("query_codes", "db_codes", "query_labels", "db_labels", "split_train", "split_query"):
            np.testing.assert_array_equal(a[name].arrays[field], b[name].arrays[field], err_msg=f"{name} {field}")
        assert a[name].meta["config"] == b[name].meta["config"]
    sa, sb = _scores(local), _scores(ray_out)
    assert sorted(sa) == sorted(sb) and len(sa) == 4
    for name, (scores, arrays) in sa.items():
        assert {k: v for k, v in scores.items() if "sha256" not in k} == {
            k: v for k, v in sb[name][0].items() if "sha256" not in k
        }, name
        for k, v in arrays.items():
            if "sha256" not in k:  # checksums of files whose metadata holds timings: they differ
                np.testing.assert_array_equal(v, sb[name][1][k])
    assert (local / "digits" / "map.csv").read_text() == (ray_out / "digits" / "map.csv").read_text()


@pytest.mark.slow
def test_killed_worker_is_retried_and_leaves_one_whole_record(cluster, tmp_path):
    from hashbench.run.ray_executor import RayExecutor
    from hashbench.run.runner import RunConfig, run_grid

    cfg = RunConfig(dataset="digits", methods=["killonce_retried"], bits=[16], out=str(tmp_path), progress=False)
    result = run_grid(cfg, executor=RayExecutor(max_retries=1))
    assert not result.failed and len(result.ran) == 1
    assert (cluster["markers"] / "killonce_retried").exists()  # the first attempt did die
    files = os.listdir(tmp_path / "digits" / "records")
    assert files == [Path(result.plan.tasks[0].path).name]  # the record, and no temporary file beside it
    assert rec.is_finished(result.plan.tasks[0].path)


@pytest.mark.slow
def test_failed_cells_are_reported_while_the_others_finish_and_a_rerun_resumes(cluster, tmp_path):
    from hashbench.run.ray_executor import CellCrashed, RayExecutor
    from hashbench.run.runner import CellsFailed, RunConfig, run_grid

    cfg = RunConfig(
        dataset="digits",
        methods=["lsh", "killonce", "killalways", "raises"],
        bits=[16],
        out=str(tmp_path),
        progress=False,
    )
    logged: list[str] = []
    result = run_grid(cfg, log=logged.append, executor=RayExecutor(max_retries=0))
    errors = {o.task.method: o.error for o in result.failed}
    assert [t.method for t in result.ran] == ["lsh"]
    assert isinstance(errors["killonce"], CellCrashed) and isinstance(errors["killalways"], CellCrashed)
    assert "no record was written" in str(errors["killalways"])
    assert isinstance(errors["raises"], InvalidInput) and "always fails" in str(errors["raises"])
    assert any("killalways" in line and "failed" in line for line in logged)
    with pytest.raises(CellsFailed, match="3 of 4 cells failed"):
        result.raise_for_failures()
    paths = {t.method: Path(t.path) for t in result.plan.tasks}
    assert paths["lsh"].is_file()
    assert not any(paths[m].exists() for m in ("killonce", "killalways", "raises"))  # no partial record
    assert [p.name for p in (tmp_path / "digits" / "records").iterdir()] == [paths["lsh"].name]
    lsh_mtime = paths["lsh"].stat().st_mtime_ns

    # the second run skips the finished cell and trains the one whose worker no longer dies
    cfg.methods = ["lsh", "killonce"]
    logged.clear()
    again = run_grid(cfg, log=logged.append, executor=RayExecutor(max_retries=0))
    assert [t.method for t in again.ran] == ["killonce"] and not again.failed
    assert any("1 of 2 cells already finished" in line for line in logged)
    assert paths["lsh"].stat().st_mtime_ns == lsh_mtime
    assert rec.is_finished(paths["killonce"])


@pytest.mark.slow
def test_workers_read_the_cached_representation(cluster, tmp_path):
    """The driver computes GIST once into the cache; workers with the same key only read it."""
    cache = tmp_path / "cache"
    args = [
        "run",
        "--methods",
        "lsh",
        "--features",
        "gist",
        "--dataset",
        "digits",
        "--bits",
        "16,32",
        "--cache-dir",
        str(cache),
        "--no-progress",
        "--no-plots",
    ]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    entries = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (cache / "features").glob("*.npy")}
    assert entries
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (cache / "features").glob("*.npy")}
    assert after == entries  # no worker wrote (recomputed) an entry
    assert _map_csv(tmp_path / "local") == _map_csv(tmp_path / "ray")


@pytest.mark.slow
def test_storage_check_on_the_cluster(cluster, tmp_path):
    import ray

    from hashbench.run.ray_executor import _probe, check_shared_storage

    assert check_shared_storage({"out": str(tmp_path / "out"), "cache": str(tmp_path / "cache")}) == []
    assert not list((tmp_path / "out").iterdir())  # the probe files are removed
    # what a node without the shared folder answers: the file is missing there
    answer = ray.get(ray.remote(_probe).options(num_cpus=0).remote([(str(tmp_path / "nowhere"), "token")]))
    assert answer["missing"] == [str(tmp_path / "nowhere")]


@pytest.mark.slow
def test_cuda_without_gpus_on_the_cluster_is_an_input_error(cluster, tmp_path):
    from hashbench.run.execute import RunContext
    from hashbench.run.plan import Task
    from hashbench.run.ray_executor import RayExecutor

    ctx = RunContext("digits", None, False, "generic", "pixels", None, None, "cuda")
    with pytest.raises(InvalidInput, match="has none"):
        list(RayExecutor().run(ctx, [Task("ssdh", {}, 16, 0, 0, {}, "", str(tmp_path / "x.npz"))]))


@pytest.mark.slow
def test_done_when_itq_lsh_ssdh_same_map_csv(cluster, tmp_path):
    """The issue's acceptance command (SSDH at 2 epochs to stay small): same map.csv as local."""
    grid = ["--methods", "itq,lsh,ssdh", "--set", "ssdh.epochs=2", *GRID, "--device", "cpu"]
    assert main(["run", *grid, "--out", str(tmp_path / "local")]) == 0
    assert main(["run", *grid, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert _map_csv(tmp_path / "local") == _map_csv(tmp_path / "ray")
    assert sorted(_records(tmp_path / "local")) == sorted(_records(tmp_path / "ray"))


@pytest.mark.slow
def test_existing_cluster_by_address(tmp_path):
    """INSTALL.md, section 6: `ray start --head`, then `hashbench run ... --executor ray --address HEAD:PORT`."""
    import signal
    import socket

    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'hashbench[ray]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    # its own temporary folder (short: Ray's socket paths must fit in 107 bytes), so the head leaves no
    # "current cluster" pointer in /tmp/ray for later ray.init() calls on this machine to find
    temp_dir = tempfile.mkdtemp(prefix="hbray-", dir="/tmp")
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
            "--block",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        grid = ["run", "--methods", "itq,lsh", *GRID]
        cmd = [
            sys.executable,
            "-m",
            "hashbench.cli",
            *grid,
            "--out",
            str(tmp_path / "cluster"),
            "--executor",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ]
        deadline = time.monotonic() + 120
        while True:  # the head takes some seconds to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Ray head did not start within 120 s"
                time.sleep(1)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert main([*grid, "--out", str(tmp_path / "local")]) == 0
    assert _map_csv(tmp_path / "cluster") == _map_csv(tmp_path / "local")
    assert sorted(_records(tmp_path / "cluster")) == sorted(_records(tmp_path / "local"))


# -- the driver killed (kill -9) while cells run ----------------------------------------------------
#: a cell that runs until killed: SSDH with an epoch count no test waits for
LONG_CELL = ["--methods", "ssdh", "--set", "ssdh.epochs=100000", "--bits", "16", "--device", "cpu"]


def _marked(marker: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment holds ``HB_RAY_TEST=<marker>``
    (the driver's environment is inherited by the Ray processes it starts, and a ``ray start`` head's
    by its workers): processes of this test only, whatever their name."""
    want = f"HB_RAY_TEST={marker}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if want not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state not in ("Z", "X"):
            found[int(entry)] = cmd.strip()
    return found


def _program(cmd: str) -> str:
    """The file name of a command line's program (``raylet``, ``gcs_server``, ``python``)."""
    return Path(cmd.split(" ", 1)[0]).name


def _cell_workers(procs: dict[int, str]) -> list[int]:
    """The Ray workers running a hashbench cell (Ray titles a worker by its task: ``ray::hashbench ...``)."""
    return [pid for pid, cmd in procs.items() if cmd.startswith("ray::hashbench ")]


def _wait_for(what: str, cond, timeout_s: float, log: Path | None = None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"{what} within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.5)


def _sweep(marker: str) -> None:
    """SIGKILL what is left of this test's processes (found by the marker: never another's)."""
    import signal

    for pid in _marked(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_driver_leaves_no_ray_process(tmp_path):
    """kill -9 of `hashbench run --executor ray` while a cell runs: the local Ray instance it started
    (GCS, raylet, agents, the cell's worker) ends by itself. Ray's own fate sharing does it: the
    processes the driver started get SIGKILL at its death (Linux prctl), the cell's worker exits
    when its raylet is gone (seconds), and the per-node agents exit after their report of the
    raylet's death to the dead GCS times out (about 60 s)."""
    import signal
    import uuid

    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'hashbench[ray]')")
    marker = uuid.uuid4().hex
    ray_tmp = tempfile.mkdtemp(prefix="hbk-", dir="/tmp")  # short: Ray's socket paths fit in 107 bytes
    env = {**os.environ, "HB_RAY_TEST": marker, "RAY_TMPDIR": ray_tmp, "OMP_NUM_THREADS": "1"}
    out, log = tmp_path / "out", tmp_path / "driver.log"
    cmd = [sys.executable, "-m", "hashbench.cli", "run", *LONG_CELL, "--dataset", "digits", "--no-progress"]
    cmd += ["--no-plots", "--threads", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    with open(log, "w") as f:
        driver = subprocess.Popen([*cmd, "--executor", "ray"], env=env, stdout=f, stderr=subprocess.STDOUT)
    try:

        def running():
            assert driver.poll() is None, log.read_text(errors="replace")[-3000:]
            return _cell_workers(_marked(marker))

        workers = _wait_for("no cell started running on the local Ray instance", running, 300, log)
        before = _marked(marker)
        before.pop(driver.pid, None)
        raylets = [pid for pid, c in before.items() if _program(c) == "raylet"]
        assert raylets, before  # the marker does find the instance's processes
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        t0 = time.monotonic()
        _wait_for(
            "the cell's worker and the raylet outlived the killed driver by 60 s",
            lambda: not set(workers + raylets) & set(_marked(marker)),
            60,
        )
        _wait_for(
            "processes of the local Ray instance outlived the killed driver by 180 s",
            lambda: not _marked(marker),
            180 - (time.monotonic() - t0),
        )
        assert not list((out / "digits" / "records").glob("*.npz"))  # the killed cell wrote no record
    finally:
        driver.kill()
        _sweep(marker)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_driver_on_a_given_cluster_stops_only_its_cells(tmp_path):
    """With --address the cluster is not hashbench's: kill -9 of the driver ends its job, so Ray
    stops the job's workers (the running cell's included) within seconds; the cluster stays up."""
    import signal
    import socket
    import uuid

    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'hashbench[ray]')")
    marker = uuid.uuid4().hex
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="hbk-", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    head_cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}", "--num-cpus=2"]
    head_cmd += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}", "--block"]
    head = subprocess.Popen(
        head_cmd,
        env={**env, "HB_RAY_TEST": marker},  # the head's processes and workers carry the marker
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out, log = tmp_path / "out", tmp_path / "driver.log"
    cmd = [sys.executable, "-m", "hashbench.cli", "run", *LONG_CELL, "--dataset", "digits", "--no-progress"]
    cmd += ["--no-plots", "--threads", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    cmd += ["--executor", "ray", "--address", f"127.0.0.1:{port}"]
    driver = None
    try:

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return True
            except OSError:
                return False

        _wait_for("the Ray head did not listen", listening, 120)
        with open(log, "w") as f:
            driver = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)

        def running():
            assert driver.poll() is None, log.read_text(errors="replace")[-3000:]
            return _cell_workers(_marked(marker))

        workers = _wait_for("no cell started running on the cluster", running, 300, log)
        cluster = {pid for pid, c in _marked(marker).items() if _program(c) in ("raylet", "gcs_server")}
        assert len(cluster) == 2, _marked(marker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        _wait_for(
            "the killed driver's cell kept running on the cluster for 60 s",
            lambda: not set(workers) & set(_marked(marker)),
            60,
        )
        assert cluster <= set(_marked(marker))  # the cluster itself is not hashbench's to stop
    finally:
        if driver is not None:
            driver.kill()
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        _sweep(marker)
        shutil.rmtree(temp_dir, ignore_errors=True)
