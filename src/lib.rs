//! redis-readthrough: a Redis module that makes Redis a read-through cache in front of MongoDB.
//!
//! This file only registers things with Redis: commands, configs, init and deinit. See the
//! README's design section for the flow of one request.

mod batch;
pub mod cdc;
pub mod codec;
mod commands;
pub mod config;
pub mod deadline;
pub mod error;
mod ffi;
pub mod filter;
pub mod fuzzing;
pub mod inflight;
mod load;
mod loader;
pub mod mapping;
pub mod negative;
pub mod policy;
pub mod redact;
mod stats;
mod store;
pub mod unanswered;
mod warm;

use redis_module::{redis_module, Context, RedisString, Status};

/// A registration with Redis, and what the log says if Redis refuses it.
type Step = (fn(&Context) -> bool, &'static str);

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    // Configs first: a bad value in redis.conf or MODULE LOADEX fails the load here.
    if let Err(e) = config::register(ctx) {
        ctx.log_warning(&format!("readthrough: {e}"));
        return Status::Err;
    }
    let started = loader::start_runtime().and_then(|_| store::start_thread());
    if let Err(e) = started {
        ctx.log_warning(&format!("readthrough: {e}"));
        return Status::Err;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    policy::seed(now.map(|d| d.as_nanos() as u64).unwrap_or(0));
    let steps: [Step; 5] = [
        (commands::register, "register the commands"),
        (
            ffi::register_transparent,
            "register the command filter or the key-miss hook",
        ),
        (ffi::subscribe_flush, "subscribe to flush events"),
        (ffi::register_info, "register the INFO section"),
        (ffi::subscribe_role, "subscribe to replication role changes"),
    ];
    for (step, what) in steps {
        if !step(ctx) {
            ctx.log_warning(&format!("readthrough: cannot {what}"));
            return Status::Err;
        }
    }
    cdc::set_databases(databases(ctx));
    if is_cluster(ctx) {
        cdc::set_cluster();
    }
    cdc::start();
    warm::on_load();
    ctx.log_notice(&format!(
        "readthrough: loaded; MongoDB at {}",
        loader::uri_for_display()
    ));
    Status::Ok
}

/// The `databases` setting: change-stream invalidation covers every DB. Redis Cluster has DB 0
/// only.
fn databases(ctx: &Context) -> i64 {
    if ctx
        .get_flags()
        .contains(redis_module::ContextFlags::CLUSTER)
    {
        cdc::set_cluster();
        return 1;
    }
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

fn is_cluster(ctx: &Context) -> bool {
    ctx.get_flags()
        .contains(redis_module::ContextFlags::CLUSTER)
}
