"""17. Change streams in Redis Cluster: six masters (the module on each, `todo:=test.todos:id`)
against a SecantusDB of the step's own (so that its count of open cursors is the cluster's
alone; with MONGO_URI, the shared server's count before and after), then change to visible for
a key on whichever master holds it (the collection's one watcher sends the change over the
cluster bus) against the same on one redis-server, taking turns update by update; and the bus
traffic per change event."""
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from .. import goals
from ..context import free_port, wait_port
from ..paths import SECANTUSD
from ..report import Row
from ..stats import p99

NUMBER, NAME = "17", "cluster_changes"
MASTERS = 6


@dataclass
class ClusterChanges:
    masters: int
    streams: int
    n: int
    cluster_p50_ms: float
    cluster_p99_ms: float
    single_p50_ms: float
    single_p99_ms: float
    forwarded_share: float  # updates whose key was on another master than the watcher's
    messages_per_event: float
    ticks_per_s: float

    def summary(self):
        return [Row(NUMBER, f"cluster of {self.masters} masters: change streams MongoDB sees for 1 collection",
                    goals.CLUSTER_STREAMS, f"{self.streams}", self.streams),
                Row(NUMBER, "cluster: change to visible on any master, p99", goals.CHANGE_VISIBLE_MS,
                    f"{self.cluster_p50_ms:.1f} / {self.cluster_p99_ms:.1f} ms (p50 / p99; one node: "
                    f"{self.single_p50_ms:.1f} / {self.single_p99_ms:.1f})", self.cluster_p99_ms)]

    def section(self):
        return [f"## 17. Change streams in Redis Cluster ({self.masters} masters, one mapped collection)", "",
                f"Change streams MongoDB holds open for the cluster (`serverStatus` open cursors of the step's own "
                f"SecantusDB, after the cluster started - before): "
                f"**{self.streams}** (one watcher per collection in the whole cluster; before, one per master: "
                f"{self.masters}).", "",
                f"Change to visible over {self.n:,} updates on each side, taking turns: pymongo updates a cached "
                "todo, then `RT.GET` is polled on the master holding it until it shows the new value.", "",
                "| | p50 | p99 |", "|---|---|---|",
                f"| a key on any of the {self.masters} masters | {self.cluster_p50_ms:.1f} ms | {self.cluster_p99_ms:.1f} ms |",
                f"| one redis-server, in turns with it | {self.single_p50_ms:.1f} ms | {self.single_p99_ms:.1f} ms |", "",
                f"{self.forwarded_share:.0%} of the cluster's keys were on a master other than the watcher's. "
                f"Cluster-bus messages per change event: {self.messages_per_event:.2f} (the single server's updates "
                "are events of the same collection, so the cluster's watcher sends those too: one message to the "
                f"key's master when it is not the watcher's own); ticks besides: {self.ticks_per_s:.1f} a second "
                f"(one a second to each other master). The extra hop is one bus message: timed once with log "
                "lines in the module, sent to received took about 50 µs at the median and up to 32 ms at the "
                "tail, on a 2-core VM running seven redis-servers, two SecantusDBs and the polling client.", ""]

    def bars(self):
        return []


def cluster_port():
    """A free port whose cluster-bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536:
            try:
                with socket.socket() as b:
                    b.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    sys.exit("17. no free port pair for a cluster node")


def info(client):
    """`INFO readthrough` without the field prefix."""
    return {k.removeprefix("readthrough_"): v for k, v in client.info("readthrough").items()}


def states(client):
    """The `state=` of each watcher line (redis-py reads `a=b,c=d` values as dicts)."""
    out = []
    for k, v in info(client).items():
        if k.startswith("watcher_"):
            out.append(v["state"] if isinstance(v, dict) else dict(f.split("=", 1) for f in v.split(","))["state"])
    return out


def open_cursors(mongo):
    return mongo.admin.command("serverStatus")["metrics"]["cursor"]["open"]["total"]


def own_mongo(ctx, docs):
    """A SecantusDB of the step's own with `docs` todos (the shared one with MONGO_URI)."""
    import pymongo
    if not ctx.mongo_proc:
        return ctx.uri, ctx.mongo
    port = free_port()
    ctx.spawn([SECANTUSD, "--port", str(port), "--storage-path", os.path.join(ctx.tmp, "mongo17"),
               "--log-level", "WARNING"], "mongo17.log")
    wait_port(port, "SecantusDB (step 17)")
    uri = f"mongodb://127.0.0.1:{port}"
    mongo = pymongo.MongoClient(uri)
    mongo.test.todos.insert_many([{"id": str(i), "name": f"todo {i}", "description": "d"}
                                  for i in range(1, docs + 1)])
    mongo.test.todos.create_index("id")
    return uri, mongo


