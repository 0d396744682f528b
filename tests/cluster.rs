//! Redis Cluster: three masters on localhost, the module on each, a cluster-aware client.
mod common;

use common::*;
use redis::cluster::ClusterClient;
use redis::Commands;
use std::process::Command;
use std::time::Duration;

struct Cluster {
    nodes: Vec<Redis>,
}

impl Cluster {
    fn start(mongo_uri: &str, mappings: &str) -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| Redis::with(mongo_uri, mappings).cluster_node().start())
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
            "0".into(),
            "--cluster-yes".into(),
        ]);
        let out = Command::new("timeout").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for n in &nodes {
            wait_until("cluster_state:ok", Duration::from_secs(30), || {
                n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        Cluster { nodes }
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
    for n in &cluster.nodes {
        n.wait_watching();
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
    // Every master saved its resume token under a key of its own slots, and nothing logged
    // a failed write for the keys of other nodes.
    for n in &cluster.nodes {
        let tokens = n.cli(&["--scan", "--pattern", "__readthrough__:resume:*"]);
        assert_eq!(tokens.lines().count(), 1, "one token per master: {tokens}");
        assert!(!n.log().contains("could not write"), "{}", n.log());
    }
}
