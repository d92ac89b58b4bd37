"""One platform worker process: ``python -m buttress.demo.worker --fd N``.

The runner binds the listening socket once and starts each worker with it inherited as file descriptor
``N``, so every worker accepts on the same port and the kernel spreads connections between them. The
settings come from ``$BUTTRESS_DEMO_SETTINGS``. SIGTERM (or SIGINT) stops the worker gracefully: it
finishes the requests in flight, stops the platform and writes its final telemetry snapshot.
"""

from __future__ import annotations

import argparse
import logging

from buttress._extras import require

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Serve the platform on the inherited socket until terminated."""
    parser = argparse.ArgumentParser(prog="python -m buttress.demo.worker")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    args = parser.parse_args(argv)
    uvicorn = require("uvicorn", "web")
    from buttress.demo.app import from_env

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        from_env(),
        fd=args.fd,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":  # pragma: no cover - run as a process
    main()