def wait(what, ok, timeout=60):
    t = time.time()
    while not ok():
        if time.time() - t > timeout:
            sys.exit(f"17. timed out waiting for {what}")
        time.sleep(0.1)


def start_cluster(ctx, uri):
    servers = []
    for i in range(MASTERS):
        port = cluster_port()
        servers.append(ctx.redis_server(
            f"cluster{i}.log", ctx.todo_configs(uri=uri),
            extra=["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-bench-{port}.conf"], port=port))
    subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{s.port}" for s in servers],
                    "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
    clients = [s.client() for s in servers]
    wait("cluster_state:ok", lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in clients))

    def all_states():
        return [s for c in clients for s in states(c)]
    wait("one watcher", lambda: all_states().count("watching") == 1 and all_states().count("remote") == MASTERS - 1)
    return servers, clients


def bus_counts(clients):
    """Cluster-bus messages and ticks sent, summed over the masters."""
    infos = [info(c) for c in clients]
    return sum(i["cdc_bus_sent"] for i in infos), sum(i["cdc_bus_ticks"] for i in infos)


def slot_owners(clients):
    """Slot -> the client of the master serving it."""
    owners = {}
    for c in clients:
        me = c.cluster("myid")
        for r in c.execute_command("CLUSTER", "SLOTS"):
            if r[2][2] == me:
                owners.update({s: c for s in range(int(r[0]), int(r[1]) + 1)})
    return owners


def visible(client, key, i, todos):
    assert client.execute_command("RT.GET", key)
    t = time.perf_counter()
    todos.update_one({"id": str(i)}, {"$set": {"name": f"changed {i}"}})
    while f"changed {i}" not in client.execute_command("RT.GET", key):
        if time.perf_counter() - t > 10:
            sys.exit(f"17. the update of {key} was not visible after 10 s")
    return (time.perf_counter() - t) * 1e6


def run(ctx):
    n = ctx.args.updates
    uri, mongo = own_mongo(ctx, 2 * n + 10)
    before = open_cursors(mongo)
    servers, clients = start_cluster(ctx, uri)
    wait("the cluster's change streams", lambda: open_cursors(mongo) > before, timeout=10)
    time.sleep(1)  # any second stream a wrong build opened would be open by now
    streams = open_cursors(mongo) - before
    single = ctx.redis_server("single17.log", ctx.todo_configs(uri=uri))
    one = single.client()
    wait("the single server's watcher", lambda: states(one) == ["watching"])
    home = next(c for c in clients if "watching" in states(c))
    todos = mongo.test.todos
    start = 1
    owners = slot_owners(clients)
    sent0, ticks0, t0 = bus_counts(clients) + (time.time(),)
    cluster_lat, single_lat, forwarded = [], [], 0
    for k in range(n):
        i, j = start + 2 * k, start + 2 * k + 1
        owner = owners[clients[0].cluster("keyslot", f"todo:{i}")]
        forwarded += owner is not home
        cluster_lat.append(visible(owner, f"todo:{i}", i, todos))
        single_lat.append(visible(one, f"todo:{j}", j, todos))
    sent1, ticks1 = bus_counts(clients)
    elapsed = time.time() - t0
    for c in clients:
        c.close()
    one.close()
    for s in servers + [single]:  # the later steps run without them
        s.proc.terminate()
        s.proc.wait(10)
    cluster_lat.sort()
    single_lat.sort()
    res = ClusterChanges(MASTERS, streams, n, cluster_lat[n // 2] / 1000, p99(cluster_lat) / 1000,
                         single_lat[n // 2] / 1000, p99(single_lat) / 1000, forwarded / n,
                         (sent1 - sent0) / (2 * n), (ticks1 - ticks0) / elapsed)
    print(f"17. cluster of {MASTERS} masters: {streams} change stream(s) on MongoDB; change to visible "
          f"p50 {res.cluster_p50_ms:.1f} ms p99 {res.cluster_p99_ms:.1f} ms (one node: "
          f"{res.single_p50_ms:.1f} / {res.single_p99_ms:.1f} ms); {res.messages_per_event:.2f} bus messages "
          f"a change event")
    return res
