"""Kazoo (python3-kazoo) against a server's TLS port or with SASL
DIGEST-MD5 (pure-sasl), for server/security_test.go.

  kazoo_security.py tls <host:port> <ca> <cert> <key> <readable> <noauth>
      connect with use_ssl and the client certificate; create and read a
      node; <readable> (an x509 ACL for this certificate) must be readable,
      <noauth> (an x509 ACL for another one) must raise NoAuthError.
  kazoo_security.py sasl <host:port> <user> <password> <path>
      connect with SASL DIGEST-MD5, create <path> with ACL sasl:<user>
      (all permissions) and read it and its ACL back.
  kazoo_security.py sasl-read <host:port> <user> <password> <path>
      connect with SASL and try to read <path>: prints OK or NOAUTH.
  kazoo_security.py sasl-bad <host:port> <user> <password>
      connect with SASL and a wrong password: must fail.
Prints OK lines; any failure exits non-zero.
"""
import logging
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

logging.basicConfig(level=logging.ERROR)


def sasl_client(hosts, user, password):
    return KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": 0},
                       sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password})


def main(argv):
    mode = argv[1]
    if mode == "tls":
        hosts, ca, cert, key, readable, noauth = argv[2:8]
        zk = KazooClient(hosts=hosts, timeout=10, use_ssl=True, ca=ca, certfile=cert,
                         keyfile=key, verify_certs=True)
        zk.start(timeout=15)
        path = zk.create("/kazoo-tls-", b"over tls", sequence=True)
        data, _ = zk.get(path)
        assert data == b"over tls", data
        print("OK create/get", path)
        data, _ = zk.get(readable)
        print("OK readable", readable, data.decode())
        try:
            zk.get(noauth)
            raise SystemExit("read of %s succeeded, want NoAuth" % noauth)
        except NoAuthError:
            print("OK noauth", noauth)
        zk.stop()
        zk.close()
    elif mode == "sasl":
        hosts, user, password, path = argv[2:6]
        zk = sasl_client(hosts, user, password)
        zk.start(timeout=15)
        zk.create(path, b"sasl data", acl=[make_acl("sasl", user, all=True)])
        data, _ = zk.get(path)
        assert data == b"sasl data", data
        acls, _ = zk.get_acls(path)
        print("OK acl", ",".join("%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in acls))
        zk.stop()
        zk.close()
    elif mode == "sasl-read":
        hosts, user, password, path = argv[2:6]
        zk = sasl_client(hosts, user, password)
        zk.start(timeout=15)
        try:
            zk.get(path)
            print("OK")
        except NoAuthError:
            print("NOAUTH")
        zk.stop()
        zk.close()
    elif mode == "sasl-bad":
        hosts, user, password = argv[2:5]
        zk = sasl_client(hosts, user, password)
        try:
            zk.start(timeout=8)
            zk.get("/")
        except Exception as e:  # AuthFailedError or a timeout, as with ZooKeeper
            print("OK failed:", type(e).__name__)
            zk.stop()
            zk.close()
            return
        raise SystemExit("SASL with a wrong password succeeded")
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
