"""Dask clusters for the tests: a scheduler and worker processes started here, stopped by their pids."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.strategies import default_sigint

REPO = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"


class Cluster:
    """A ``dask scheduler`` on 127.0.0.1 and ``dask worker`` processes (no nanny: a killed worker stays dead),
    ended by their pids."""

    def __init__(self, folder, n_workers, pythonpath=REPO, own_directories=False):
        self.folder, self.processes = folder, []
        path = os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])
        self.env = env = {**os.environ, "PYTHONPATH": path}
        scheduler_file = folder / "scheduler.json"
        self.scheduler = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", scheduler_file], env)
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        self.workers = [self.start_worker(env, index if own_directories else None) for index in range(n_workers)]
        import distributed

        with distributed.Client(self.address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=60)

    def start_worker(self, env=None, directory=None):
        """One more worker; ``directory``: its own ``--local-directory`` (``worker-N`` in the folder)."""
        command = [DASK, "worker", self.address, "--no-nanny", "--nthreads", "1", "--no-dashboard"]
        if directory is not None:
            command += ["--local-directory", self.folder / f"worker-{directory}"]
        return self._start(command, env or self.env)

    def _start(self, command, env):
        log = open(self.folder / f"process-{len(self.processes)}.log", "wb")  # closed in stop()
        process = subprocess.Popen([str(part) for part in command], stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=REPO, preexec_fn=default_sigint)
        self.processes.append((process, log))
        return process

    def stop(self):
        for process, log in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
