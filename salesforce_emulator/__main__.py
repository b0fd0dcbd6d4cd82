"""`python -m salesforce_emulator`: serve the emulated org over HTTPS (and its Pub/Sub API over gRPC
with TLS on a second port, when `--pubsub-port` is given)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import uvicorn

from .app import Emulator, EmulatorConfig, build_app
from .generator import generate_org
from .pubsub import DEFAULT_KEEPALIVE_SECONDS, start_pubsub_server
from .tls import ensure_tls_files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    parser.add_argument(
        "--data-dir", type=Path, default=Path("var/emulator"), help="where the org and its CA live"
    )
    parser.add_argument("--host", default="localhost", help="host name in instance_url and the certificate")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument(
        "--pubsub-port",
        type=int,
        default=None,
        help="serve the Pub/Sub API (Change Data Capture) on this port, same certificate (absent: off; 0: any free port)",
    )
    parser.add_argument(
        "--pubsub-keepalive-seconds",
        type=float,
        default=DEFAULT_KEEPALIVE_SECONDS,
        help="how long a quiet Pub/Sub stream waits before an empty keepalive response",
    )
    parser.add_argument(
        "--generate", type=int, default=0, metavar="N", help="generate N opportunities if the org is empty"
    )
    parser.add_argument(
        "--people", type=int, default=None, help="people to generate (default: as many as opportunities)"
    )
    parser.add_argument(
        "--demo-fields",
        action="store_true",
        help="give generated opportunities the custom fields of a real org (Region__c, Segment__c, Seats__c, Strategic__c, Renewal_Date__c)",
    )
    parser.add_argument(
        "--sales-team-rate", type=float, default=0.0, help="edits per second by the emulated sales team"
    )
    parser.add_argument("--session-seconds", type=float, default=7200.0, help="lifetime of an access token")
    parser.add_argument("--client-id", default="oppsync-demo-client")
    parser.add_argument("--client-secret", default="oppsync-demo-secret")
    parser.add_argument("--username", default="integration@oppsync.example")
    parser.add_argument(
        "--password", default="oppsync-demo-password", help="the username-password flow's password"
    )
    parser.add_argument(
        "--security-token", default="DEMOSECURITYTOKEN", help="appended to the password in that flow"
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--control-from-anywhere",
        action="store_true",
        help="let other machines use the control API /__emulator__/ (it rewrites the org; loopback only by default)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s emulator %(levelname)s %(message)s")
    tls = ensure_tls_files(args.data_dir, [args.host, "localhost", "127.0.0.1"])
    config = EmulatorConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        username=args.username,
        password=args.password,
        security_token=args.security_token,
        jwt_public_key_file=tls.jwt_public_key_file,
        session_seconds=args.session_seconds,
        control_from_anywhere=args.control_from_anywhere,
        pubsub_keepalive_seconds=args.pubsub_keepalive_seconds,
    )
    emulator = Emulator(config)
    if args.generate and emulator.store.count("Opportunity") == 0:
        summary = generate_org(
            emulator.store, opportunities=args.generate, people=args.people, custom_fields=args.demo_fields
        )
        print(f"Generated an org: {summary}", flush=True)
    app = build_app(emulator, sales_team_rate=args.sales_team_rate)
    # Idle keep-alive connections of a client (the sync's session) are not running requests: do
    # not report them as an ERROR when the emulator stops (Ctrl-C under `make run`).
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: "Cancel 0 running task(s)" not in record.getMessage()
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.bind,
            port=args.port,
            ssl_certfile=str(tls.cert_chain_file),
            ssl_keyfile=str(tls.key_file),
            log_level=args.log_level,
            timeout_graceful_shutdown=2,
            access_log=False,
            timeout_keep_alive=30,
            date_header=False,  # the app sets Date from the org's clock
            server_header=False,  # Salesforce names no server software
        )
    )

    async def serve() -> None:
        # Both servers on one event loop (pubsub.py says why).
        pubsub = None
        banner = ""
        if args.pubsub_port is not None:
            pubsub, bound = await start_pubsub_server(
                emulator.pubsub,
                args.bind,
                args.pubsub_port,
                tls.cert_chain_file.read_bytes(),
                tls.key_file.read_bytes(),
            )
            banner = f"\n  SALESFORCE_PUBSUB_URL={args.host}:{bound}"
        print(
            f"Salesforce emulator at {config.instance_url}\n"
            f"  SALESFORCE_LOGIN_URL={config.instance_url}\n"
            f"  SALESFORCE_CLIENT_ID={config.client_id}\n"
            f"  SALESFORCE_CLIENT_SECRET={config.client_secret}\n"
            f"  SALESFORCE_CA_BUNDLE={tls.ca_file.resolve()}{banner}",
            flush=True,
        )
        try:
            await server.serve()
        finally:
            if pubsub is not None:
                await pubsub.stop(grace=1)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
