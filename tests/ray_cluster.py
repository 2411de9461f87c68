"""A Ray cluster of this machine for tests and benchmarks: a head started with `ray start` on
127.0.0.1 (every port it opens on loopback), with `cpus` worker slots, stopped by pid at the end
(its process group and the workers its raylet started), its files removed."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
# Ray on loopback only (else it takes the machine's network address), reporting nothing home,
# with a token of its own (not ~/.ray's); its workers import this checkout's workbench. A
# driver (`workbench run --executor ray --address ...`) runs with the same environment.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
PORT_OPTIONS = ("ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port")


class Cluster(NamedTuple):
    address: str  # HOST:PORT of its head
    pgid: int  # the process group of its head (`ray start`), whose raylet starts the workers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_cluster(cpus: int = 2, start_timeout_s: float = 120) -> Iterator[Cluster]:
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="wbray", dir="/tmp")  # short: Ray's socket paths live under it
    ports = [f"--{name}={_free_port()}" for name in PORT_OPTIONS]  # not Ray's fixed defaults: another cluster may hold them
    output = Path(temp) / "start.out"
    with open(output, "w") as sink:
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cpus}",
             "--disable-usage-stats", "--include-dashboard=false", f"--temp-dir={temp}", *ports],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV}, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while "Ray runtime started" not in output.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start: {output.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Cluster(f"127.0.0.1:{port}", head.pid)  # the head leads its session's group
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop(head: subprocess.Popen[bytes]) -> None:
    """End the cluster: the head's process group (its servers) and the workers its raylet started
    (each in a session of its own), by pid; nothing else."""
    for pid in cluster_pids(head.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a throwaway cluster: nothing in it to shut down gently
    head.wait(timeout=30)
    deadline = time.monotonic() + 30
    while cluster_pids(head.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if cluster_pids(head.pid):
        raise RuntimeError("the Ray cluster left processes behind")


def _processes() -> dict[int, tuple[int, int]]:
    """Live processes: pid -> (parent, process group)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    found[int(name)] = (int(fields[1]), int(fields[2]))
    return found


def cluster_pids(pgid: int) -> set[int]:
    """The processes of the head's group and their descendants (Ray's workers start sessions of their own)."""
    processes = _processes()
    cluster = {pid for pid, (_, group) in processes.items() if group == pgid}
    while grown := {pid for pid, (parent, _) in processes.items() if parent in cluster} - cluster:
        cluster |= grown
    return cluster
