"""moto_server with one fix to its SigV4 check, for pgsnap's tests.

Usage: python3 moto_auth_fixed.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)

moto 5.x re-derives the signed request from Werkzeug's re-quoted URL, whose query string has
'/' (and other characters) decoded; botocore then signs that text as it stands, so moto rejects
correct signatures of every request whose query holds a '/', e.g. ListObjectsV2 with
prefix=a/b/ (botocore's own requests fail the same way). The fix re-encodes each query key and
value the way SigV4 prescribes (RFC 3986, upper-case hex, '/' encoded) before moto computes the
signature. Nothing else changes: a wrong secret, key or signature is still rejected.

A second fix for object keys that need percent-encoding (a space, '%', '+', UTF-8: every
snapshot of a database whose name is not plain ASCII): moto signs Werkzeug's decoded and
re-quoted path, not the path the client sent and signed (botocore's own PutObject of such a
key is rejected too). The path is taken as sent, from the WSGI environ's RAW_URI / REQUEST_URI.
"""
import sys
from urllib.parse import quote, unquote

import moto.iam.access_control as access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    request = _original(self)
    path, sep, query = request.url.partition("?")
    raw = _raw_path()
    if raw and "://" not in path:
        path = raw
        request.url = path + sep + query
    if sep:
        pairs = []
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            pairs.append(quote(unquote(key), safe="-_.~") + "=" + quote(unquote(value), safe="-_.~"))
        request.url = path + "?" + "&".join(pairs)
    return request


def _raw_path():
    try:
        from flask import request as current
    except ImportError:
        return None
    try:
        environ = current.environ
    except RuntimeError:
        return None
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return raw.partition("?")[0] if raw else None


access_control.IAMRequestBase._create_aws_request = _create_aws_request

from moto.server import main  # noqa: E402  (after the patch)

if __name__ == "__main__":
    sys.exit(main())
