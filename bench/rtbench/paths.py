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
# The demo todos loaded into test.todos; every cold read takes ids from them (`Ids`).
DOCS = 200_000
