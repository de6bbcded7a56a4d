"""robots.txt: every request waiting for a host's robots.txt is checked against it."""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import Request
from twisted.internet.defer import Deferred

from garment.scrape.polite import RobotsTxtMiddleware


def test_every_request_waiting_for_robots_txt_gets_the_parser() -> None:
    # Scrapy's middleware hands the parsed file to the first waiter only; the others got
    # None ("no robots.txt") and went out unchecked.
    middleware = RobotsTxtMiddleware.__new__(RobotsTxtMiddleware)
    pending: Deferred[Any] = Deferred()
    middleware._parsers = {"shop.test": pending}
    parser = object()

    async def wait_for_three() -> list[Any]:
        waiting = [asyncio.ensure_future(middleware.robot_parser(
            Request(f"http://shop.test/img/{i}.jpg"))) for i in range(3)]
        await asyncio.sleep(0)
        pending.callback(parser)
        return await asyncio.gather(*waiting)

    assert asyncio.run(wait_for_three()) == [parser, parser, parser]
