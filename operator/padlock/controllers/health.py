"""Liveness ``/healthz`` and readiness ``/readyz`` on ``--health-addr`` (aiohttp, on kopf's loop).

Ready once kopf runs and every RuleSource had its first sync after startup (or none exist). With
leader election, ready once kopf runs: every replica serves admission, and a follower never syncs.
"""

from __future__ import annotations

from aiohttp import web

from padlock.controllers.context import OperatorContext


async def start(ctx: OperatorContext) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ctx.started and (ctx.state.ready or ctx.elected):
            return web.Response(text="ok\n")
        pending = sorted(set(ctx.state.sources) - ctx.state.synced)
        return web.Response(status=503, text=f"not ready: waiting for first sync of {', '.join(pending) or 'startup'}\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = ctx.runtime.health_addr.rpartition(":")
    await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()
    return runner
