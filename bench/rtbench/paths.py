"""Where the bench finds what it runs, and the data it runs on."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.environ.get("READTHROUGH_MODULE", os.path.join(ROOT, "target/release/libreadthrough.so"))
LOADGEN = os.path.join(ROOT, "target/release/examples/loadgen")
STANDIN = os.path.join(ROOT, "target/release/examples/mongo_standin")
SECANTUSD = os.path.join(ROOT, ".venv/bin/secantusd-py")
DEMO_DATA = os.path.join(ROOT, "scripts/demo_data.py")
SECURE_MONGO = os.path.join(ROOT, "scripts/secure_mongo.py")
BUILD_REJSON = os.path.join(ROOT, "scripts/build_rejson.sh")
# The server every step starts: Debian's redis-server by default; BENCH_SERVER=path for another
# build (a vendored Redis 7.2+ or valkey-server, target/servers/*/src/).
SERVER = os.environ.get("BENCH_SERVER", "redis-server")
# The demo todos loaded into test.todos; every cold read takes ids from them (`Ids`).
DOCS = 200_000
