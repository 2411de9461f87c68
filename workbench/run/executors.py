"""Where a run's trials execute, by name (`workbench run --executor NAME`): `local`, in this
process (the scheduler's own schedule), or `ray`, on a Ray cluster (workbench.run.ray_executor,
imported only when chosen: Ray is an optional extra)."""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import UserError
from .scheduler import Executor

DEFAULT_EXECUTOR = "local"


def _local(address: str | None) -> Executor | None:
    if address is not None:
        raise UserError(f"{address!r}: an address is for a Ray cluster; pass --executor ray with it", field="--address")
    return None  # the runner's own schedule


def _ray(address: str | None) -> Executor:
    from .ray_executor import RayExecutor

    return RayExecutor(address)


EXECUTORS: dict[str, Callable[[str | None], Executor | None]] = {"local": _local, "ray": _ray}


def executor_for(name: str, address: str | None = None) -> Executor | None:
    """The executor `name` (with the cluster at `address`, for one that has a cluster); None: the
    local schedule. Bad names and unreachable clusters raise UserError, before any trial runs."""
    make = EXECUTORS.get(name)
    if make is None:
        raise UserError(f"{name!r} is not an executor; allowed: {', '.join(EXECUTORS)}", field="--executor")
    return make(address)
