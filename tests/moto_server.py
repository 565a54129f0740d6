"""moto's S3 server (`moto_server`), with conditional puts made atomic as S3 makes them.

moto checks `If-None-Match: *` and then writes, with other request threads free to run in
between: two concurrent creates of one key can both succeed, where S3 lets one and answers
the other 412 (or 409). byref's S3 store counts references by such creates (one claim per
released reference), and the conformance case that releases 12 references at once failed
about once in 20 runs under load for moto's sake. This runs moto's own server with its
object-put handler serialized; nothing else about moto changes.

    python tests/moto_server.py -H 127.0.0.1 -p PORT
"""

import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_put_object = S3Response.put_object
_one_put_at_a_time = threading.Lock()


def _atomic_put_object(self: S3Response):  # type: ignore[no-untyped-def]
    with _one_put_at_a_time:
        return _put_object(self)


S3Response.put_object = _atomic_put_object  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
