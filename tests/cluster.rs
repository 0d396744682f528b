//! Redis Cluster on localhost, the module on each node, a cluster-aware client: three masters
//! for reads and key routing; six masters with replicas, and failovers, for the change
//! streams (one watcher per collection in the whole cluster, its events sent over the bus).
mod common;

use common::*;
use redis::cluster::ClusterClient;
use redis::Commands;
use std::process::Command;
use std::time::Duration;

struct Cluster {
    nodes: Vec<Redis>,
    /// Per node, in `with_bus_proxies`: the proxy the other nodes reach its bus through.
    proxies: Vec<CuttableProxy>,
}

impl Cluster {
    fn start(mongo_uri: &str, mappings: &str) -> Cluster {
        Cluster::with(3, 0, mongo_uri, mappings, &[])
    }

    /// `masters` masters with `replicas` replicas each; `args` for every node.
    fn with(
        masters: usize,
        replicas: usize,
        mongo_uri: &str,
        mappings: &str,
        args: &[&str],
    ) -> Cluster {
        Cluster::build(masters, replicas, mongo_uri, mappings, args, false)
    }

    /// As `with`, each node's bus reached by the others through a `CuttableProxy`.
    fn with_bus_proxies(masters: usize, mongo_uri: &str, mappings: &str, args: &[&str]) -> Cluster {
        Cluster::build(masters, 0, mongo_uri, mappings, args, true)
    }

