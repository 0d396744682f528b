//! MongoDB's own faults, made on demand by its `failCommand` fail point (SecantusDB with
//! `--enable-test-commands`): no signals, no timing luck. Each fault is met by every read path,
//! and each must answer what the README's Errors section says, the same on every path:
//! - an inline `RT.GET` (Redis's main thread sends the query itself),
//! - an `RT.GET` through the driver (`readthrough.inline-loads no`),
//! - an `RT.MGET` of two cold keys (one `$in` query through the driver),
//! - a transparent `GET` (inline, as a lone miss is);
//! - an `RT.GET` through the driver on Redis's main thread (a URI the inline connection does not
//!   serve: here a read preference);
//! - and 16 `RT.GET`s of cold keys sent at once (a miss under load).
//!
//! Then the fault is cleared, and the next miss on that path must succeed within a second.

mod common;

use common::*;
use mongodb::bson::{doc, Document};
use std::time::{Duration, Instant};

/// `readthrough.timeout` of both servers: long enough for the driver's one retry after a
/// step-down (it waits for its monitor, 500 ms), short enough to keep the test quick.
const TIMEOUT_MS: u64 = 1500;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The document: the driver retried once and MongoDB answered.
    Found,
    /// `BACKEND`, with this in its message.
    Backend(&'static str),
    /// `TIMEOUT` at `readthrough.timeout`.
    Timeout,
}

struct Fault {
    name: &'static str,
    /// How many `find`s in a row fail.
    times: i32,
    data: Document,
    expect: Expect,
}

fn faults() -> Vec<Fault> {
    let code = |c: i32| doc! { "errorCode": c };
    vec![
        Fault {
            name: "closeConnection once",
            times: 1,
            data: doc! { "closeConnection": true },
            expect: Expect::Found,
        },
        Fault {
            name: "closeConnection three times",
            times: 3,
            data: doc! { "closeConnection": true },
            expect: Expect::Backend(""),
        },
        Fault {
            name: "NotWritablePrimary (10107) once",
            times: 1,
            data: code(10107),
            expect: Expect::Found,
        },
        Fault {
            name: "ShutdownInProgress (91) once",
            times: 1,
            data: code(91),
            expect: Expect::Found,
        },
        Fault {
            name: "HostUnreachable (6) once",
            times: 1,
            data: code(6),
            expect: Expect::Found,
        },
        Fault {
            name: "Unauthorized (13) once",
            times: 1,
            data: code(13),
            expect: Expect::Backend("Command failed: Error code 13 (Unauthorized)"),
        },
        Fault {
            // Every query blocked for 3 s, twice in a row: a stalled server, also for the
            // driver's query after an inline one was handed over at half the deadline.
            name: "blockConnection 3 s, twice",
            times: 2,
            data: doc! { "blockConnection": true, "blockTimeMS": 3000 },
            expect: Expect::Timeout,
        },
    ]
}

#[derive(Debug, Clone, Copy)]
enum Path {
    Inline,
    Driver,
    Mget,
    TransparentGet,
    MainThreadDriver,
}

/// A server reading `db` on `mongo` at `readthrough.timeout` `TIMEOUT_MS`, with inline loads
/// `inline` (`yes`/`no`) and no change streams (their `aggregate`s would meet the fail point).
fn server(mongo: &Mongo, db: &str, inline: &str) -> Redis {
    server_on(&mongo.uri, db, inline)
}

/// `server` with the URI `uri`.
fn server_on(uri: &str, db: &str, inline: &str) -> Redis {
    Redis::with(uri, &mappings(db))
        .config("timeout", TIMEOUT_MS)
        .config("inline-loads", inline)
        .config("invalidation", "off")
        .start()
}

/// What one read answered: found, or the error text.
fn read(c: &mut redis::Connection, path: Path, id: u32) -> Result<bool, String> {
    let key = format!("todo:{id}");
    let r: redis::RedisResult<bool> = match path {
        Path::Inline | Path::Driver | Path::MainThreadDriver => {
            rt_get(c, &key).map(|v| v.is_some())
        }
        Path::TransparentGet => redis::cmd("GET")
            .arg(&key)
            .query::<Option<String>>(c)
            .map(|v| v.is_some()),
        Path::Mget => redis::cmd("RT.MGET")
            .arg(&key)
            .arg(format!("todo:{}", id + 1))
            .query::<Vec<Option<String>>>(c)
            .map(|v| v.iter().all(Option::is_some)),
    };
    r.map_err(|e| err_of::<()>(Err(e)))
}

