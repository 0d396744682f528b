"""The original demo's todo API, unchanged in shape, with no cache code at all.

The app this project replaces read a todo with redis-py's `r.json().get(todo_id)`: a RedisJSON
document under the bare id (`"42"`, no prefix), without `_id`, validated as `Todo`. A
RedisGears recipe hooked `JSON.GET` to load misses from MongoDB. Here the readthrough module
does that, with this mapping (see the module's README):

    readthrough.mappings "=test.todos:id;format=json;fields=-_id"

and RedisJSON loaded before the module. The first request for a cold todo is answered 200: the
module loads the document during that `JSON.GET`. The application never talks to MongoDB and
holds no TTL, serialization or stampede logic.

Run: REDIS_URL=redis://127.0.0.1:6379 uvicorn app:app --port 8000   (from this directory)
"""
import os

import redis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="todos, read through Redis")
r = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"), decode_responses=True)

# The first word of a module error is its code (see the module's README).
STATUS = {"TIMEOUT": 504, "BACKEND": 503, "BUSY": 503, "NOMAPPING": 500, "ERR": 400}


class Todo(BaseModel):
    id: str
    name: str
    description: str


@app.get("/todos/{todo_id}", response_model=Todo)
def get_todo(todo_id: str) -> Todo:
    try:
        doc = r.json().get(todo_id)
    except redis.ResponseError as e:
        code = str(e).split(" ", 1)[0]
        raise HTTPException(status_code=STATUS.get(code, 500), detail=str(e))
    if doc is None:
        raise HTTPException(status_code=404, detail=f"todo {todo_id} not found")
    return Todo(**doc)
