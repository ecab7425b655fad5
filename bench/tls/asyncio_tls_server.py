#!/usr/bin/env python3
"""The TLS echo server as an asyncio Protocol with ssl= (bench/tls/run.sh); --uvloop runs it
on uvloop.

data_received writes the data straight back.
"""
import argparse
import asyncio
import ssl


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(host, port, context):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=1024, reuse_address=True,
                                      ssl=context)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(serve(args.host, args.port, context))


if __name__ == "__main__":
    main()
