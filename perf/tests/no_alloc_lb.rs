//! Zero-allocation proof for a shard's whole per-message work as a load balancer: the
//! `StatelessProxy` handler (parse, route program, dispatcher selection, stickiness table,
//! edits, write into the send arena) driven with complete calls, each with a new Call-ID,
//! through a counting global allocator. Only the measuring thread counts.

use std::hint::black_box;

use ringsip_perf::lb::Lb;

mod common;
use common::allocations_during;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

#[test]
fn load_balancer_calls_do_not_allocate() {
    let mut lb = Lb::new();
    // steady state: tables warmed by earlier calls, as in a running shard
    for _ in 0..200 {
        lb.call().expect("call flow");
    }
    const CALLS: usize = 5000;
    let (allocs, forwarded) = allocations_during(|| {
        let mut n = 0;
        for _ in 0..CALLS {
            n += black_box(lb.call().expect("call flow"));
        }
        n
    });
    assert_eq!(forwarded, 6 * CALLS, "every message of every call was forwarded");
    assert_eq!(allocs, 0, "{allocs} allocations over {CALLS} calls ({} messages)", 6 * CALLS);
}

/// htables read by the request route: a miss (`ipban`, empty) and a hit (`known`, seeded with
/// the UAC's address and its From user), both with `exists` and with comparisons. Inserted
/// before the example's rules; every message of a call runs them.
const SHT: &str = r#"
[[htable]]
name = "ipban"
autoexpire = "300s"

[[htable]]
name = "known"
entries = [{ key = "203.0.113.45", value = 7 }, { key = "sipp@203.0.113.45", value = "trunk-a" }]

[[route.request]]
name = "banned"                 # misses: nothing is banned
if = "exists $sht(ipban=>$si) or exists $sht(ipban=>$fU@$fd) or $sht(ipban=>$ci) == 1"
do = "drop"

[[route.request]]
name = "unknown"                # hits: a miss here would drop the call
if = 'not exists $sht(known=>$si) or $sht(known=>$si) != 7 or $sht(known=>$fU@$fd) != "trunk-a"'
do = "drop"

"#;

#[test]
fn htable_reads_in_routes_do_not_allocate() {
    let base = ringsip_perf::lb::CONFIG;
    let at = base.find("[[route.request]]").expect("the example has request rules");
    let config = format!("{}{SHT}{}", &base[..at], &base[at..]);
    let mut lb = Lb::with_config(&config);
    for _ in 0..200 {
        lb.call().expect("call flow: the known source is not dropped");
    }
    const CALLS: usize = 5000;
    let (allocs, forwarded) = allocations_during(|| {
        let mut n = 0;
        for _ in 0..CALLS {
            n += black_box(lb.call().expect("call flow"));
        }
        n
    });
    assert_eq!(forwarded, 6 * CALLS, "every message was forwarded: the misses missed and the hits hit");
    assert_eq!(allocs, 0, "{allocs} allocations over {CALLS} calls with htable reads");
}

/// acl groups tested by the request route: a group the UAC (203.0.113.45:5060) is in only by a
/// port-limited entry deep in the list, and one it is not in (IPv4 and IPv6 entries, other
/// ports). Inserted before the example's rules; every request of a call runs them.
const ACL: &str = r#"
[[acl]]
name = "trusted"
entries = ["10.0.0.0/8", "192.0.2.0/24:5060", "2001:db8::/32", "[2001:db8::1]:5060", "203.0.113.0/24:5099", "203.0.113.45:5060"]

[[acl]]
name = "banned"
entries = ["198.51.100.0/24", "203.0.113.45:5061", "203.0.113.0/25:5070", "[::ffff:0:0]/96:5080"]

[[route.request]]
name = "untrusted"              # hits: a miss here would drop the call
if = "not $si in acl trusted"
do = "drop"

[[route.request]]
name = "banned"                 # misses: the source is in none of the entries
if = "$si in acl banned"
do = "drop"

"#;

#[test]
fn acl_tests_in_routes_do_not_allocate() {
    let base = ringsip_perf::lb::CONFIG;
    let at = base.find("[[route.request]]").expect("the example has request rules");
    let config = format!("{}{ACL}{}", &base[..at], &base[at..]);
    let mut lb = Lb::with_config(&config);
    for _ in 0..200 {
        lb.call().expect("call flow: the trusted source is not dropped");
    }
    const CALLS: usize = 5000;
    let (allocs, forwarded) = allocations_during(|| {
        let mut n = 0;
        for _ in 0..CALLS {
            n += black_box(lb.call().expect("call flow"));
        }
        n
    });
    assert_eq!(forwarded, 6 * CALLS, "every message was forwarded: the hits hit and the misses missed");
    assert_eq!(allocs, 0, "{allocs} allocations over {CALLS} calls with acl tests");
}

#[test]
fn counter_sees_allocations() {
    // the negative control: building a shard allocates, and the counter must see it
    let (allocs, lb) = allocations_during(Lb::new);
    assert!(allocs > 10, "building a proxy allocates; counted {allocs}");
    drop(black_box(lb));
}
