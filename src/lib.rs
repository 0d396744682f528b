//! redis-readthrough: a Redis module that makes Redis a read-through cache in front of MongoDB.
//!
//! This file only registers things with Redis: commands, configs, server events, init and
//! deinit. The layers, imports running one way down this list (see the README's design
//! section):
//! - `core`: pure (mapping, codec, policies, single-flight table, negative cache,
//!   invalidation decisions, errors), no global state;
//! - `state`: the process-wide state every layer above reads (settings in force, counters,
//!   the `_id` index, pending redactions, fault injection, the random source);
//! - `mongo`: the MongoDB side (runtime, client, queries, shared queries), no Redis;
//! - `redis`: the Redis side (every `unsafe`, blocking, the lock, registration, hooks);
//! - `engine`: loads, the store step, change streams, warm-up;
//! - `commands`: argument parsing and replies.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod commands;
mod core;
mod engine;
mod mongo;
mod redis;
mod state;

pub use crate::core::fuzzing;

use crate::redis::{acl, callbacks, configs, events, keys, transparent_hooks};
use crate::state::{fault, random};
use redis_module::{redis_module, Context, RedisString, Status};

/// A registration with Redis, and what the log says if Redis refuses it.
type Step = (fn(&Context) -> bool, &'static str);

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    // Redis loads a module on its main thread.
    let mt = redis::main_thread::MainThread::mark();
    fault::arm_from_env();
    // The engine's callbacks first: the configs applied below already tell it their values.
    callbacks::set(engine::callbacks());
    // Configs next: a bad value in redis.conf or MODULE LOADEX fails the load here.
    if let Err(e) = configs::register(ctx) {
        ctx.log_warning(&format!("readthrough: {e}"));
        return Status::Err;
    }
    let started = mongo::runtime::start_runtime().and_then(|_| engine::store::start_thread());
    if let Err(e) = started {
        ctx.log_warning(&format!("readthrough: {e}"));
        return Status::Err;
    }
    redis::keys::init_filter_ctx(ctx);
    if !redis::event_loop::init(ctx) {
        ctx.log_notice(
            "readthrough: this server has no event-loop API for modules: inline loads off",
        );
    }
    // Before the inline connection is opened: nothing else makes an epoll fd meanwhile.
    engine::load::main_driver::start(mt);
    engine::load::inline::connect(mt);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    random::seed(now.map(|d| d.as_nanos() as u64).unwrap_or(0));
    let steps: [Step; 7] = [
        (commands::register, "register the commands"),
        (acl::init, "make a context for the ACL checks"),
        (
            transparent_hooks::register,
            "register the command filter or the key-miss hook",
        ),
        (events::subscribe_flush, "subscribe to flush events"),
        (events::subscribe_cron, "subscribe to cron events"),
        (events::register_info, "register the INFO section"),
        (
            events::subscribe_role,
            "subscribe to replication role changes",
        ),
    ];
    for (step, what) in steps {
        if !step(ctx) {
            ctx.log_warning(&format!("readthrough: cannot {what}"));
            return Status::Err;
        }
    }
    let cluster = keys::is_cluster(ctx);
    if cluster && !redis::cluster_bus::register(ctx) {
        ctx.log_warning("readthrough: cannot register for cluster bus messages");
        return Status::Err;
    }
    engine::changes::set_node(databases(ctx), cluster);
    engine::changes::start();
    engine::warm::on_load();
    let from = redis::mongo_uri::file_in_force()
        .map(|path| format!(" (from {path})"))
        .unwrap_or_default();
    ctx.log_notice(&format!(
        "readthrough: loaded; MongoDB at {}{from}",
        mongo::client::uri_for_display()
    ));
    Status::Ok
}

/// The `databases` setting: change-stream invalidation covers every DB.
fn databases(ctx: &Context) -> i64 {
    let reply = ctx.call("CONFIG", &["GET", "databases"]);
    if let Ok(redis_module::RedisValue::Array(a)) = reply {
        if let Some(
            redis_module::RedisValue::SimpleString(n) | redis_module::RedisValue::BulkString(n),
        ) = a.get(1)
        {
            return n.parse().unwrap_or(16);
        }
    }
    16
}

/// Unloading would unmap code that the loader threads are running: refuse it.
fn deinit(ctx: &Context) -> Status {
    ctx.log_warning(
        "readthrough: MODULE UNLOAD is not supported (background threads are running); \
         restart Redis without the module instead",
    );
    Status::Err
}

redis_module! {
    name: "readthrough",
    version: 1,
    allocator: (std::alloc::System, std::alloc::System),
    data_types: [],
    init: init,
    deinit: deinit,
}
