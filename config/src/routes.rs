//! `[[route.request]]`, `[[route.reply]]` and `[[route.<name>]]`: rules parsed with the
//! route language, then the checks that need every route (names, sets, recursion, what a
//! reply route may do, `anchor_media` only with a `[media]` section).

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

/// Which optional sections the config has (actions and conditions that need one are refused
/// without it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sections {
    /// `[media]` (`anchor_media` needs it).
    pub media: bool,
    /// `[pike]` (`flooding` needs it).
    pub pike: bool,
}

pub(crate) fn parse(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    sections: Sections,
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

    // Calls and sets. `on_failure` / `on_reply` are uses of a route but not calls: a failure
    // route may arm itself again (that is how failover loops are written).
    let mut edges: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    let mut failure_roots: BTreeSet<&str> = BTreeSet::new();
    let mut reply_roots: BTreeSet<&str> = BTreeSet::new();
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
                UseKind::Stateful("anchor_media") if !sections.media => {
                    d.at(u.pos, "anchor_media needs a [media] section (the relay's address and port range)");
                }
                UseKind::Flooding if !sections.pike => {
                    d.at(
                        u.pos,
                        "flooding needs a [pike] section (how many requests per window one source may send: [pike] limit = 200)",
                    );
                }
                UseKind::Call(target) => {
                    if matches!(target.as_str(), "request" | "reply") {
                        d.at(u.pos, format!("route {target} runs by itself and cannot be called; put the shared rules in a named route"));
                    } else if let Some((callee, _)) = routes.get_key_value(target.as_str()) {
                        edges.entry(name.as_str()).or_default().push((callee.as_str(), u.pos));
                    } else {
                        d.at(u.pos, unknown_route(target, &named));
                    }
                }
                UseKind::OnFailure(target) | UseKind::OnReply(target) => {
                    let failure = matches!(u.kind, UseKind::OnFailure(_));
                    let action = if failure { "on_failure" } else { "on_reply" };
                    if matches!(target.as_str(), "request" | "reply") {
                        d.at(
                            u.pos,
                            format!("{action} {target}: route {target} runs by itself and cannot be armed; put the rules in a named route"),
                        );
                    } else if let Some((armed, _)) = routes.get_key_value(target.as_str()) {
                        if failure { &mut failure_roots } else { &mut reply_roots }.insert(armed.as_str());
                    } else {
                        d.at(u.pos, unknown_route(target, &named));
                    }
                }
                _ => {}
            }
        }
    }

    report_cycles(d, &named, &edges);

    // Where each route runs: for requests, for replies (the reply route and the routes
    // `on_reply` arms), as a failure route (the routes `on_failure` arms), with what they call.
    let from_request = Context::new(["request"], &edges);
    let from_reply = Context::new(std::iter::once("reply").chain(reply_roots.iter().copied()), &edges);
    let from_failure = Context::new(failure_roots.iter().copied(), &edges);
    for (name, p) in &routes {
        let name = name.as_str();
        let in_request = from_request.why(name, Armed::No);
        let in_reply = from_reply.why(name, Armed::OnReply);
        let in_failure = from_failure.why(name, Armed::OnFailure);
        for u in &p.uses {
            match (&u.kind, &in_request, &in_reply, &in_failure) {
                (UseKind::ReplyPv(pv), Some(why), ..) => {
                    d.at(
                        u.pos,
                        format!(
                            "{pv} is only set on replies and in failure routes; use it in [[route.reply]], or in a route armed by on_reply or on_failure{why}"
                        ),
                    );
                }
                (UseKind::ReplyAction, _, Some(why), _) => {
                    d.at(u.pos, format!("reply is not allowed in the reply route: a reply cannot be answered{why}"));
                }
                (UseKind::SelectAction, _, Some(why), _) => {
                    d.at(
                        u.pos,
                        format!(
                            "select is not allowed in the reply route: replies go back along their Via headers{why}"
                        ),
                    );
                }
                (UseKind::ForwardTarget, _, Some(why), _) => {
                    d.at(
                        u.pos,
                        format!(
                            "forward takes no target in the reply route: replies go back along their Via headers{why}"
                        ),
                    );
                }
                (UseKind::Stateful(action), _, Some(why), _) => {
                    d.at(
                        u.pos,
                        format!(
                            "{action} is not allowed in the reply route: it acts on a request and its transaction{why}"
                        ),
                    );
                }
                (UseKind::Forward, _, _, Some(why)) => {
                    d.at(
                        u.pos,
                        format!(
                            "forward is not allowed in a failure route: use relay to try a new branch, or reply to answer{why}"
                        ),
                    );
                }
                (UseKind::MarkDown, Some(why), ..) | (UseKind::MarkDown, _, Some(why), _) => {
                    d.at(
                        u.pos,
                        format!(
                            "mark_down only works in a failure route (a route armed by on_failure): it marks the destination of the branch that failed{why}"
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

/// "unknown route ..." for `route`, `on_failure` and `on_reply`, with a suggestion.
fn unknown_route(target: &str, named: &BTreeSet<&str>) -> String {
    let list = named.iter().copied().collect::<Vec<_>>().join(", ");
    match (closest(target, named.iter().copied()), named.is_empty()) {
        (_, true) => format!("unknown route \"{target}\" (no named routes are defined; add [[route.{target}]])"),
        (Some(c), _) => format!("unknown route \"{target}\" (did you mean \"{c}\"? named routes: {list})"),
        (None, _) => format!("unknown route \"{target}\" (named routes: {list})"),
    }
}

/// How a route becomes a root of a context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Armed {
    /// It runs by itself (`request`, `reply`).
    No,
    /// `on_reply` arms it.
    OnReply,
    /// `on_failure` arms it.
    OnFailure,
}

/// The routes that run in one context (request, reply, failure): its roots and, for every
/// route reachable from them through calls, the root it is reached from.
struct Context<'a> {
    root_of: BTreeMap<&'a str, &'a str>,
}

impl<'a> Context<'a> {
    fn new(roots: impl IntoIterator<Item = &'a str>, edges: &BTreeMap<&'a str, Vec<(&'a str, usize)>>) -> Self {
        let mut root_of = BTreeMap::new();
        for root in roots {
            for n in reachable(root, edges) {
                root_of.entry(n).or_insert(root);
            }
        }
        Context { root_of }
    }

    /// `None` when `name` does not run in this context; else why it does, for messages (empty
    /// for the request and reply routes themselves).
    fn why(&self, name: &str, armed: Armed) -> Option<String> {
        let &root = self.root_of.get(name)?;
        let ctx = match (armed, root) {
            (_, "request" | "reply") => format!("the {root} route"),
            (Armed::OnFailure, _) => format!("route \"{root}\", which on_failure arms"),
            _ => format!("route \"{root}\", which on_reply arms"),
        };
        Some(match (name == root, armed, root) {
            (true, _, "request" | "reply") => String::new(),
            (true, Armed::OnFailure, _) => format!(" (route \"{name}\" is a failure route: on_failure arms it)"),
            (true, _, _) => format!(" (route \"{name}\" runs on replies: on_reply arms it)"),
            (false, ..) => format!(" (route \"{name}\" is called from {ctx})"),
        })
    }
}

/// Actions after which nothing in the same `do` list runs.
fn terminal_name(a: &Action) -> Option<&'static str> {
    match a {
        Action::Forward(_) => Some("forward"),
        Action::Relay(_) => Some("relay"),
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
