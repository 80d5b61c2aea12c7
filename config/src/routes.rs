//! `[[route.request]]`, `[[route.reply]]` and `[[route.<name>]]`: rules parsed with the
//! route language, then the checks that need every route (names, sets, recursion, what a
//! reply route may do).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use toml::de::DeValue;

use crate::Routes;
use crate::error::Diag;
use crate::lang::{self, Use, UseKind};
use crate::route::{Action, Route, Rule};
use crate::values::closest;
use crate::walk::{self, Table, Val};

const RULE_KEYS: &[&str] = &["name", "if", "do"];

/// What the routes may refer to in the dispatcher.
pub(crate) struct SetIds<'a> {
    pub(crate) ids: &'a BTreeSet<u32>,
    /// False when some set's id could not be read: unknown ids are then not reported.
    pub(crate) complete: bool,
}

/// What the routes may refer to among the `[[mtree]]` tables.
pub(crate) struct TreeNames<'a> {
    pub(crate) names: &'a BTreeMap<String, Option<crate::MtreeKind>>,
    /// False when some tree's name could not be read: unknown names are then not reported.
    pub(crate) complete: bool,
}

/// What the routes may refer to in a named section (`[[htable]]` tables, `[[acl]]` groups).
pub(crate) struct KnownNames<'a> {
    pub(crate) names: &'a BTreeSet<String>,
    /// False when some entry's name could not be read: unknown names are then not reported.
    pub(crate) complete: bool,
}

/// A use located in the TOML file.
struct FileUse {
    kind: UseKind,
    pos: usize,
}

struct Parsed {
    route: Route,
    uses: Vec<FileUse>,
    /// Every rule parsed cleanly.
    ok: bool,
}

