"""Run another server's command line with the production server's collector settings: `python -m bench.tuned
uvicorn ARGS...` runs `python -m uvicorn ARGS...` after server.serve.tune_collector(), as `make run` has them — so
that bench/http_bench.py --servers compares the servers, not two collector configurations."""

from __future__ import annotations

import runpy
import sys

from server.serve import tune_collector


def main() -> None:
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    tune_collector()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
