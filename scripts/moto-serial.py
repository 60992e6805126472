"""The local DynamoDB/STS server (moto), handling one request at a time.

moto applies TransactWriteItems atomically only while no other request runs: it snapshots tables and restores them
when a transaction is cancelled, so two transactions handled at once can undo each other's writes. DynamoDB never
does that. Serving one request at a time gives each transaction the atomicity DynamoDB guarantees, while clients
still race between their reads and their conditional writes, which is the race jitgate must survive.

Usage: python moto-serial.py [PORT]   (0 or nothing: a free port). Prints the port once it is listening.
"""
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=False,
                     request_handler=MotoRequestHandler)
print(server.port, flush=True)
server.serve_forever()