pub(crate) fn parse(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    sets: Option<SetIds<'_>>,
    trees: TreeNames<'_>,
    tables: KnownNames<'_>,
    acls: KnownNames<'_>,
) -> Option<Routes> {
    let mut routes: BTreeMap<String, Parsed> = BTreeMap::new();
    let mut ok = true;
    for (k, v) in t.map.iter() {
        let name: &str = k.get_ref();
        if !lang::is_route_name(name) {
            d.span(&k.span(), format!("\"{name}\" is not a route name (letters, digits, _ and -)"));
            ok = false;
            continue;
        }
        match parse_route(d, name, v) {
            Some(p) => {
                ok &= p.ok;
                routes.insert(name.to_string(), p);
            }
            None => ok = false,
        }
    }
    if !routes.contains_key("request") && t.get("request").is_none() {
        d.span(&t.span, "missing [[route.request]]: a config needs at least one request rule");
    }

    let named: BTreeSet<&str> =
        routes.keys().map(String::as_str).filter(|n| !matches!(*n, "request" | "reply")).collect();

    // Calls and sets.
    let mut edges: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for (name, p) in &routes {
        for u in &p.uses {
            match &u.kind {
                UseKind::Set(id) => {
                    if let Some(s) = &sets
                        && s.complete
                        && !s.ids.contains(id)
                    {
                        let known = if s.ids.is_empty() {
                            "no [[dispatcher.set]] is defined".to_string()
                        } else {
                            format!("sets: {}", s.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
                        };
                        d.at(u.pos, format!("select {id}: there is no dispatcher set with id {id} ({known})"));
                    }
                }
                UseKind::Tree(tree) if trees.complete && !trees.names.contains_key(tree) => {
                    let known = if trees.names.is_empty() {
                        "no [[mtree]] is defined".to_string()
                    } else {
                        format!("trees: {}", trees.names.keys().cloned().collect::<Vec<_>>().join(", "))
                    };
                    d.at(u.pos, format!("lookup {tree}: there is no [[mtree]] named \"{tree}\" ({known})"));
                }
                UseKind::Table(table) if tables.complete && !tables.names.contains(table) => {
                    let names = || tables.names.iter().map(String::as_str);
                    let list = names().collect::<Vec<_>>().join(", ");
                    let msg = match closest(table, names()) {
                        _ if tables.names.is_empty() => format!(
                            "unknown htable \"{table}\" (no [[htable]] is defined; add one with name = \"{table}\")"
                        ),
                        Some(c) => format!("unknown htable \"{table}\" (did you mean \"{c}\"? htables: {list})"),
                        None => format!("unknown htable \"{table}\" (htables: {list})"),
                    };
                    d.at(u.pos, msg);
                }
                UseKind::Acl(group) if acls.complete && !acls.names.contains(group) => {
                    let names = || acls.names.iter().map(String::as_str);
                    let list = names().collect::<Vec<_>>().join(", ");
                    let msg = match closest(group, names()) {
                        _ if acls.names.is_empty() => format!(
                            "unknown acl group \"{group}\" (no [[acl]] is defined; add one with name = \"{group}\")"
                        ),
                        Some(c) => format!("unknown acl group \"{group}\" (did you mean \"{c}\"? acl groups: {list})"),
                        None => format!("unknown acl group \"{group}\" (acl groups: {list})"),
                    };
                    d.at(u.pos, msg);
                }
                UseKind::Call(target) => {
                    if matches!(target.as_str(), "request" | "reply") {
                        d.at(u.pos, format!("route {target} runs by itself and cannot be called; put the shared rules in a named route"));
                    } else if let Some((callee, _)) = routes.get_key_value(target.as_str()) {
                        edges.entry(name.as_str()).or_default().push((callee.as_str(), u.pos));
                    } else {
                        let list = named.iter().copied().collect::<Vec<_>>().join(", ");
                        let msg = match (closest(target, named.iter().copied()), named.is_empty()) {
                            (_, true) => format!(
                                "unknown route \"{target}\" (no named routes are defined; add [[route.{target}]])"
                            ),
                            (Some(c), _) => {
                                format!("unknown route \"{target}\" (did you mean \"{c}\"? named routes: {list})")
                            }
                            (None, _) => format!("unknown route \"{target}\" (named routes: {list})"),
                        };
                        d.at(u.pos, msg);
                    }
                }
                _ => {}
            }
        }
    }

    report_cycles(d, &named, &edges);

    // Where each route runs: for requests, for replies.
    let from_request = reachable("request", &edges);
    let from_reply = reachable("reply", &edges);
    for (name, p) in &routes {
        let in_request = from_request.contains(name.as_str());
        let in_reply = from_reply.contains(name.as_str());
        let why = |ctx: &str| {
            if name == ctx { String::new() } else { format!(" (route \"{name}\" is called from the {ctx} route)") }
        };
        for u in &p.uses {
            match u.kind {
                UseKind::ReplyPv(pv) if in_request => {
                    d.at(u.pos, format!("{pv} is only set on replies; use it in [[route.reply]]{}", why("request")));
                }
                UseKind::ReplyAction if in_reply => {
                    d.at(
                        u.pos,
                        format!("reply is not allowed in the reply route: a reply cannot be answered{}", why("reply")),
                    );
                }
                UseKind::SelectAction if in_reply => {
                    d.at(
                        u.pos,
                        format!(
                            "select is not allowed in the reply route: replies go back along their Via headers{}",
                            why("reply")
                        ),
                    );
                }
                UseKind::ForwardTarget if in_reply => {
                    d.at(
                        u.pos,
                        format!(
                            "forward takes no target in the reply route: replies go back along their Via headers{}",
                            why("reply")
                        ),
                    );
                }
                _ => {}
            }
        }
    }

    if !ok {
        return None;
    }
    let mut routes: BTreeMap<String, Route> = routes.into_iter().map(|(k, p)| (k, p.route)).collect();
    let request = routes.remove("request")?;
    let reply = routes.remove("reply");
    Some(Routes { request, reply, named: routes })
}

fn parse_route(d: &mut Diag<'_>, name: &str, v: &Val<'_>) -> Option<Parsed> {
    let DeValue::Array(items) = v.get_ref() else {
        d.span(
            &v.span(),
            format!("route.{name} must be a list of rules: write each rule under [[route.{name}]] (double brackets)"),
        );
        return None;
    };
    if items.is_empty() {
        d.span(&v.span(), format!("route {name} has no rules"));
        return None;
    }
    let mut out = Parsed { route: Route::default(), uses: Vec::new(), ok: true };
    let mut rule_names: HashMap<String, usize> = HashMap::new();
    for item in items.iter() {
        let Some(t) = walk::table(d, item, &format!("each rule of route.{name}")) else {
            out.ok = false;
            continue;
        };
        let t = Table::new(t.map, t.span, format!("[[route.{name}]]"));
        match parse_rule(d, &t, &mut out.uses, &mut rule_names) {
            Some(rule) => out.route.rules.push(rule),
            None => out.ok = false,
        }
    }
    Some(out)
}

fn parse_rule(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    uses: &mut Vec<FileUse>,
    names: &mut HashMap<String, usize>,
) -> Option<Rule> {
    t.check_keys(d, RULE_KEYS);
    let before = d.errors.len();
    let name = t.get("name").and_then(|v| {
        let s = walk::string(d, v, "rule name")?;
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            d.span(&v.span(), format!("rule name \"{s}\" must be one word (letters, digits, -, _, ...)"));
            return None;
        }
        let (line, _) = d.src.line_col(v.span().start);
        if let Some(first) = names.insert(s.to_string(), line) {
            d.span(&v.span(), format!("duplicate rule name \"{s}\" in this route (already at line {first})"));
        }
        Some(s.to_string())
    });
    let cond = t.get("if").and_then(|v| {
        let s = walk::string(d, v, "`if`")?;
        lang_parse(d, v.span(), s, uses, lang::parse_cond)
    });
    let mut actions = Vec::new();
    match t.get("do") {
        None => d.span(&t.span, format!("{} needs `do`: the action(s) to run, like do = \"forward\"", t.what)),
        Some(v) => {
            let strings: Vec<(&str, Range<usize>)> = match v.get_ref() {
                DeValue::String(s) => vec![(s.as_ref(), v.span())],
                DeValue::Array(a) => {
                    if a.is_empty() {
                        d.span(&v.span(), "`do` is empty: give at least one action");
                    }
                    a.iter().filter_map(|x| walk::string(d, x, "each `do` entry").map(|s| (s, x.span()))).collect()
                }
                other => {
                    d.span(
                        &v.span(),
                        format!("`do` must be an action string or a list of them, not {}", walk::describe(other)),
                    );
                    Vec::new()
                }
            };
            let mut terminal: Option<&'static str> = None;
            let mut reported = false;
            for (s, span) in strings {
                let a = lang_parse(d, span.clone(), s, uses, lang::parse_action);
                if let Some(after) = terminal
                    && !reported
                {
                    d.span(
                        &span,
                        format!("unreachable action after {after} ({after} ends the rule; nothing after it runs)"),
                    );
                    reported = true;
                }
                if let Some(a) = a {
                    if terminal.is_none() {
                        terminal = terminal_name(&a);
                    }
                    actions.push(a);
                }
            }
        }
    }
    (d.errors.len() == before).then_some(Rule { name, cond, actions })
}

