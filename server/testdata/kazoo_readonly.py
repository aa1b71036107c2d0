"""Kazoo against a Paddock member in read-only mode (server/readonly_test.go).

usage: kazoo_readonly.py HOST:PORT PATH EXPECTED_DATA
Connects with read_only=True, checks the connection is read-only, reads
PATH, and checks that a write raises NotReadOnlyCallError. Prints "ok".
"""
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

hosts, path, expected = sys.argv[1], sys.argv[2], sys.argv[3]
zk = KazooClient(hosts=hosts, read_only=True, timeout=10)
zk.start(timeout=20)
if zk.client_state != KeeperState.CONNECTED_RO:
    sys.exit("client state %s, want CONNECTED_RO" % zk.client_state)
data, _ = zk.get(path)
if data.decode() != expected:
    sys.exit("read %r, want %r" % (data, expected))
try:
    zk.set(path, b"no way")
    sys.exit("write succeeded on a read-only server")
except NotReadOnlyCallError:
    pass
try:
    zk.create(path + "-new", b"")
    sys.exit("create succeeded on a read-only server")
except NotReadOnlyCallError:
    pass
zk.stop()
zk.close()
print("ok")
