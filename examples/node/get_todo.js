// Reads todos through Redis with node-redis: RT.GET answers from Redis or loads the document
// from MongoDB (the readthrough module), so this program holds no cache code.
//
// Usage: node get_todo.js [REDIS_URL] ID [ID ...]   (npm install first)
// Prints one line per id: the document's JSON, or "null" when MongoDB has no such todo.
const { createClient } = require("redis");

async function main() {
  const args = process.argv.slice(2);
  const url = args[0] && args[0].startsWith("redis://") ? args.shift() : "redis://127.0.0.1:6379";
  if (args.length === 0) {
    console.error("usage: node get_todo.js [REDIS_URL] ID [ID ...]");
    process.exit(2);
  }
  const client = createClient({ url });
  client.on("error", (e) => console.error("redis:", e.message));
  await client.connect();
  try {
    for (const id of args) {
      // A module error (TIMEOUT, BACKEND, BUSY, ...) rejects with its message.
      const doc = await client.sendCommand(["RT.GET", `todo:${id}`]);
      console.log(doc === null ? "null" : doc);
    }
  } finally {
    await client.quit();
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
