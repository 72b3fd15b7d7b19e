"""moto_server with one fix to its SigV4 check, for pgsnap's tests.

Usage: python3 moto_auth_fixed.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)

moto 5.x re-derives the signed request from Werkzeug's re-quoted URL, whose query string has
'/' (and other characters) decoded; botocore then signs that text as it stands, so moto rejects
correct signatures of every request whose query holds a '/', e.g. ListObjectsV2 with
prefix=a/b/ (botocore's own requests fail the same way). The fix re-encodes each query key and
value the way SigV4 prescribes (RFC 3986, upper-case hex, '/' encoded) before moto computes the
signature. Nothing else changes: a wrong secret, key or signature is still rejected.
"""
import sys
from urllib.parse import quote, unquote

import moto.iam.access_control as access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    request = _original(self)
    path, sep, query = request.url.partition("?")
    if sep:
        pairs = []
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            pairs.append(quote(unquote(key), safe="-_.~") + "=" + quote(unquote(value), safe="-_.~"))
        request.url = path + "?" + "&".join(pairs)
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request

from moto.server import main  # noqa: E402  (after the patch)

if __name__ == "__main__":
    sys.exit(main())