/// Whether a read that met `expect`'s fault answered as the README's Errors section says, and
/// by when: `BACKEND` before the deadline, `TIMEOUT` at it.
fn answered_as_expected(
    expect: Expect,
    got: &Result<bool, String>,
    took: Duration,
) -> Result<(), String> {
    let error = got.as_ref().err().cloned().unwrap_or_default();
    let ok = match expect {
        Expect::Found => *got == Ok(true),
        Expect::Backend(text) => {
            error.starts_with("BACKEND")
                && error.contains(text)
                && took < Duration::from_millis(TIMEOUT_MS)
        }
        Expect::Timeout => {
            error.starts_with(&format!(
                "TIMEOUT loading from MongoDB took longer than {TIMEOUT_MS} ms"
            )) && (TIMEOUT_MS - 50..TIMEOUT_MS + 700).contains(&(took.as_millis() as u64))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {got:?} after {took:?}"))
    }
}

/// Reads on `path` until one succeeds, at most 5 s after `cleared`: how long after the fault
/// was cleared the path served again.
fn time_to_recover(
    c: &mut redis::Connection,
    path: Path,
    ids: &mut impl Iterator<Item = u32>,
) -> Result<Duration, String> {
    let cleared = Instant::now();
    loop {
        let got = read(c, path, ids.next().unwrap());
        if got == Ok(true) || cleared.elapsed() > Duration::from_secs(5) {
            return got.map(|_| cleared.elapsed());
        }
    }
}

#[test]
fn faults_of_mongodb_answer_the_same_on_every_path_and_the_next_miss_succeeds() {
    let Some(mongo) = Mongo::with_test_commands("mongo-fail-command") else {
        return;
    };
    let db = seed(&mongo, "failcmd", 2000);
    let inline = server(&mongo, &db, "yes");
    let driver = server(&mongo, &db, "no");
    // An explicit read preference is for the driver: lone misses run it on the main thread.
    let sep = if mongo.uri.contains('?') { '&' } else { '?' };
    let main = server_on(
        &format!("{}{sep}readPreference=primary", mongo.uri),
        &db,
        "yes",
    );
    let (mut ci, mut cd, mut cm) = (inline.conn(), driver.conn(), main.conn());
    let mut ids = (1..2000).step_by(2);
    // The inline connection is opened in the background at load: wait for the first inline load.
    wait_until("a miss loaded inline", Duration::from_secs(30), || {
        assert_eq!(read(&mut ci, Path::Inline, ids.next().unwrap()), Ok(true));
        inline.info()["inline_loads"] >= 1
    });
    assert_eq!(read(&mut cd, Path::Driver, ids.next().unwrap()), Ok(true));

    let mut table = Vec::new();
    // Each fault's answer on the first path, which every other path must give word for word.
    let mut first: Option<String> = None;
    for fault in faults() {
        for path in [
            Path::Inline,
            Path::Driver,
            Path::Mget,
            Path::TransparentGet,
            Path::MainThreadDriver,
        ] {
            let (redis, c) = match path {
                Path::Driver | Path::Mget => (&driver, &mut cd),
                Path::Inline | Path::TransparentGet => (&inline, &mut ci),
                Path::MainThreadDriver => (&main, &mut cm),
            };
            if matches!(path, Path::MainThreadDriver) {
                // Its client is made at the first miss (which the loader thread serves).
                wait_until(
                    "the driver on the main thread",
                    Duration::from_secs(10),
                    || {
                        let before = redis.info()["main_thread_driver_loads"];
                        assert_eq!(read(c, path, ids.next().unwrap()), Ok(true));
                        redis.info()["main_thread_driver_loads"] > before
                    },
                );
            }
            let on_main = redis.info()["main_thread_driver_loads"];
            if matches!(path, Path::Inline | Path::TransparentGet) {
                // The lone miss goes inline only on an open connection: one earlier fault may
                // have dropped it (it comes back within a second).
                wait_until("the inline connection", Duration::from_secs(10), || {
                    let before = redis.info()["inline_loads"];
                    assert_eq!(read(c, Path::Inline, ids.next().unwrap()), Ok(true));
                    redis.info()["inline_loads"] > before
                });
            }
            mongo.fail_command(&["find"], fault.times, fault.data.clone());
            let id = ids.next().unwrap();
            let start = Instant::now();
            let got = read(c, path, id);
            let took = start.elapsed();
            mongo.fail_command_off();
            if matches!(path, Path::MainThreadDriver) {
                assert_eq!(
                    redis.info()["main_thread_driver_loads"],
                    on_main + 1,
                    "{} met on the main thread",
                    fault.name
                );
            }
            let context = || {
                format!(
                    "{} on {path:?}: {got:?} after {took:?}\nINFO {:?}\nlog:\n{}",
                    fault.name,
                    redis.info(),
                    redis.log()
                )
            };
            if let Err(why) = answered_as_expected(fault.expect, &got, took) {
                panic!("{why}\n{}", context());
            }
            let said = got.clone().err().unwrap_or_else(|| "found".into());
            let said = said.replace("1500 ms", "");
            match &first {
                None => first = Some(said),
                Some(f) => assert_eq!(&said, f, "the same words on every path: {}", context()),
            }
            // The fault is cleared: the next miss on this path succeeds within a second.
            let recovered = time_to_recover(c, path, &mut ids);
            let recovery = recovered.unwrap_or_else(|e| panic!("{e}\n{}", context()));
            assert!(
                recovery < Duration::from_secs(1),
                "{recovery:?}\n{}",
                context()
            );
            table.push(format!(
                "{:<34} {path:<15?} {:<60} {took:>9.1?} recovered in {recovery:.1?}",
                fault.name,
                match &got {
                    Ok(_) => "found".to_owned(),
                    Err(e) => e.chars().take(60).collect(),
                }
            ));
        }
        first = None;
    }
    // The table for the README and the closing note.
    eprintln!("{}", table.join("\n"));
    // The inline path handed the retryable faults to the driver, and said so.
    let info = inline.info();
    assert!(info["inline_handoffs"] >= 4, "{info:?}");
    let log = inline.log();
    assert!(
        log.contains(
            "inline loads: connection dropped (MongoDB answered: Command failed: Error code 10107"
        ),
        "{log}"
    );
    assert!(
        log.contains("no answer by half the deadline; the driver takes the load"),
        "{log}"
    );
    assert_eq!(driver.info()["inline_loads"], 0);
    assert_eq!(driver.info()["main_thread_driver_loads"], 0);
    assert_eq!(main.info()["inline_loads"], 0);
}

/// Misses met by a fault all at once.
const AT_ONCE: u32 = 16;

/// The same faults met by many misses at once: 16 clients each send an `RT.GET` of a cold key of
/// its own together (one may go inline, four run their own query, the rest queue and share
/// one), and each answers as the lone miss does. A fault that fails more `find`s than the
/// driver retries (`times` above 1) fails every `find` here, so that each miss meets it as a
/// lone miss does: the misses queued behind a query that failed after the driver's retry get
/// its error at once, not a `TIMEOUT` of their own late query. A fault of one `find` fails one
/// query: the driver retries it (all found), or, for `Unauthorized`, that one miss answers
/// `BACKEND` and the others are found. Then the fault is cleared and the next miss succeeds
/// within a second.
#[test]
fn faults_met_by_many_misses_at_once_answer_each_as_a_lone_miss_does() {
    let Some(mongo) = Mongo::with_test_commands("mongo-fail-at-once") else {
        return;
    };
    let db = seed(&mongo, "failatonce", 1000);
    // Inline loads on (the default): the first miss may take them, the rest the driver.
    let redis = server(&mongo, &db, "yes");
    let mut conns: Vec<redis::Connection> = (0..AT_ONCE).map(|_| redis.conn()).collect();
    let mut ids = 1..1000;
    // The driver has connected.
    wait_until("a first miss", Duration::from_secs(30), || {
        read(&mut conns[0], Path::Driver, ids.next().unwrap()) == Ok(true)
    });
    let mut table = Vec::new();
    for fault in faults() {
        let times = if fault.times == 1 { 1 } else { 1_000_000 };
        mongo.fail_command(&["find"], times, fault.data.clone());
        let firsts: Vec<u32> = ids.by_ref().take(AT_ONCE as usize).collect();
        let barrier = std::sync::Barrier::new(AT_ONCE as usize);
        let answers: Vec<(Result<bool, String>, Duration)> = std::thread::scope(|s| {
            let running: Vec<_> = conns
                .iter_mut()
                .zip(&firsts)
                .map(|(c, &id)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let start = Instant::now();
                        (read(c, Path::Driver, id), start.elapsed())
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        mongo.fail_command_off();
        let context = || {
            format!(
                "{}: {answers:?}\nINFO {:?}\nlog:\n{}",
                fault.name,
                redis.info(),
                redis.log()
            )
        };
        if times == 1 && fault.expect != Expect::Found {
            // One `find` fails and the driver does not retry it: the miss whose query met it
            // answers as the lone miss, every other one is found.
            let met: Vec<_> = answers
                .iter()
                .filter(|(got, took)| answered_as_expected(fault.expect, got, *took).is_ok())
                .collect();
            assert_eq!(met.len(), 1, "{}", context());
            let found = answers.iter().filter(|(got, _)| *got == Ok(true)).count();
            assert_eq!(found, answers.len() - 1, "{}", context());
        } else {
            for (got, took) in &answers {
                if let Err(why) = answered_as_expected(fault.expect, got, *took) {
                    panic!("{why}\n{}", context());
                }
            }
        }
        let recovered = time_to_recover(&mut conns[0], Path::Driver, &mut ids);
        let recovery = recovered.unwrap_or_else(|e| panic!("{e}\n{}", context()));
        assert!(
            recovery < Duration::from_secs(1),
            "{recovery:?}\n{}",
            context()
        );
        let slowest = answers.iter().map(|a| a.1).max().unwrap_or_default();
        table.push(format!(
            "{:<34} {:<60} slowest {slowest:>9.1?} recovered in {recovery:.1?}",
            fault.name,
            answers
                .iter()
                .find_map(|(got, _)| got.as_ref().err())
                .map_or("found".to_owned(), |e| e.chars().take(60).collect())
        ));
    }
    eprintln!("{}", table.join("\n"));
}

/// A MongoDB of its own with `failCommand`, a seeded database and a server watching its one
/// mapped collection (`todo:`), after one event, so a resume token is saved and a reopened stream
/// resumes from it. One collection, so one watcher: two watchers opening at once would share the
/// fail point's failures, one each, and the driver's one retry would hide both.
fn watched_with_a_token(mongo_name: &str, db_name: &str) -> Option<(Mongo, String, Redis)> {
    let mongo = Mongo::with_test_commands(mongo_name)?;
    let db = seed(&mongo, db_name, 40);
    let redis = Redis::with(&mongo.uri, &format!("todo:={db}.todos:id"))
        .watching()
        .start();
    let mut c = redis.conn();
    rt_get(&mut c, "todo:1").unwrap().unwrap();
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "1"},
        doc! {"$set": {"name": "one"}},
    );
    wait_until("the first event", Duration::from_secs(5), || {
        stored(&mut c, "todo:1").is_none()
    });
    Some((mongo, db, redis))
}

/// One round of a change-stream fault: two keys cached, `arm` makes the fault, a change is made
/// to one of them (`then` runs after it). The change must reach Redis, the module must meet the
/// fault (its log says `said`, where given), the other key must not be purged and no resume may
/// fail. The fault point is off at the end, and the watcher watching again.
struct Round<'a> {
    mongo: &'a Mongo,
    db: &'a str,
    redis: &'a Redis,
    round: usize,
    name: &'a str,
    said: Option<&'a str>,
}

impl Round<'_> {
    fn run(
        &self,
        c: &mut redis::Connection,
        arm: impl FnOnce(),
        then: impl FnOnce(&mut redis::Connection),
    ) {
        let (name, redis) = (self.name, self.redis);
        let (kept, changed) = (
            format!("todo:{}", 10 + self.round),
            format!("todo:{}", 20 + self.round),
        );
        rt_get(c, &kept).unwrap().unwrap();
        rt_get(c, &changed).unwrap().unwrap();
        let seen_before = self.said.map_or(0, |s| redis.log().matches(s).count());
        arm();
        let id = changed.trim_start_matches("todo:");
        self.mongo.update_one(
            self.db,
            "todos",
            doc! {"id": id},
            doc! {"$set": {"name": format!("after {name}")}},
        );
        then(c);
        // The event may come in a read sent before the fault was armed: wait for both.
        if let Some(s) = self.said {
            wait_until(
                &format!("{name}: the module to meet the fault"),
                Duration::from_secs(10),
                || redis.log().matches(s).count() > seen_before,
            );
        }
        wait_until(
            &format!("{name}: the event made during the fault"),
            Duration::from_secs(10),
            || stored(c, &changed).is_none(),
        );
        assert_eq!(
            name_of(&rt_get(c, &changed).unwrap()).as_deref(),
            Some(format!("after {name}").as_str())
        );
        assert!(
            stored(c, &kept).is_some(),
            "{name}: {kept} was purged\n{}",
            redis.log()
        );
        assert_eq!(redis.info()["cdc_resume_failures"], 0, "{name}");
        self.mongo.fail_command_off();
        redis.wait_watching();
    }
}

