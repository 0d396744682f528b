"""The original demo's todo API, with no cache code at all.

`GET /todos/{id}` asks Redis for `todo:{id}` with `RT.GET`; the readthrough module answers from
Redis or loads the document from MongoDB, stores it and replies. The application never talks to
MongoDB and holds no TTL, serialization or stampede logic. (With the module's transparent mode a
plain `r.get(f"todo:{id}")` works the same.)

Run: REDIS_URL=redis://127.0.0.1:6379 uvicorn app:app --port 8000   (from this directory)
"""
import os

import redis
from fastapi import FastAPI, HTTPException, Response

app = FastAPI(title="todos, read through Redis")
r = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"), decode_responses=True)

# The first word of a module error is its code (see the module's README).
STATUS = {"TIMEOUT": 504, "BACKEND": 503, "BUSY": 503, "NOMAPPING": 500, "ERR": 400}


@app.get("/todos/{todo_id}")
def get_todo(todo_id: str):
    try:
        doc = r.execute_command("RT.GET", f"todo:{todo_id}")
    except redis.ResponseError as e:
        code = str(e).split(" ", 1)[0]
        raise HTTPException(status_code=STATUS.get(code, 500), detail=str(e))
    if doc is None:
        raise HTTPException(status_code=404, detail=f"todo {todo_id} not found")
    return Response(content=doc, media_type="application/json")
