"""The aiohttp application and :class:`SimulatorServer` (in-process start/stop)."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from norce_simulator.config import SimulatorConfig
from norce_simulator.connect import ConnectHandlers
from norce_simulator.control import ControlHandlers
from norce_simulator.events import EventDispatcher
from norce_simulator.faults import make_fault_middleware
from norce_simulator.identity import IdentityHandlers
from norce_simulator.jobs import JobRunner
from norce_simulator.orders import OrderDesk
from norce_simulator.query import QueryHandlers
from norce_simulator.state import SimState


def build_app(
    state: SimState, runner: JobRunner, orders: OrderDesk | None = None
) -> web.Application:
    # client_max_size only limits read()/post(); import bodies are streamed instead.
    app = web.Application(middlewares=[make_fault_middleware(state)])
    app.router.add_post("/identity/1.0/connect/token", IdentityHandlers(state).token)
    app.router.add_routes(ConnectHandlers(state, runner).routes())
    app.router.add_routes(QueryHandlers(state).routes())
    app.router.add_routes(ControlHandlers(state).routes())
    if orders is not None:
        app.router.add_routes(orders.routes())
    return app


class SimulatorServer:
    """Runs the simulator on ``config.host:config.port`` (a free port when 0).

    Use as ``async with SimulatorServer(cfg) as sim:``; ``sim.state`` is the live state.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.state = SimState(self.config)
        self.events = EventDispatcher(self.state)
        self.jobs = JobRunner(self.state, self.events)
        self.orders = OrderDesk(self.state, self.events)
        self.app = build_app(self.state, self.jobs, self.orders)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        return f"{self.url}/commerce/connect/4.0/"

    @property
    def query_url(self) -> str:
        return f"{self.url}/commerce/query/2.0/"

    @property
    def identity_url(self) -> str:
        return f"{self.url}/identity/1.0/connect/token"

    async def start(self) -> SimulatorServer:
        self.events.start()
        self.jobs.start()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.orders.stop()
        await self.jobs.stop()
        await self.events.stop()

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
