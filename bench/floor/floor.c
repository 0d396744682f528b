/* The floor of a hit through the module API (bench step 14): the least work any module must
 * add to serve a read of a cached key, measured beside readthrough on the same server.
 *
 *   --loadmodule floor.so empty   a command filter that returns at once: what Redis spends
 *                                 calling any registered filter.
 *   --loadmodule floor.so peek    a filter that reads GET's name and key, matches the key's
 *                                 prefix ("todo:") and opens the key without counting it (the
 *                                 check that lets a cached read stay native), then leaves GET
 *                                 as it is.
 *   both also register FLOOR.GET key: a module command that opens the key and replies from its
 *   buffer (the least a module command serving a hit does).
 *
 * Not a cache: no MongoDB, no mapping, no miss path. Built by the bench with the
 * redismodule.h of the redis-module crate (bench/rtbench/steps/hit_cost.py). */
#include <string.h>
#include <strings.h>
#include "redismodule.h"

#define PEEK (REDISMODULE_READ | REDISMODULE_OPEN_KEY_NOTOUCH | (1 << 17) | (1 << 18))

static void empty_filter(RedisModuleCommandFilterCtx *f) { (void)f; }

/* The filter is given no context: keys are opened through a detached one (DB 0). */
static RedisModuleCtx *detached;

static void peek_filter(RedisModuleCommandFilterCtx *f) {
    if (RedisModule_CommandFilterArgsCount(f) != 2) return;
    size_t len;
    const char *name = RedisModule_StringPtrLen(RedisModule_CommandFilterArgGet(f, 0), &len);
    if (len != 3 || strncasecmp(name, "get", 3) != 0) return;
    RedisModuleString *key = (RedisModuleString *)RedisModule_CommandFilterArgGet(f, 1);
    const char *k = RedisModule_StringPtrLen(key, &len);
    if (len <= 5 || memcmp(k, "todo:", 5) != 0) return;
    RedisModuleKey *open = RedisModule_OpenKey(detached, key, PEEK);
    RedisModule_CloseKey(open);
}

static int floor_get(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 2) return RedisModule_WrongArity(ctx);
    RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ);
    if (!key) return RedisModule_ReplyWithNull(ctx);
    size_t len;
    char *buf = RedisModule_StringDMA(key, &len, REDISMODULE_READ);
    RedisModule_ReplyWithStringBuffer(ctx, buf, len);
    RedisModule_CloseKey(key);
    return REDISMODULE_OK;
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (RedisModule_Init(ctx, "floor", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR) return REDISMODULE_ERR;
    detached = RedisModule_GetDetachedThreadSafeContext(ctx);
    const char *mode = argc > 0 ? RedisModule_StringPtrLen(argv[0], NULL) : "empty";
    RedisModuleCommandFilterFunc f = strcmp(mode, "peek") == 0 ? peek_filter : empty_filter;
    if (!RedisModule_RegisterCommandFilter(ctx, f, REDISMODULE_CMDFILTER_NOSELF)) return REDISMODULE_ERR;
    return RedisModule_CreateCommand(ctx, "floor.get", floor_get, "readonly fast", 1, 1, 1);
}
