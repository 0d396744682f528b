//! MongoDB for the tests: the embedded SecantusDB or an external server, and the shared test
//! data.

use super::{free_port, port_open, root, temp_dir, unique_db, wait_until, Proc};
use mongodb::bson::{doc, Document};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn external_mongo() -> Option<String> {
    std::env::var("READTHROUGH_TEST_MONGO_URI")
        .ok()
        .filter(|s| !s.is_empty())
}

pub struct Mongo {
    pub uri: String,
    pub port: u16,
    pub dir: PathBuf,
    /// Extra server flags for the next `start` (TLS, auth).
    pub extra: Vec<String>,
    proc: Option<Proc>,
    client: OnceLock<mongodb::Client>,
}

impl Mongo {
    /// The server shared by the tests of this binary.
    pub fn shared() -> &'static Mongo {
        static M: OnceLock<Mongo> = OnceLock::new();
        M.get_or_init(|| match external_mongo() {
            Some(uri) => Mongo {
                uri,
                port: 0,
                dir: PathBuf::new(),
                extra: Vec::new(),
                proc: None,
                client: OnceLock::new(),
            },
            None => Mongo::embedded("mongo-shared", &[]),
        })
    }

    /// A server of the test's own, which it may stop, stall and restart. `None` when the tests
    /// run against an external MongoDB (those tests are then skipped).
    pub fn dedicated(name: &str) -> Option<Mongo> {
        Mongo::dedicated_with(name, &[])
    }

    /// A server no other test writes to meanwhile: the embedded SecantusDB starts a change
    /// stream opened "now" after the oldest write in flight anywhere on the server, so on the
    /// shared one another test's write can put this test's seeding inside a new watcher's
    /// stream. An external MongoDB is used as it is.
    pub fn quiet(name: &str) -> Quiet {
        match external_mongo() {
            Some(_) => Quiet::Shared(Mongo::shared()),
            None => Quiet::Own(Box::new(Mongo::embedded(name, &[]))),
        }
    }

    /// A dedicated server with MongoDB's test commands on (`configureFailPoint`, see
    /// `fail_command`). `None` with an external MongoDB.
    pub fn with_test_commands(name: &str) -> Option<Mongo> {
        Mongo::dedicated_with(name, &["--enable-test-commands"])
    }

    fn dedicated_with(name: &str, extra: &[&str]) -> Option<Mongo> {
        if external_mongo().is_some() {
            super::skip(&format!(
                "{name} needs the embedded MongoDB-compatible server"
            ));
            return None;
        }
        Some(Mongo::embedded(name, extra))
    }

    fn embedded(name: &str, extra: &[&str]) -> Mongo {
        let dir = temp_dir(name);
        let port = free_port();
        let mut m = Mongo {
            uri: format!("mongodb://127.0.0.1:{port}"),
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            proc: None,
            client: OnceLock::new(),
        };
        m.start();
        m
    }

    fn secantusd() -> String {
        std::env::var("SECANTUSD").unwrap_or_else(|_| {
            let p = root().join(".venv/bin/secantusd-py");
            assert!(
                p.exists(),
                "{} missing: run `make venv` (make test does)",
                p.display()
            );
            p.to_string_lossy().into_owned()
        })
    }

    /// Starts (or restarts) the embedded server on the same port and storage.
    pub fn start(&mut self) {
        let mut args = vec![
            "--port".into(),
            self.port.to_string(),
            "--storage-path".into(),
            self.dir.join("data").to_string_lossy().into_owned(),
            "--log-level".into(),
            "WARNING".into(),
        ];
        args.extend(self.extra.iter().cloned());
        self.proc = Some(Proc::spawn(&self.dir, "mongo", &Self::secantusd(), &args));
        let port = self.port;
        wait_until(
            "MongoDB to accept connections",
            Duration::from_secs(60),
            || port_open(port),
        );
    }

    pub fn stop(&mut self) {
        if let Some(client) = self.client.take() {
            rt().block_on(async move { client.shutdown().await });
        }
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        let port = self.port;
        wait_until("MongoDB to stop", Duration::from_secs(30), || {
            !port_open(port)
        });
    }

    /// For a failure message: the server's pid and state, and who listens on and talks to its
    /// port (which process answered, if a stalled server seems to answer).
    pub fn describe(&self) -> String {
        let (pid, state) = match &self.proc {
            Some(p) => (
                p.pid.to_string(),
                format!("{:?}, threads {:?}", p.state(), p.thread_states()),
            ),
            None => ("none".into(), "-".into()),
        };
        let ss = Command::new("ss")
            .args([
                "-tanp",
                &format!("( sport = :{0} or dport = :{0} )", self.port),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("(ss: {e})"));
        format!("MongoDB {} pid {pid} state {state}\n{ss}", self.uri)
    }

    pub fn client(&self) -> mongodb::Client {
        self.client
            .get_or_init(|| {
                rt().block_on(mongodb::Client::with_uri_str(&self.uri))
                    .unwrap()
            })
            .clone()
    }

    pub fn insert(&self, db: &str, coll: &str, docs: Vec<Document>) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.insert_many(docs).await }).unwrap();
    }

    pub fn create_index(&self, db: &str, coll: &str, field: &str) {
        let c = self.client().database(db).collection::<Document>(coll);
        let model = mongodb::IndexModel::builder()
            .keys(doc! { field: 1 })
            .build();
        rt().block_on(async { c.create_index(model).await })
            .unwrap();
    }

    pub fn update_one(&self, db: &str, coll: &str, filter: Document, update: Document) {
        let c = self.client().database(db).collection::<Document>(coll);
        let r = rt()
            .block_on(async { c.update_one(filter, update).await })
            .unwrap();
        assert_eq!(r.matched_count, 1, "update matched nothing");
    }

    pub fn replace_one(&self, db: &str, coll: &str, filter: Document, with: Document) {
        let c = self.client().database(db).collection::<Document>(coll);
        let r = rt()
            .block_on(async { c.replace_one(filter, with).await })
            .unwrap();
        assert_eq!(r.matched_count, 1, "replace matched nothing");
    }

    pub fn delete_one(&self, db: &str, coll: &str, filter: Document) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.delete_one(filter).await }).unwrap();
    }

    /// The cursors open on the server (`serverStatus`: `metrics.cursor.open.total`), change
    /// streams included.
    pub fn open_cursors(&self) -> i64 {
        let status = self.command("admin", doc! {"serverStatus": 1});
        let open = status
            .get_document("metrics")
            .and_then(|m| m.get_document("cursor"))
            .and_then(|c| c.get_document("open"))
            .unwrap_or_else(|e| panic!("serverStatus has no open cursor count: {e}"));
        match open.get("total") {
            Some(mongodb::bson::Bson::Int32(n)) => *n as i64,
            Some(mongodb::bson::Bson::Int64(n)) => *n,
            other => panic!("serverStatus open cursors: {other:?}"),
        }
    }

    pub fn command(&self, db: &str, cmd: Document) -> Document {
        let db = self.client().database(db);
        rt().block_on(async { db.run_command(cmd).await }).unwrap()
    }

    /// Arms MongoDB's `failCommand` fail point: the next `times` commands named in `commands`
    /// fail as `data` says (`errorCode`, `closeConnection`, `blockConnection`/`blockTimeMS`).
    /// Needs `with_test_commands`.
    pub fn fail_command(&self, commands: &[&str], times: i32, data: Document) {
        let mut d = doc! { "failCommands": commands };
        d.extend(data);
        self.command(
            "admin",
            doc! { "configureFailPoint": "failCommand", "mode": { "times": times }, "data": d },
        );
    }

    /// Holds the next `times` `find`s for `ms` before MongoDB runs them (`failCommand`
    /// `blockConnection`): a load kept in flight, without a signal. Needs `with_test_commands`.
    pub fn hold_finds(&self, times: i32, ms: i32) {
        self.fail_command(
            &["find"],
            times,
            doc! {"blockConnection": true, "blockTimeMS": ms},
        );
    }

    /// Turns `failCommand` off.
    pub fn fail_command_off(&self) {
        self.command(
            "admin",
            doc! { "configureFailPoint": "failCommand", "mode": "off" },
        );
    }

    pub fn drop_collection(&self, db: &str, coll: &str) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.drop().await }).unwrap();
    }

    /// `opcounters.query` from serverStatus.
    pub fn query_count(&self) -> i64 {
        let db = self.client().database("admin");
        let st = rt()
            .block_on(async {
                db.run_command(mongodb::bson::doc! {"serverStatus": 1})
                    .await
            })
            .unwrap();
        let q = st.get_document("opcounters").unwrap().get("query").unwrap();
        q.as_i64().or_else(|| q.as_i32().map(i64::from)).unwrap()
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        // Close the test's own connections first: the server may wait for them on shutdown.
        if let Some(c) = self.client.take() {
            rt().block_on(async move { c.shutdown().await });
        }
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

/// A fresh database with todos `{id: "1".."n"}` and an `items` collection keyed by `_id`.
/// What `Mongo::quiet` gives: a server of the test's own, or the external one.
pub enum Quiet {
    Own(Box<Mongo>),
    Shared(&'static Mongo),
}

impl std::ops::Deref for Quiet {
    type Target = Mongo;
    fn deref(&self) -> &Mongo {
        match self {
            Quiet::Own(m) => m,
            Quiet::Shared(m) => m,
        }
    }
}

pub fn seed(mongo: &Mongo, name: &str, n: usize) -> String {
    let db = unique_db(name);
    let todos: Vec<Document> = (1..=n)
        .map(|i| doc! { "id": i.to_string(), "name": format!("todo {i}"), "description": "d" })
        .collect();
    mongo.insert(&db, "todos", todos);
    mongo.create_index(&db, "todos", "id");
    db
}

pub fn mappings(db: &str) -> String {
    format!("todo:={db}.todos:id item:={db}.items")
}