#[test]
fn a_change_stream_reopened_during_a_fault_resumes_from_its_token_with_no_purge() {
    let Some((mongo, db, redis)) = watched_with_a_token("mongo-fail-cdc", "failcdc") else {
        return;
    };
    let mut c = redis.conn();
    let faults = [
        (
            "closeConnection",
            doc! { "closeConnection": true },
            "I/O error",
        ),
        (
            "NotWritablePrimary",
            doc! { "errorCode": 10107 },
            "Error code 10107",
        ),
        (
            "ShutdownInProgress",
            doc! { "errorCode": 91 },
            "Error code 91",
        ),
    ];
    for (round, (name, data, said)) in faults.into_iter().enumerate() {
        // The stream's open and the driver's one retry of it fail, as during a step-down or a
        // restart; a change is made meanwhile. A change of `readthrough.invalidation` opens the
        // watcher's stream again, from its saved token (there and back: delete mode again). A
        // server passing through a step-down or a shutdown does not refuse the token: nothing
        // is purged, and the token is kept.
        let round = Round {
            mongo: &mongo,
            db: &db,
            redis: &redis,
            round,
            name,
            said: Some(said),
        };
        round.run(
            &mut c,
            || mongo.fail_command(&["aggregate"], 2, data),
            |c| {
                config_set(c, "readthrough.invalidation", "refresh");
                config_set(c, "readthrough.invalidation", "delete");
            },
        );
    }
}

