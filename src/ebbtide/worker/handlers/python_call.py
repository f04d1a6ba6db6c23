"""`python:module:function` jobs: call `function(payload, ctx)` in the worker process.

ctx offers `progress(fraction)`, `job_dir` (with input/ and output/) and `cancel` (a
threading.Event the function should poll). A returned dict becomes the job's result.
"""

from __future__ import annotations

import importlib
from typing import Any

from ebbtide.errors import EbbtideError
from ebbtide.worker.context import JobContext
from ebbtide.worker.handlers import Outcome
from ebbtide.worker.handlers.jobfiles import prepare, publish_outputs
from ebbtide.worker.messages import python_target


class PythonJobError(EbbtideError):
    """The named function cannot be found."""


def run(ctx: JobContext) -> Outcome:
    module_name, func_name = python_target(ctx.job.kind)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PythonJobError(
            f"cannot import {module_name}: {e}", hint="install the module where the worker runs"
        ) from e
    func = getattr(module, func_name, None)
    if not callable(func):
        raise PythonJobError(f"{module_name} has no function {func_name}")
    _, out = prepare(ctx)
    value: Any = func(ctx.payload, ctx)
    ctx.check_cancelled()
    outputs = publish_outputs(ctx, out)
    result = value if isinstance(value, dict) else ({} if value is None else {"value": value})
    return Outcome(result=result, outputs=outputs)