/// Run a route-language parser on a string value and map its uses and errors into the file.
fn lang_parse<T>(
    d: &mut Diag<'_>,
    span: Range<usize>,
    s: &str,
    uses: &mut Vec<FileUse>,
    f: impl FnOnce(&str, &mut Vec<Use>) -> Result<T, lang::LangError>,
) -> Option<T> {
    let mut local = Vec::new();
    let r = f(s, &mut local);
    for u in local {
        uses.push(FileUse { pos: d.in_string(&span, s, u.at), kind: u.kind });
    }
    match r {
        Ok(x) => Some(x),
        Err(e) => {
            let at = d.in_string(&span, s, e.at);
            d.at(at, e.msg);
            None
        }
    }
}

/// Actions after which nothing in the same `do` list runs.
fn terminal_name(a: &Action) -> Option<&'static str> {
    match a {
        Action::Forward(_) => Some("forward"),
        Action::Reply { .. } => Some("reply"),
        Action::Drop => Some("drop"),
        Action::Return => Some("return"),
        _ => None,
    }
}

/// Routes reachable from `start` (itself included) through calls.
fn reachable<'a>(start: &'a str, edges: &BTreeMap<&'a str, Vec<(&'a str, usize)>>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        for (m, _) in edges.get(n).into_iter().flatten() {
            if seen.insert(m) {
                stack.push(m);
            }
        }
    }
    seen
}

/// Report every call that closes a cycle, naming the chain.
fn report_cycles(d: &mut Diag<'_>, named: &BTreeSet<&str>, edges: &BTreeMap<&str, Vec<(&str, usize)>>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        d: &mut Diag<'_>,
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<(&'a str, usize)>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) {
        marks.insert(n, Mark::Active);
        path.push(n);
        for &(m, pos) in edges.get(n).into_iter().flatten() {
            match marks.get(m).copied().unwrap_or(Mark::New) {
                Mark::Active => {
                    let from = path.iter().position(|x| *x == m).unwrap_or(0);
                    let mut chain: Vec<&str> = path[from..].to_vec();
                    chain.push(m);
                    let msg = if chain.len() == 2 {
                        format!("route \"{m}\" calls itself (routes may not recurse)")
                    } else {
                        format!("routes call each other in a loop: {} (routes may not recurse)", chain.join(" -> "))
                    };
                    d.at(pos, msg);
                }
                Mark::New => visit(d, m, edges, marks, path),
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(n, Mark::Done);
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for root in ["request", "reply"].into_iter().chain(named.iter().copied()) {
        if marks.get(root).copied().unwrap_or(Mark::New) == Mark::New {
            visit(d, root, edges, &mut marks, &mut Vec::new());
        }
    }
}