    fn build(
        masters: usize,
        replicas: usize,
        mongo_uri: &str,
        mappings: &str,
        args: &[&str],
        proxied: bool,
    ) -> Cluster {
        let count = masters * (1 + replicas);
        let proxies: Vec<CuttableProxy> = (0..if proxied { count } else { 0 })
            .map(|_| CuttableProxy::start())
            .collect();
        let nodes: Vec<Redis> = (0..count)
            .map(|i| {
                let mut b = Redis::with(mongo_uri, mappings).cluster_node().args(args);
                if let Some(p) = proxies.get(i) {
                    b = b.args(&["--cluster-announce-bus-port", &p.port.to_string()]);
                }
                let n = b.start();
                if let Some(p) = proxies.get(i) {
                    p.set_upstream(n.port + 10000);
                }
                n
            })
            .collect();
        let mut args = vec![
            "60".to_string(),
            "redis-cli".into(),
            "--cluster".into(),
            "create".into(),
        ];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        let out = Command::new("timeout").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes, proxies };
        cluster.wait_ok();
        cluster
    }

    fn wait_ok(&self) {
        for n in self.live() {
            wait_until("cluster_state:ok", Duration::from_secs(60), || {
                n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
    }

    /// The nodes not killed.
    fn live(&self) -> impl Iterator<Item = &Redis> {
        self.nodes.iter().filter(|n| !n.cli(&["PING"]).is_empty())
    }

    fn masters(&self) -> Vec<&Redis> {
        self.live()
            .filter(|n| n.cli(&["ROLE"]).starts_with("master"))
            .collect()
    }

    /// The watcher line of collection `coll` on node `n`.
    fn watcher(n: &Redis, coll: &str) -> String {
        n.watchers()
            .into_iter()
            .find(|w| w.contains(&format!(".{coll},")))
            .unwrap_or_else(|| panic!("no watcher of {coll}: {:?}", n.watchers()))
    }

    /// Waits until exactly one master watches each of `colls` and every other master knows
    /// it as remote and has heard from it (a first message purges: nothing loaded before it
    /// stays); returns the watching master of each.
    fn wait_one_watcher_each(&self, colls: &[&str]) -> Vec<String> {
        let mut homes = Vec::new();
        wait_until(
            "one watcher per collection",
            Duration::from_secs(60),
            || {
                let masters = self.masters();
                homes = colls
                    .iter()
                    .filter_map(|c| {
                        let watching: Vec<&&Redis> = masters
                            .iter()
                            .filter(|n| Cluster::watcher(n, c).contains("state=watching"))
                            .collect();
                        let id =
                            (watching.len() == 1).then(|| watching[0].cli(&["CLUSTER", "MYID"]))?;
                        let rest_remote = masters.iter().all(|n| {
                            let w = Cluster::watcher(n, c);
                            w.contains("state=watching")
                                || (w.contains("state=remote")
                                    && w.contains(&format!("home={id}"))
                                    && !w.contains("seq=none"))
                        });
                        rest_remote.then_some(id)
                    })
                    .collect();
                homes.len() == colls.len()
            },
        );
        homes
    }

    fn by_id(&self, id: &str) -> &Redis {
        self.live()
            .find(|n| n.cli(&["CLUSTER", "MYID"]) == id)
            .unwrap()
    }

    /// The (first) replica of `master`.
    fn replica_of(&self, master: &Redis) -> &Redis {
        let id = master.cli(&["CLUSTER", "MYID"]);
        let mut line = String::new();
        wait_until("a replica", Duration::from_secs(30), || {
            line = master.cli(&["CLUSTER", "REPLICAS", &id]);
            !line.is_empty()
        });
        let port: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|a| a.split(['@', ':']).nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no replica of {id}: {line}"));
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    /// The master serving `key`.
    fn owner(&self, key: &str) -> &Redis {
        self.masters()
            .into_iter()
            .find(|n| !n.cli(&["RT.GET", key]).starts_with("MOVED"))
            .unwrap()
    }

    fn client(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> = self.nodes.iter().map(|n| n.url()).collect();
        ClusterClient::new(urls).unwrap().get_connection().unwrap()
    }

    fn dbsizes(&self) -> Vec<i64> {
        self.nodes
            .iter()
            .map(|n| redis::cmd("DBSIZE").query(&mut n.conn()).unwrap())
            .collect()
    }
}

#[test]
fn three_masters_read_through_for_keys_in_every_slot() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cluster", 300);
    let cluster = Cluster::start(
        &mongo.uri,
        &format!(
            "{} {{t}}:={db}.todos:id tk:={db}.todos:description,id",
            mappings(&db)
        ),
    );
    cluster.wait_one_watcher_each(&["todos"]);
    let mut c = cluster.client();

    // RT.GET and the transparent GET, routed by slot to the node that owns each key.
    for i in 1..=150 {
        let v: Option<String> = redis::cmd("RT.GET")
            .arg(format!("todo:{i}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(json(&v.unwrap())["id"], i.to_string());
    }
    for i in 151..=300 {
        let v: Option<String> = c.get(format!("todo:{i}")).unwrap();
        assert_eq!(json(&v.unwrap())["id"], i.to_string());
    }
    let absent: Option<String> = c.get("todo:999").unwrap();
    assert_eq!(absent, None);
    let sizes = cluster.dbsizes();
    eprintln!("keys per node: {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n > 50),
        "spread over the masters: {sizes:?}"
    );
    for (n, size) in cluster.nodes.iter().zip(&sizes) {
        let info = n.info();
        assert_eq!(info["stores"], *size, "each node stored what it loaded");
        assert_eq!(info["store_skipped"], 0);
    }

    // Keys of different slots in one RT.MGET: refused by Redis; a hash-tagged prefix keeps a
    // mapping in one slot, so RT.MGET of it works.
    let node = &cluster.nodes[0];
    let cross = node.cli(&["RT.MGET", "todo:1", "todo:2", "todo:3"]);
    assert!(cross.starts_with("CROSSSLOT"), "{cross}");
    // So does a compound key whose first part is a hash tag: one tenant's keys share a slot.
    for prefix in ["{t}:", "tk:{d}:"] {
        let key = |id: &str| format!("{prefix}{id}");
        let owner = cluster
            .nodes
            .iter()
            .find(|n| !n.cli(&["RT.GET", &key("1")]).starts_with("MOVED"))
            .unwrap();
        let got: Vec<Option<String>> = redis::cmd("RT.MGET")
            .arg(&[key("7"), key("8"), key("999")])
            .query(&mut owner.conn())
            .unwrap();
        assert_eq!(json(got[0].as_deref().unwrap())["id"], "7", "{prefix}");
        assert_eq!(json(got[1].as_deref().unwrap())["id"], "8", "{prefix}");
        assert_eq!(got[2], None, "{prefix}");
    }

    // A node that does not own a key redirects instead of loading it.
    let moved = cluster
        .nodes
        .iter()
        .map(|n| n.cli(&["RT.GET", "todo:42"]))
        .filter(|r| r.starts_with("MOVED"))
        .count();
    assert_eq!(moved, 2, "two of the three masters redirect");
}

#[test]
fn command_getkeys_is_right_for_every_module_command() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "getkeys", 1);
    let cluster = Cluster::start(&mongo.uri, &mappings(&db));
    let n = &cluster.nodes[0];
    let keys = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["COMMAND", "GETKEYS"];
        a.extend(args);
        n.cli(&a).lines().map(str::to_owned).collect()
    };
    assert_eq!(keys(&["RT.GET", "todo:1"]), ["todo:1"]);
    assert_eq!(
        keys(&["RT.MGET", "todo:1", "todo:2", "x"]),
        ["todo:1", "todo:2", "x"]
    );
    assert_eq!(keys(&["RT.REFRESH", "todo:1"]), ["todo:1"]);
    assert_eq!(keys(&["RT.INVALIDATE", "a", "b"]), ["a", "b"]);
    let warm = keys(&["RT.WARM", "todo:", "LIMIT", "5"]).join(" ");
    assert!(
        warm.contains("no key arguments"),
        "a prefix is not a key: {warm}"
    );
    // How the keys are used, for ACL key permissions: reads are read-only accesses.
    let info = n.cli(&[
        "COMMAND",
        "INFO",
        "RT.GET",
        "RT.MGET",
        "RT.REFRESH",
        "RT.INVALIDATE",
    ]);
    let flags: Vec<&str> = info
        .lines()
        .filter(|l| ["RO", "RW", "RM"].contains(l))
        .collect();
    assert_eq!(flags, ["RO", "RO", "RW", "RM"], "{info}");
}

#[test]
fn change_streams_and_warm_up_run_on_every_master_for_its_own_slots() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "clustercdc", 300);
    let cluster = Cluster::start(&mongo.uri, &mappings(&db));
    cluster.wait_one_watcher_each(&["todos", "items"]);
    for n in &cluster.nodes {
        let ok = n.cli(&["RT.WARM", "todo:"]);
        assert_eq!(ok, "OK");
    }
    for n in &cluster.nodes {
        wait_until("warm-up", Duration::from_secs(30), || {
            n.info_str("warm_0")
                .is_some_and(|w| w.contains("running=0"))
        });
    }
    // Each master stored the documents of its own slots: all 300 once, none twice.
    let sizes = cluster.dbsizes();
    let mut stored = 0;
    for (n, size) in cluster.nodes.iter().zip(&sizes) {
        let w = n.info_str("warm_0").unwrap();
        assert!(w.contains("loaded=300,") && !w.contains("error="), "{w}");
        let s: i64 = w
            .split(',')
            .find_map(|f| f.strip_prefix("stored="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(s, *size, "{w}");
        stored += s;
    }
    assert_eq!(stored, 300, "{sizes:?}");

    // An update in MongoDB reaches the node that holds the key, wherever its slot is.
    let mut c = cluster.client();
    for i in [1, 2, 3, 50, 150, 299] {
        mongo.update_one(
            &db,
            "todos",
            mongodb::bson::doc! {"id": i.to_string()},
            mongodb::bson::doc! {"$set": {"name": "changed"}},
        );
    }
    wait_until("the changes to be visible", Duration::from_secs(5), || {
        [1, 2, 3, 50, 150, 299].iter().all(|i| {
            let v: Option<String> = c.get(format!("todo:{i}")).unwrap();
            json(&v.unwrap())["name"] == "changed"
        })
    });
    // The collection's home saved its resume token in its home slot, no other master has
    // one, and nothing logged a failed write.
    let mut tokens = Vec::new();
    for n in &cluster.nodes {
        tokens.extend(
            n.cli(&["--scan", "--pattern", "__readthrough__:resume:*"])
                .lines()
                .map(str::to_owned),
        );
        assert!(!n.log().contains("could not write"), "{}", n.log());
    }
    assert_eq!(tokens, [format!("__readthrough__:resume:{{{db}.todos}}")]);

    // `refresh` mode: the new documents travel over the bus and are written in place on the
    // master of each key, with no load anywhere.
    for n in &cluster.nodes {
        config_set(&mut n.conn(), "readthrough.invalidation", "refresh");
    }
    cluster.wait_one_watcher_each(&["todos", "items"]);
    let loads =
        |cluster: &Cluster| -> i64 { cluster.nodes.iter().map(|n| n.info()["loads"]).sum() };
    let before = loads(&cluster);
    for i in [4, 5, 60, 160, 298] {
        rename(mongo, &db, i, "refreshed");
    }
    let direct = |i: usize| -> Option<String> {
        let key = format!("todo:{i}");
        let v: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query(&mut cluster.owner(&key).conn())
            .unwrap();
        Some(json(&v?)["name"].as_str()?.to_owned())
    };
    wait_until("the rewrites", Duration::from_secs(10), || {
        [4, 5, 60, 160, 298]
            .iter()
            .all(|&i| direct(i).as_deref() == Some("refreshed"))
    });
    assert_eq!(
        loads(&cluster),
        before,
        "rewritten in place, not loaded again"
    );
}

/// The name of todo `i` as read through the cluster.
fn name_in(c: &mut redis::cluster::ClusterConnection, i: usize) -> String {
    let v: Option<String> = c.get(format!("todo:{i}")).unwrap();
    json(&v.unwrap())["name"].as_str().unwrap().to_owned()
}

fn rename(mongo: &Mongo, db: &str, i: usize, name: &str) {
    mongo.update_one(
        db,
        "todos",
        mongodb::bson::doc! {"id": i.to_string()},
        mongodb::bson::doc! {"$set": {"name": name}},
    );
}

#[test]
fn six_masters_run_one_watcher_per_collection_and_send_each_master_its_keys() {
    let own = Mongo::dedicated("cluster-six");
    let mongo = own.as_ref().unwrap_or_else(|| Mongo::shared());
    let db = seed(mongo, "clustersix", 300);
    let cluster = Cluster::with(6, 1, &mongo.uri, &mappings(&db), &[]);
    let homes = cluster.wait_one_watcher_each(&["todos", "items"]);
    eprintln!("homes: {homes:?}");
    // MongoDB sees two change streams, not one per master and collection (twelve).
    if let Some(own) = &own {
        wait_until("two open cursors", Duration::from_secs(10), || {
            own.open_cursors() == 2
        });
    }
    // Replicas run none.
    for n in cluster.live() {
        if n.cli(&["ROLE"]).starts_with("slave") {
            let w = n.watchers();
            assert!(w.iter().all(|w| w.contains("state=replica")), "{w:?}");
        }
    }

    // Every todo cached on the master of its slot; 60 updates on keys all over the cluster
    // reach the master holding each.
    let mut c = cluster.client();
    for i in 1..=300 {
        assert_eq!(name_in(&mut c, i), format!("todo {i}"));
    }
    let changed: Vec<usize> = (1..=300).step_by(5).collect();
    for &i in &changed {
        rename(mongo, &db, i, "changed");
    }
    wait_until("every change visible", Duration::from_secs(10), || {
        changed.iter().all(|&i| name_in(&mut c, i) == "changed")
    });
    let unchanged = (1..=300).filter(|i| !changed.contains(i)).count();
    let cached: i64 = cluster.masters().iter().map(|n| n.info()["stores"]).sum();
    assert_eq!(
        cached,
        300 + changed.len() as i64,
        "each change reloaded once"
    );
    assert!(unchanged > 0);

    // A delete in MongoDB removes the key on its master and on that master's replica.
    let home = cluster.by_id(&homes[0]);
    let remote_key = (1..=300)
        .map(|i| format!("todo:{i}"))
        .find(|k| cluster.owner(k).port != home.port)
        .unwrap();
    let owner = cluster.owner(&remote_key);
    assert_eq!(owner.cli(&["EXISTS", &remote_key]), "1");
    let replica = cluster.replica_of(owner);
    wait_until("the replica has the key", Duration::from_secs(10), || {
        replica.cli(&["READONLY"]) == "OK"
            && replica
                .cli_stdin(&format!("READONLY\nEXISTS {remote_key}\n"))
                .ends_with('1')
    });
    let id = remote_key.trim_start_matches("todo:").to_owned();
    mongo.delete_one(&db, "todos", mongodb::bson::doc! {"id": &id});
    wait_until(
        "the delete on master and replica",
        Duration::from_secs(10),
        || {
            owner.cli(&["EXISTS", &remote_key]) == "0"
                && replica
                    .cli_stdin(&format!("READONLY\nEXISTS {remote_key}\n"))
                    .ends_with('0')
        },
    );

    // A dropped collection: every master removes its keys (a purge, sent to all of them).
    mongo.drop_collection(&db, "todos");
    wait_until("no todo cached anywhere", Duration::from_secs(20), || {
        cluster
            .masters()
            .iter()
            .all(|n| n.cli(&["--scan", "--pattern", "todo:*"]).is_empty())
    });

    // Nothing was dropped on the way: no gap anywhere; the homes sent, the others received.
    for n in cluster.masters() {
        let info = n.info();
        assert_eq!(info["cdc_bus_gaps"], 0, "{info:?}");
        let id = n.cli(&["CLUSTER", "MYID"]);
        if id == homes[0] {
            assert!(
                info["cdc_bus_sent"] > 0,
                "the todos' home sent changes: {info:?}"
            );
        }
        if homes.contains(&id) {
            assert!(info["cdc_bus_ticks"] > 0, "{info:?}");
        } else {
            assert!(info["cdc_bus_received"] > 0, "{info:?}");
            assert!(info["cdc_events"] > 0, "{info:?}");
        }
    }
}

#[test]
fn a_killed_home_fails_over_and_no_change_made_meanwhile_is_lost() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "clusterfailover", 300);
    let cluster = Cluster::with(
        3,
        1,
        &mongo.uri,
        &mappings(&db),
        &["--cluster-node-timeout", "2000"],
    );
    let home_id = cluster.wait_one_watcher_each(&["todos"]).remove(0);
    let mut c = cluster.client();
    for i in 1..=300 {
        name_in(&mut c, i);
    }
    // A first change, so the home has a resume token, replicated to its replica.
    rename(mongo, &db, 1, "before");
    wait_until("the first change", Duration::from_secs(10), || {
        name_in(&mut c, 1) == "before"
    });
    let home = cluster.by_id(&home_id);
    let replica = cluster.replica_of(home);
    let token = format!("__readthrough__:resume:{{{db}.todos}}");
    wait_until("the token on the replica", Duration::from_secs(10), || {
        let on_home = home.cli(&["GET", &token]);
        !on_home.is_empty()
            && replica
                .cli_stdin(&format!("READONLY\nGET {token}\n"))
                .ends_with(&on_home)
    });

    home.signal("KILL");
    // Changes while no master runs the watcher: keys of every master, the dead one's too.
    let changed: Vec<usize> = (2..=300).step_by(7).collect();
    for &i in &changed {
        rename(mongo, &db, i, "during the failover");
    }
    wait_until("the replica promoted", Duration::from_secs(60), || {
        replica.cli(&["ROLE"]).starts_with("master")
    });
    cluster.wait_ok();
    let replica_id = replica.cli(&["CLUSTER", "MYID"]);
    assert_eq!(cluster.wait_one_watcher_each(&["todos"]), [replica_id]);

    // Every change reaches its key: the new home resumed from the replicated token, and the
    // other masters purged on hearing a new sender. Nothing is changed again meanwhile.
    let mut c = cluster.client();
    wait_until(
        "every change made during the failover",
        Duration::from_secs(15),
        || {
            changed
                .iter()
                .all(|&i| name_in(&mut c, i) == "during the failover")
        },
    );
    assert_eq!(name_in(&mut c, 1), "before");
    for n in cluster.masters() {
        if n.port != replica.port {
            assert!(n.info()["cdc_bus_new_senders"] >= 2, "{:?}", n.info());
        }
    }
}

