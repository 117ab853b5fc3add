"""The baseline of the API benchmark: a bare Tornado app answering one route with fixed bytes
(``--body FILE``), and optionally reading one document from MongoDB first (``--mongo URL``).
``python -m bench.bare_tornado PORT --body FILE [--mongo URL --db NAME --id ID]``."""

from __future__ import annotations

import argparse
import asyncio

import tornado.web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--body", required=True)
    parser.add_argument("--mongo")
    parser.add_argument("--db")
    parser.add_argument("--id")
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    collection = None
    if args.mongo:
        from pymongo import AsyncMongoClient

        collection = AsyncMongoClient(args.mongo)[args.db]["executions"]

    class Handler(tornado.web.RequestHandler):
        async def get(self, ref: str) -> None:
            if collection is not None:
                await collection.find_one({"_id": args.id})
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(body)

    async def serve() -> None:
        app = tornado.web.Application([(r"/api/v0/executions/([^/]+)/", Handler)])
        app.listen(args.port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
