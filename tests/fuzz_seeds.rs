//! The fuzz targets' seed corpus (`fuzz/seeds/`) and any committed reproducers, run through the
//! same property checks as `make fuzz`, on the stable toolchain, in `make test`.
use std::path::Path;

fn run_all(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let ok = std::panic::catch_unwind(|| check(&data));
        assert!(ok.is_ok(), "{} fails its property", path.display());
        n += 1;
    }
    assert!(n >= 5, "the {target} seeds are there ({n})");
}

#[test]
fn mapping_spec_seeds() {
    run_all("mapping_spec", readthrough::fuzzing::mapping_spec);
}

#[test]
fn key_seeds() {
    run_all("key", readthrough::fuzzing::key);
}

#[test]
fn codec_seeds() {
    run_all("codec", readthrough::fuzzing::codec);
}