#[test]
fn a_master_cut_off_from_the_bus_purges_what_it_may_have_missed() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "clustercut", 300);
    let cluster = Cluster::with_bus_proxies(
        3,
        &mongo.uri,
        &mappings(&db),
        &[
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no",
        ],
    );
    let home_id = cluster.wait_one_watcher_each(&["todos"]).remove(0);
    let mut c = cluster.client();
    for i in 1..=300 {
        name_in(&mut c, i);
    }
    let (ix, cut) = cluster
        .nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.cli(&["CLUSTER", "MYID"]) != home_id)
        .unwrap();
    let home = cluster.by_id(&home_id);
    let theirs: Vec<usize> = (1..=300)
        .filter(|i| cluster.owner(&format!("todo:{i}")).port == cut.port)
        .take(20)
        .collect();
    let before = cut.info();

    // Nothing the home sends reaches the cut master; the home sees its link fail.
    cluster.proxies[ix].cut();
    let sent = home.info()["cdc_bus_sent"];
    for &i in &theirs {
        rename(mongo, &db, i, "while cut off");
    }
    wait_until(
        "the home to send the changes",
        Duration::from_secs(10),
        || home.info()["cdc_bus_sent"] >= sent + theirs.len() as i64,
    );
    // Still cached, and stale: the changes were lost on the way.
    let mut direct = cut.conn();
    for &i in &theirs {
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("todo:{i}"))
            .query(&mut direct)
            .unwrap();
        assert_eq!(json(&v.unwrap())["name"], format!("todo {i}"));
    }
    cluster.proxies[ix].restore();

    // Back on the bus, the next tick shows the gap: the master purges, and reads are fresh.
    wait_until("a gap seen", Duration::from_secs(30), || {
        cut.info()["cdc_bus_gaps"] > before["cdc_bus_gaps"]
    });
    let fresh = wait_for(Duration::from_secs(10), || {
        theirs.iter().all(|&i| {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("todo:{i}"))
                .query(&mut direct)
                .unwrap();
            json(&v.unwrap())["name"] == "while cut off"
        })
    });
    assert!(fresh, "stale after the gap: {:?}", cut.info());
    // The other masters lost nothing.
    for n in cluster.masters() {
        if n.port != cut.port {
            assert_eq!(n.info()["cdc_bus_gaps"], 0);
        }
    }
}