#[test]
fn a_change_stream_whose_get_more_fails_resumes_and_loses_no_event() {
    let Some((mongo, db, redis)) = watched_with_a_token("mongo-fail-getmore", "failmore") else {
        return;
    };
    let mut c = redis.conn();
    // The open stream's next getMores fail. After a closed connection the driver resumes the
    // stream by itself; whether it also resumes after a step-down or a shutdown depends on the
    // server labelling the error resumable (SecantusDB's fail point does not), else the module
    // sees the error and reopens the stream from its saved token, as it does after BadValue,
    // which no server labels resumable. Either way no event may be lost.
    let faults = [
        ("closeConnection", doc! { "closeConnection": true }, None),
        ("NotWritablePrimary", doc! { "errorCode": 10107 }, None),
        ("ShutdownInProgress", doc! { "errorCode": 91 }, None),
        (
            "BadValue",
            doc! { "errorCode": 2 },
            Some("change stream lost (Command failed: Error code 2 (BadValue)"),
        ),
    ];
    for (round, (name, data, said)) in faults.into_iter().enumerate() {
        let round = Round {
            mongo: &mongo,
            db: &db,
            redis: &redis,
            round,
            name,
            said,
        };
        round.run(&mut c, || mongo.fail_command(&["getMore"], 2, data), |_| {});
    }
}
