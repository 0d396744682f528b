"""What one bench run shares: the processes it started (stopped at the end, whatever
happens), SecantusDB with the 200,000 demo todos (or MONGO_URI), the main redis-server with the
module, and the cold ids not read yet. Steps start further servers through `redis_server`, the
one place a redis-server command line is written."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import redis

from . import tools
from .paths import BUILD_REJSON, DEMO_DATA, DOCS, MODULE, SECANTUSD, SERVER


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start on port {port}")


class Ids:
    """Hands out ranges of ids never read before, so every load is a cold miss."""

    def __init__(self, first=10):
        self.next = first

    def take(self, n):
        start = self.next
        self.next += n
        if self.next > DOCS:
            sys.exit("bench ran out of cold ids")
        return start


@dataclass
class Server:
    port: int
    proc: subprocess.Popen

    def client(self):
        return redis.Redis(port=self.port, decode_responses=True)


class Context:
    def __init__(self, args, tmp):
        self.args, self.tmp, self.procs = args, tmp, []
        self.ids = Ids()
        self.mongo_proc = None

    def spawn(self, args, log):
        p = subprocess.Popen(args, stdout=open(os.path.join(self.tmp, log), "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def redis_server(self, log, readthrough=None, modules=(), extra=(), port=None):
        """Starts a redis-server (persistence off) and waits for its port. With `readthrough`
        (a dict of readthrough.* configs) the module is loaded after `modules`."""
        port = port or free_port()
        args = [SERVER, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", self.tmp, *extra]
        for m in modules:
            args += ["--loadmodule", m]
        if readthrough is not None:
            args += ["--loadmodule", MODULE]
            for k, v in readthrough.items():
                args += [f"--readthrough.{k}", str(v)]
        proc = self.spawn(args, log)
        wait_port(port, f"redis-server ({log})")
        return Server(port, proc)

    def json_modules(self):
        """The JSON module to load before ours, as `--loadmodule` paths (RedisJSON, built once
        by scripts/build_rejson.sh; none where the server has JSON built in), or `None` with the
        reason printed when it is not available."""
        rejson = subprocess.run([BUILD_REJSON], capture_output=True, text=True)
        if rejson.returncode != 0:
            print(f"RedisJSON not available ({rejson.stderr.strip()})")
            return None
        lib = rejson.stdout.strip()
        return [lib] if lib else []

    def load_demo_data(self, uri):
        subprocess.run([sys.executable, DEMO_DATA, uri, str(DOCS)], check=True)

    def setup(self):
        import pymongo
        self.uri = os.environ.get("MONGO_URI")
        if not self.uri:
            mport = free_port()
            self.mongo_proc = self.spawn(
                [SECANTUSD, "--port", str(mport), "--storage-path", os.path.join(self.tmp, "mongo"),
                 "--log-level", "WARNING"], "mongo.log")
            wait_port(mport, "SecantusDB")
            self.uri = f"mongodb://127.0.0.1:{mport}"
        self.load_demo_data(self.uri)
        self.mongo = pymongo.MongoClient(self.uri)
        self.mongo_version = self.mongo.admin.command("buildInfo").get("version", "?")
        self.mongo_name = ("SecantusDB (embedded)" if self.mongo_proc
                           else f"external MongoDB ({self.uri.split('@')[-1]})")
        self.server = self.redis_server("redis.log", self.todo_configs(**{"max-inflight": 20000}),
                                        extra=["--maxclients", "12000"])
        self.rport = self.server.port
        self.r = self.server.client()
        self.value = self.r.execute_command("RT.GET", "todo:1")
        assert self.value.startswith("{"), self.value

    def todo_configs(self, uri=None, **more):
        """The configs of a server with the mapping `todo:=test.todos:id`, inline loads on and
        a timeout no step reaches."""
        return {"inline-loads": "yes", "mongo-uri": uri or self.uri, "mappings": "todo:=test.todos:id",
                "timeout": 60000, **more}

    @contextlib.contextmanager
    def mapping_added(self, spec):
        """The main server with one more mapping for the `with` block (steps 15 and 16)."""
        before = self.r.config_get("readthrough.mappings")["readthrough.mappings"]
        self.r.config_set("readthrough.mappings", f"{before} {spec}")
        try:
            yield
        finally:
            self.r.config_set("readthrough.mappings", before)

    def loadgen(self, mode, rport=None, uri=None, **options):
        """The load generator against the main servers, or the given Redis port and URI."""
        return tools.loadgen(mode, rport or self.rport, uri or self.uri, **options)

    def queries(self):
        return self.mongo.admin.command("serverStatus")["opcounters"]["query"]

    def close(self):
        if self.mongo_proc:
            try:
                os.kill(self.mongo_proc.pid, signal.SIGCONT)
            except OSError:
                pass
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