#[test]
fn a_master_that_takes_over_a_slot_purges_its_mapped_keys() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "clusterreshard", 300);
    let cluster = Cluster::start(&mongo.uri, &mappings(&db));
    cluster.wait_one_watcher_each(&["todos"]);
    let mut c = cluster.client();
    assert_eq!(name_in(&mut c, 7), "todo 7");
    let from = cluster.owner("todo:7");
    let to = cluster
        .masters()
        .into_iter()
        .find(|n| n.port != from.port)
        .unwrap();
    let slot = from.cli(&["CLUSTER", "KEYSLOT", "todo:7"]);
    let (from_id, to_id) = (from.cli(&["CLUSTER", "MYID"]), to.cli(&["CLUSTER", "MYID"]));
    let purges = to.info()["cdc_purges"];

    // The slot moves with its keys, as `redis-cli --cluster reshard` moves it.
    assert_eq!(
        to.cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]),
        "OK"
    );
    assert_eq!(
        from.cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]),
        "OK"
    );
    let keys = from.cli(&["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
    let mut migrate = vec!["MIGRATE", "127.0.0.1"];
    let port = to.port.to_string();
    migrate.extend([port.as_str(), "", "0", "5000", "KEYS"]);
    migrate.extend(keys.lines());
    assert_eq!(from.cli(&migrate), "OK");
    let asking = to.cli_stdin("ASKING\nEXISTS todo:7\n");
    assert!(
        asking.ends_with('1'),
        "the key moved with its slot: {asking}"
    );
    for n in cluster.masters() {
        n.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    }

    // Changes to it may have gone to its former owner meanwhile: the new one removes it (SCAN
    // looks without loading it again, as a read would).
    wait_until("the moved key purged", Duration::from_secs(10), || {
        to.cli(&["--scan", "--pattern", "todo:7"]).is_empty()
    });
    assert!(to.info()["cdc_purges"] > purges);
    // Read again at once, then changed while the watcher may still send it to the former
    // owner: the second purge, once every master routes the slot here, catches that.
    let mut c = cluster.client();
    assert_eq!(name_in(&mut c, 7), "todo 7");
    rename(mongo, &db, 7, "after the move");
    wait_until("the change after the move", Duration::from_secs(10), || {
        name_in(&mut c, 7) == "after the move"
    });
}
