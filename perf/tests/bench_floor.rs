//! End to end: `ringsip-bench lb --router-cmd <sip-floor> --rate 500 --duration 2` (and the
//! same with `stateful`) through the floor forwarder of `shared/bench/floor`, built here into a
//! temp target dir. Every call must succeed and the router's CPU per message must be a finite
//! positive number.
//!
//! When the floor cannot be found or built the test is skipped, except under `CI=true`, where
//! that fails it. It uses its own ports (25060, 25080/25081, 25100; `stateful` 25260, ...) so a
//! router or benchmark running on the usual ones does not disturb it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn floor_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [root.join("../shared/bench/floor"), root.join("shared/bench/floor")]
        .into_iter()
        .find(|p| p.join("Cargo.toml").is_file())
}

/// Build sip-floor, or say why not.
fn build_floor() -> Result<PathBuf, String> {
    let dir = floor_dir().ok_or("shared/bench/floor not found next to the repository")?;
    let target = std::env::temp_dir().join("ringsip-perf-test-floor-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    let bin = target.join("release/sip-floor");
    if !out.status.success() || !bin.is_file() {
        return Err(format!(
            "building {} failed ({}):\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

/// Run `ringsip-bench <command>` through the floor forwarder on its own ports (`base`+60,
/// +80/+81, +100) at 500 calls/s for 2 s and return its JSON; `None` (skipped) when the
/// floor cannot be built outside CI.
fn through_floor(command: &str, base: u16) -> Option<serde_json::Value> {
    let floor = match build_floor() {
        Ok(b) => b,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true: {why}"),
        Err(why) => {
            eprintln!("SKIPPED {command} through sip-floor: {why}");
            return None;
        }
    };
    let out = Command::new(env!("CARGO_BIN_EXE_ringsip-bench"))
        .arg(command)
        .arg("--router-cmd")
        .arg(&floor)
        .args(["--rate", "500", "--duration", "2", "--json", "--quiet", "--idle", "0.5", "--drain", "0.5"])
        .args(["--target", &format!("127.0.0.1:{}", base + 60)])
        .args(["--uas-ports", &format!("{},{}", base + 80, base + 81), "--uac-port", &(base + 100).to_string()])
        .output()
        .expect("run ringsip-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ringsip-bench failed ({}):\n{stderr}", out.status);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    let runs = j["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["router"], "sip-floor");
    Some(j)
}

#[test]
fn lb_through_sip_floor() {
    let Some(j) = through_floor("lb", 25000) else { return };
    assert_eq!(j["ok"], true, "{j:#}");
    let r = &j["runs"][0];
    assert_eq!(r["router_alive"], true);
    assert_eq!(r["attempted"], 1000, "{r:#}");
    assert_eq!(r["succeeded"], 1000, "{r:#}");
    assert_eq!(r["failed"], 0, "{r:#}");
    // 6 messages per call through the router (a retransmission would add some)
    assert!(r["msgs_routed"].as_u64().unwrap() >= 6000, "{r:#}");
    let us = r["us_per_msg_sched"].as_f64().unwrap_or(f64::NAN); // NaN serialises as null
    assert!(us.is_finite() && us > 0.0, "us_per_msg_sched = {us}: {r:#}");
    let raw = r["us_per_msg_sched_raw"].as_f64().unwrap_or(f64::NAN);
    assert!(raw.is_finite() && raw >= us, "{r:#}");
    assert!(r["setup_latency_us"]["p50"].as_u64().is_some(), "{r:#}");
}

/// `ringsip-bench stateful` through the floor, which sends no 100 Trying and no Record-Route:
/// the calls still complete (ACK and BYE without a route set go to the router's address), and
/// the stateful figures say so.
#[test]
fn stateful_through_sip_floor() {
    let Some(j) = through_floor("stateful", 25200) else { return };
    assert_eq!((&j["ok"], &j["command"]), (&true.into(), &"stateful".into()), "{j:#}");
    let r = &j["runs"][0];
    assert_eq!((&r["attempted"], &r["succeeded"], &r["failed"]), (&1000.into(), &1000.into(), &0.into()), "{r:#}");
    assert!(r["msgs_routed"].as_u64().unwrap() >= 6000, "{r:#}");
    // the floor answers no INVITE itself and adds no Record-Route
    assert_eq!((&r["trying_rx"], &r["route_set_calls"]), (&0.into(), &0.into()), "{r:#}");
    let per_call = r["us_per_call_sched"].as_f64().unwrap_or(f64::NAN);
    let per_msg = r["us_per_msg_sched"].as_f64().unwrap_or(f64::NAN);
    assert!(per_call.is_finite() && per_msg > 0.0 && per_call > per_msg, "{r:#}");
}
