#!/usr/bin/env python3
"""Runs SecantusDB in the shape production MongoDB has: SCRAM-SHA-256 authentication, TLS, and
the one-node replica set `secantus` (Atlas and self-hosted replica sets look like this to a
client; an open local port does not).

Usage: secure_mongo.py --port P --dir DIR [--enable-test-commands]

On first use in DIR it makes a CA and a server certificate for 127.0.0.1/localhost with
openssl, starts the server once without auth to create the user `bench` (role root), and stops
it. Then it writes the URI a client needs to DIR/uri (password and CA file included) and
replaces itself with the server run with --auth and TLS, in the foreground: stopping this
process stops the server.
"""
import argparse
import os
import secrets
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECANTUSD = os.environ.get("SECANTUSD", os.path.join(ROOT, ".venv/bin/secantusd-py"))


def wait_port(port, up, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            is_up = True
        except OSError:
            is_up = False
        if is_up == up:
            return
        time.sleep(0.05)
    sys.exit(f"SecantusDB on port {port} did not {'start' if up else 'stop'}")


def certificates(d):
    """A CA of our own and a server certificate it signed (rustls refuses a self-signed
    certificate that is its own CA)."""
    p = lambda name: os.path.join(d, name)
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=bench CA",
         "-keyout", p("ca.key"), "-out", p("ca.pem")],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", p("key.pem"),
         "-out", p("server.csr")],
        ["x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-CAcreateserial", "-days", "30", "-extfile", p("ext.cnf"), "-out", p("cert.pem")],
    ):
        subprocess.run(["openssl", *args], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--enable-test-commands", action="store_true")
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data")
    server = [SECANTUSD, "--port", str(a.port), "--storage-path", data, "--log-level", "WARNING"]
    pw_file = os.path.join(d, "password")
    if not os.path.exists(pw_file):
        certificates(d)
        from pymongo import MongoClient

        password = secrets.token_hex(12)
        first = subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(a.port, True)
        MongoClient(f"mongodb://127.0.0.1:{a.port}/?directConnection=true").admin.command(
            "createUser", "bench", pwd=password, roles=["root"])
        first.terminate()
        first.wait(30)
        wait_port(a.port, False)
        with open(pw_file, "w") as f:
            f.write(password)
    password = open(pw_file).read().strip()
    uri = (f"mongodb://bench:{password}@127.0.0.1:{a.port}/?authSource=admin&replicaSet=secantus"
           f"&tls=true&tlsCAFile={os.path.join(d, 'ca.pem')}")
    with open(os.path.join(d, "uri"), "w") as f:
        f.write(uri)
    args = server + ["--auth", "--tls-cert-file", os.path.join(d, "cert.pem"),
                     "--tls-key-file", os.path.join(d, "key.pem")]
    if a.enable_test_commands:
        args.append("--enable-test-commands")
    sys.stdout.flush()
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
