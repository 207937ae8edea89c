"""Replies the reference service never gives but proxies and real endpoints can: non-200
statuses, bodies that are not JSON, and error replies with a Content-Type the SDK does not
parse. A small stdlib HTTP server on a random loopback port plays the endpoint."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cfs_cloud import CfsClient, CfsNetworkError, CfsNotFound, CloudConfig


class CannedEndpoint(BaseHTTPRequestHandler):
    """Answers every request with `server.reply` = (status, content type, body)."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.actions.append(self.headers["X-TC-Action"])
        status, content_type, body = self.server.reply
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), CannedEndpoint)
    server.actions = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def client_for(server, **tuning):
    host, port = server.server_address
    return CfsClient(
        CloudConfig(
            endpoint=f"http://{host}:{port}",
            secret_id="AKIDtransport",
            secret_key="transport-key",
            retry_deadline=0.3,
            retry_base_delay=0.01,
            **tuning,
        )
    )


def test_gateway_errors_are_network_errors_retried_only_for_reads(endpoint):
    endpoint.reply = (502, "text/html", b"<html>Bad Gateway</html>")
    with pytest.raises(CfsNetworkError) as info:
        client_for(endpoint).call("DescribeCfsFileSystems", {})
    assert info.value.code == "ServerNetworkError" and info.value.maybe_sent is True
    assert "Bad Gateway" in info.value.message
    reads = len(endpoint.actions)
    assert reads >= 2  # retried until the deadline

    with pytest.raises(CfsNetworkError):
        client_for(endpoint).call("CreateCfsPGroup", {"Name": "g"})
    assert endpoint.actions[reads:] == ["CreateCfsPGroup"]  # a create is sent once


def test_a_body_that_is_not_json_is_a_network_error(endpoint):
    endpoint.reply = (200, "application/json", b"{not json")
    with pytest.raises(CfsNetworkError, match="unreadable reply"):
        client_for(endpoint).call("DescribeCfsFileSystems", {})


def test_error_reply_with_an_unusual_content_type_is_still_typed(endpoint):
    """The SDK parses errors only for Content-Type exactly application/json."""
    body = {
        "Response": {
            "Error": {"Code": "ResourceNotFound.FileSystemNotFound", "Message": "no such file system"},
            "RequestId": "r-1",
        }
    }
    endpoint.reply = (200, "application/json; charset=utf-8", json.dumps(body).encode())
    with pytest.raises(CfsNotFound) as info:
        client_for(endpoint).call("DescribeMountTargets", {"FileSystemId": "cfs-1"})
    assert (info.value.code, info.value.request_id) == ("ResourceNotFound.FileSystemNotFound", "r-1")
    assert endpoint.actions == ["DescribeMountTargets"]
