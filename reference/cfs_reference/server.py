"""The HTTP server: `/` is the CFS API, `/healthz` health, `/_admin/*` test control (token protected)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Any

from aiohttp import web

from cfs_reference.admin import state_snapshot
from cfs_reference.protocol import HttpRequest, Protocol

access_log = logging.getLogger("cfs_reference.access")
log = logging.getLogger(__name__)

JSON_HEADERS = MappingProxyType(
    {"Content-Type": "application/json"}
)  # exactly this: the SDK parses nothing else
SETTLE_INTERVAL_SECONDS = 0.05  # how often lifecycles advance when no request arrives
ADMIN_TOKEN_HEADER = "X-Admin-Token"
PROTOCOL_KEY = web.AppKey("protocol", Protocol)
ADMIN_TOKEN_KEY = web.AppKey("admin_token", str)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"), status=status, headers=JSON_HEADERS
    )


async def api(request: web.Request) -> web.Response:
    started = time.perf_counter()
    protocol = request.app[PROTOCOL_KEY]
    outcome = await protocol.handle(
        HttpRequest(
            method=request.method,
            host=request.host,
            query_string=request.rel_url.raw_query_string,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
        )
    )
    request_id = str(uuid.uuid4())
    response = json_response({"Response": {**outcome.payload, "RequestId": request_id}})
    access_log.info(
        "request action=%s version=%s code=%s latency_ms=%.1f request_id=%s",
        outcome.action or "-",
        outcome.version or "-",
        outcome.code,
        (time.perf_counter() - started) * 1000,
        request_id,
    )
    return response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


# ---- admin (not part of the CFS API) ----


@web.middleware
async def admin_guard(request: web.Request, handler):
    if request.path.startswith("/_admin/"):
        expected = request.app[ADMIN_TOKEN_KEY]
        if not expected:
            return json_response({"error": "the admin endpoint is disabled (no --admin-token)"}, 404)
        given = request.headers.get(ADMIN_TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return json_response({"error": f"missing or wrong {ADMIN_TOKEN_HEADER}"}, 401)
    return await handler(request)


async def admin_get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[PROTOCOL_KEY].faults.as_json())


async def admin_put_faults(request: web.Request) -> web.Response:
    faults = request.app[PROTOCOL_KEY].faults
    try:
        faults.replace_from_json(await request.json())
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return json_response({"error": f"bad faults body: {error}"}, 400)
    return json_response(faults.as_json())


async def admin_state(request: web.Request) -> web.Response:
    protocol = request.app[PROTOCOL_KEY]
    protocol.backend.settle()
    return json_response(state_snapshot(protocol.backend))


async def admin_calls(request: web.Request) -> web.Response:
    return json_response(request.app[PROTOCOL_KEY].calls.as_json())


async def admin_reset_calls(request: web.Request) -> web.Response:
    request.app[PROTOCOL_KEY].calls.reset()
    return json_response({})


async def admin_config(request: web.Request) -> web.Response:
    protocol = request.app[PROTOCOL_KEY]
    try:
        body = await request.json()
        if "create_delay" in body:
            delay = float(body["create_delay"])
            if delay < 0:
                raise ValueError("create_delay must be >= 0")
            protocol.backend.create_delay = delay
        if "rate_limits" in body:
            protocol.limiter.set_limits({str(k): int(v) for k, v in body["rate_limits"].items()})
        if "rate_limits_enabled" in body:
            protocol.limiter.enabled = bool(body["rate_limits_enabled"])
    except (ValueError, TypeError, AttributeError) as error:
        return json_response({"error": f"bad config body: {error}"}, 400)
    return json_response(
        {
            "create_delay": protocol.backend.create_delay,
            "rate_limits_enabled": protocol.limiter.enabled,
            "rate_limits": {**protocol.limiter.documented, **protocol.limiter.overrides},
        }
    )


# ---- application ----


async def _settle_forever(protocol: Protocol) -> None:
    while True:
        await asyncio.sleep(SETTLE_INTERVAL_SECONDS)
        try:
            protocol.backend.settle()
        except Exception:  # keep advancing lifecycles even if one pass fails
            log.exception("settling lifecycles failed")


def build_app(protocol: Protocol, admin_token: str) -> web.Application:
    app = web.Application(middlewares=[admin_guard], client_max_size=10 * 1024 * 1024)
    app[PROTOCOL_KEY] = protocol
    app[ADMIN_TOKEN_KEY] = admin_token

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        protocol.backend.start()
        settler = asyncio.create_task(_settle_forever(protocol))
        yield
        settler.cancel()
        protocol.backend.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/_admin/faults", admin_get_faults)
    app.router.add_put("/_admin/faults", admin_put_faults)
    app.router.add_get("/_admin/state", admin_state)
    app.router.add_get("/_admin/calls", admin_calls)
    app.router.add_post("/_admin/calls/reset", admin_reset_calls)
    app.router.add_put("/_admin/config", admin_config)
    app.router.add_route("*", "/", api)
    return app
