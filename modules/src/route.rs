//! The route engine: the config's route language compiled once into a form that evaluates
//! without allocation (literals pre-parsed as numbers and IP addresses, header names
//! resolved, regexes compiled), pseudo-variable lookup, and value templates.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ringsip_config::route::{self as ast, Cidr, CmpOp, Piece};
use ringsip_proto::{HeaderName, Message, Uri};

use crate::htable::{HtError, Tables, Value};
use crate::mtree::{Alphabet, BuildError, Mtree};

/// The longest htable key a route builds (`$sht(...)`, `sht_*`): keys are rendered into a
/// stack buffer of this size; a longer one reads as absent and cannot be written.
pub const MAX_SHT_KEY: usize = 256;

/// A pseudo-variable, resolved.
#[derive(Clone, Debug)]
pub enum Pv {
    /// `$si`
    SrcIp,
    /// `$sp`
    SrcPort,
    /// `$Ri`
    LocalIp,
    /// `$Rp`
    LocalPort,
    /// `$proto`
    Proto,
    /// `$rm`
    Method,
    /// `$ru`
    RUri,
    /// `$rU`
    RUser,
    /// `$rd`
    RDomain,
    /// `$rp`
    RPort,
    /// `$fu`
    FromUri,
    /// `$fU`
    FromUser,
    /// `$fd`
    FromDomain,
    /// `$ft`
    FromTag,
    /// `$tu`
    ToUri,
    /// `$tU`
    ToUser,
    /// `$td`
    ToDomain,
    /// `$tt`
    ToTag,
    /// `$ci`
    CallId,
    /// `$cs`
    CSeq,
    /// `$ua`
    UserAgent,
    /// `$du`
    DstUri,
    /// `$rs` (a reply's status; in a failure route [`Failure::code`])
    Status,
    /// `$rr` (a reply's reason; in a failure route [`Failure::reason`])
    Reason,
    /// `$mt`
    MtValue,
    /// `$hdr(Name)`: known name, or the raw name of an extension header.
    Hdr(HeaderName, Box<[u8]>),
}

impl Pv {
    fn compile(pv: &ast::Pv) -> Pv {
        use ast::Pv as A;
        match pv {
            A::SrcIp => Pv::SrcIp,
            A::SrcPort => Pv::SrcPort,
            A::LocalIp => Pv::LocalIp,
            A::LocalPort => Pv::LocalPort,
            A::Proto => Pv::Proto,
            A::Method => Pv::Method,
            A::RUri => Pv::RUri,
            A::RUser => Pv::RUser,
            A::RDomain => Pv::RDomain,
            A::RPort => Pv::RPort,
            A::FromUri => Pv::FromUri,
            A::FromUser => Pv::FromUser,
            A::FromDomain => Pv::FromDomain,
            A::FromTag => Pv::FromTag,
            A::ToUri => Pv::ToUri,
            A::ToUser => Pv::ToUser,
            A::ToDomain => Pv::ToDomain,
            A::ToTag => Pv::ToTag,
            A::CallId => Pv::CallId,
            A::CSeq => Pv::CSeq,
            A::UserAgent => Pv::UserAgent,
            A::DstUri => Pv::DstUri,
            A::Status => Pv::Status,
            A::Reason => Pv::Reason,
            A::MtValue => Pv::MtValue,
            A::Hdr(name) => Pv::Hdr(HeaderName::from_bytes(name.as_bytes()), name.as_bytes().into()),
        }
    }

    /// Host-valued pseudo-variables compare case-insensitively (RFC 3261 §19.1.4).
    fn is_host(&self) -> bool {
        matches!(self, Pv::RDomain | Pv::FromDomain | Pv::ToDomain)
    }
}

/// Compile a pseudo-variable of the config (e.g. a dispatcher set's `hash_pv`).
pub fn compile_pv(pv: &ast::Pv) -> Pv {
    Pv::compile(pv)
}

/// A literal with its readings pre-computed.
#[derive(Clone, Debug)]
pub struct Lit {
    bytes: Box<[u8]>,
    int: Option<i64>,
    ip: Option<IpAddr>,
}

impl Lit {
    fn new(bytes: &[u8]) -> Lit {
        let s = std::str::from_utf8(bytes).unwrap_or("");
        Lit { bytes: bytes.into(), int: s.trim().parse().ok(), ip: s.parse().ok() }
    }
}

/// An operand.
#[derive(Clone, Debug)]
pub enum Operand {
    /// A pseudo-variable.
    Pv(Pv),
    /// A literal.
    Lit(Lit),
    /// `myself`.
    Myself,
    /// `$sht(table=>key)`.
    Sht(Sht),
}

/// `$sht(table=>key)`, resolved: the table's index in the snapshot's [`Tables`] (config
/// order) and the key template.
#[derive(Clone, Debug)]
pub struct Sht {
    /// Index of the table in [`Ctx::htables`].
    pub table: usize,
    /// The key.
    pub key: Template,
}

/// The value `sht_set` writes.
#[derive(Clone, Debug)]
pub enum ShtValue {
    /// An integer.
    Int(i64),
    /// Text, rendered.
    Text(Template),
    /// A pseudo-variable: an integer one stores an integer, any other its text.
    Pv(Pv),
}

/// A route's write to an htable.
#[derive(Clone, Debug)]
pub enum ShtWrite {
    /// `sht_set`: the value and its own lifetime (`None`: the table's autoexpire).
    Set(Sht, ShtValue, Option<Duration>),
    /// `sht_inc`.
    Inc(Sht, i64),
    /// `sht_delete`.
    Delete(Sht),
}

impl ShtWrite {
    /// The table written to (an index in [`Ctx::htables`]).
    pub fn table(&self) -> usize {
        match self {
            ShtWrite::Set(s, ..) | ShtWrite::Inc(s, _) | ShtWrite::Delete(s) => s.table,
        }
    }
}

/// Why a route's htable write did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShtWriteError {
    /// The key rendered empty or longer than [`MAX_SHT_KEY`] bytes.
    Key,
    /// The value's pseudo-variable is absent, or its text does not fit the scratch buffer.
    Value,
    /// The snapshot has no table at the compiled index (cannot happen with a checked config).
    NoTable,
    /// The table refused it (full, `sht_inc` on text, overflow).
    Table(HtError),
}

impl std::fmt::Display for ShtWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShtWriteError::Key => write!(f, "the key is empty or longer than {MAX_SHT_KEY} bytes"),
            ShtWriteError::Value => f.write_str("the value is absent or too long"),
            ShtWriteError::NoTable => f.write_str("no such htable in this snapshot"),
            ShtWriteError::Table(e) => write!(f, "{e}"),
        }
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Expr {
    /// and
    And(Box<Expr>, Box<Expr>),
    /// or
    Or(Box<Expr>, Box<Expr>),
    /// not
    Not(Box<Expr>),
    /// comparison
    Cmp(Operand, CmpOp, Operand),
    /// regex match
    Match(Operand, regex::bytes::Regex, bool),
    /// membership in a list
    InList(Operand, Vec<Operand>),
    /// membership in networks
    InNet(Operand, Vec<Cidr>),
    /// `$si in acl NAME`: the source matches the group (an index in [`Program::acls`])
    InAcl(usize),
    /// presence
    Exists(Pv),
    /// an htable key is present and not expired
    ShtExists(Sht),
    /// To has a tag
    HasToTag,
    /// a request
    IsRequest,
    /// a reply
    IsReply,
    /// the transaction was CANCELled (failure routes)
    Cancelled,
    /// the failed branch ended by a local timeout (failure routes)
    Timeout,
    /// the failed branch received a response, even a provisional one (failure routes)
    Replied,
    /// the source is flooding (`[pike]`; counts the message)
    Flooding,
    /// always
    True,
}

/// A value template, resolved.
#[derive(Clone, Debug)]
pub struct Template(Vec<TPiece>);

#[derive(Clone, Debug)]
enum TPiece {
    Text(Box<[u8]>),
    Pv(Pv),
}

impl Template {
    fn compile(t: &ast::Template) -> Template {
        Template(
            t.0.iter()
                .map(|p| match p {
                    Piece::Text(s) => TPiece::Text(s.as_bytes().into()),
                    Piece::Pv(pv) => TPiece::Pv(Pv::compile(pv)),
                })
                .collect(),
        )
    }

    /// Render into `out`; returns the length, or `None` if it does not fit.
    pub fn render(&self, ctx: &Ctx<'_, '_>, out: &mut [u8]) -> Option<usize> {
        let mut w = Writer { buf: out, len: 0 };
        for p in &self.0 {
            match p {
                TPiece::Text(t) => w.put(t)?,
                TPiece::Pv(pv) => match ctx.fetch(pv) {
                    Val::None => {}
                    Val::Bytes(b) => w.put(b)?,
                    Val::Int(i) => w.put(itoa(i, &mut [0u8; 20]))?,
                    Val::Ip(ip) => w.put(ip_text(ip, &mut [0u8; 48]))?,
                },
            }
        }
        Some(w.len)
    }
}

struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        let end = self.len.checked_add(b.len())?;
        self.buf.get_mut(self.len..end)?.copy_from_slice(b);
        self.len = end;
        Some(())
    }
}

/// Decimal text of `v` in `buf`.
pub fn itoa(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut t = [0u8; 20];
    let digits = ringsip_proto::proxy::dec(v.unsigned_abs(), &mut t);
    // |i64| has at most 19 digits: there is always room for the sign
    let start = buf.len() - digits.len();
    buf[start..].copy_from_slice(digits);
    if v < 0 {
        buf[start - 1] = b'-';
        return &buf[start - 1..];
    }
    &buf[start..]
}

/// Text of an IP address in `buf` (no allocation).
pub fn ip_text(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    ringsip_proto::proxy::ip_text(ip, buf)
}

/// A compiled action.
#[derive(Clone, Debug)]
pub enum Action {
    /// forward (to an explicit address, or by `$du`/Route/Request-URI)
    Forward(Option<(SocketAddr, Box<[u8]>)>),
    /// select from a dispatcher set (index), with a fallback action
    Select(usize, Option<Box<Action>>),
    /// longest-prefix lookup of a rendered key in a tree (index), with a fallback action
    Lookup(usize, Template, bool, Option<Box<Action>>),
    /// select from the sets the last lookup matched, in order, with a fallback action
    SelectLookup(Option<Box<Action>>),
    /// stateless reply
    Reply(u16, Box<[u8]>),
    /// drop
    Drop,
    /// return from a named route
    Return,
    /// run a named route (index)
    Route(usize),
    /// replace a header
    SetHeader(HeaderName, Box<[u8]>, Template),
    /// add a header line
    AppendHeader(Box<[u8]>, Template),
    /// remove a header
    RemoveHeader(HeaderName, Box<[u8]>),
    /// write to an htable
    Sht(ShtWrite),
    /// stateful forward (to an explicit address and its text as written, or by
    /// `$du`/Route/Request-URI); in a failure route, a new branch
    Relay(Option<(SocketAddr, String)>),
    /// add a Record-Route to the request when it is forwarded or relayed
    RecordRoute,
    /// relay in parallel to every available destination of the last select's set
    Fork,
    /// arm a named route (index in [`Program::named`]) as the failure route of the
    /// transaction the next `Relay` creates
    OnFailure(usize),
    /// arm a named route (index in [`Program::named`]) as the reply route of the transaction
    /// the next `Relay` creates
    OnReply(usize),
    /// select the next alternative destination after an earlier `Select`/`SelectLookup`,
    /// with a fallback action
    SelectNext(Option<Box<Action>>),
    /// mark the dispatcher destination of the failed branch as down (failure routes)
    MarkDown,
    /// anchor the call's media in the RTP relay (Kamailio's `rtpengine_manage()`): the request
    /// relayed statefully next (and the replies answering it) get their SDP rewritten to the
    /// relay's ports with these flags; a BYE or CANCEL ends the call's media
    AnchorMedia(ringsip_config::AnchorFlags),
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Name, for logs.
    pub name: Option<String>,
    /// Condition.
    pub cond: Option<Expr>,
    /// Actions.
    pub actions: Vec<Action>,
}

/// The compiled routes.
#[derive(Clone, Debug)]
pub struct Program {
    /// The request route.
    pub request: Vec<Rule>,
    /// The reply route, if any.
    pub reply: Option<Vec<Rule>>,
    /// Named routes, by index.
    pub named: Vec<Vec<Rule>>,
    /// Their names.
    pub names: Vec<String>,
    /// The `[[mtree]]` tables, built, in config order.
    pub trees: Vec<Table>,
    /// Their names.
    pub tree_names: Vec<String>,
    /// The names of the `[[htable]]` tables, in config order (the order of the snapshot's
    /// [`Tables`], which `$sht` and `sht_*` index).
    pub htable_names: Vec<String>,
    /// The `[[acl]]` groups, built, in config order (`$si in acl NAME` indexes them).
    pub acls: Vec<AclSet>,
    /// Their names.
    pub acl_names: Vec<String>,
}

/// A built `[[acl]]` group: its IPv4 and IPv6 entries as (network, mask, port) with port 0
/// for any port, most specific first. Groups are small: a match is a linear scan, without
/// allocation.
#[derive(Clone, Debug, Default)]
pub struct AclSet {
    v4: Box<[(u32, u32, u16)]>,
    v6: Box<[(u128, u128, u16)]>,
}

impl AclSet {
    /// Build a group from its validated entries.
    pub fn new(group: &ringsip_config::AclGroup) -> AclSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut entries: Vec<&ringsip_config::AclEntry> = group.entries.iter().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.net.len));
        for e in entries {
            let port = e.port.unwrap_or(0);
            match e.net.addr {
                IpAddr::V4(a) => {
                    let len = u32::from(e.net.len.min(32));
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    v4.push((u32::from(a) & mask, mask, port));
                }
                IpAddr::V6(a) => {
                    let len = u32::from(e.net.len.min(128));
                    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                    v6.push((u128::from(a) & mask, mask, port));
                }
            }
        }
        AclSet { v4: v4.into(), v6: v6.into() }
    }

    /// Does `src` match an entry: its address in the network and, for an entry with a port,
    /// that port? An IPv4-mapped IPv6 source also matches the IPv4 entries.
    #[inline]
    pub fn matches(&self, src: SocketAddr) -> bool {
        let port = src.port();
        let v4 = |a: u32| self.v4.iter().any(|&(net, mask, p)| a & mask == net && (p == 0 || p == port));
        match src.ip() {
            IpAddr::V4(a) => v4(u32::from(a)),
            IpAddr::V6(a) => {
                let x = u128::from(a);
                self.v6.iter().any(|&(net, mask, p)| x & mask == net && (p == 0 || p == port))
                    || a.to_ipv4_mapped().is_some_and(|m| v4(u32::from(m)))
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An mtree value at run time: its text (what `$mt` reads) and, for a sets tree, the
/// dispatcher set indices in failover order.
#[derive(Clone, Debug)]
pub struct MtValue {
    /// The value as text (`2;1`, `gw-east`, `42`).
    pub text: Box<[u8]>,
    /// Dispatcher set indices (sets trees only); weighted values by descending weight.
    pub sets: Box<[usize]>,
    /// The weights of `sets` for a weighted value (`"1:70;2:30"`); empty: failover order.
    pub weights: Box<[u32]>,
}

/// A built `[[mtree]]`: the tree maps prefixes to indices of distinct values (an LCR table
/// of a million prefixes has a few dozen distinct set lists: each is stored once).
#[derive(Clone, Debug)]
pub struct Table {
    tree: Mtree<u32>,
    values: Vec<MtValue>,
}

impl Table {
    /// The entry index of the longest prefix of `key`.
    #[inline]
    pub fn longest_index(&self, key: &[u8]) -> Option<usize> {
        self.tree.longest_index(key)
    }

    /// The value of entry `index`.
    #[inline]
    pub fn value(&self, index: usize) -> Option<&MtValue> {
        self.tree.value(index).and_then(|&v| self.values.get(v as usize))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// No prefixes.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Nodes of the tree.
    pub fn nodes(&self) -> usize {
        self.tree.nodes()
    }

    /// Distinct values.
    pub fn distinct_values(&self) -> usize {
        self.values.len()
    }

    /// Bytes of the tree and its values.
    pub fn memory_bytes(&self) -> usize {
        self.tree.memory_bytes()
            + self
                .values
                .iter()
                .map(|v| std::mem::size_of::<MtValue>() + v.text.len() + v.sets.len() * std::mem::size_of::<usize>())
                .sum::<usize>()
    }
}

/// Build one `[[mtree]]` from its entries: the tree (values are indices of distinct values)
/// and the distinct values, in config form. An error names the tree and the entry's origin.
pub fn build_tree(t: &ringsip_config::MtreeTable) -> Result<(Mtree<u32>, Vec<ringsip_config::MtreeValue>), String> {
    use ringsip_config::MtreeValue as V;
    use std::collections::HashMap;
    let alphabet = Alphabet::new(t.alphabet.as_bytes()).map_err(|e| format!("mtree {}: {e}", t.name))?;
    let mut entries = Vec::with_capacity(t.entries.len());
    let mut distinct: Vec<V> = Vec::new();
    let mut seen: HashMap<&V, u32> = HashMap::new();
    for e in &t.entries {
        let i = match seen.get(&e.value) {
            Some(&i) => i,
            None => {
                let i =
                    u32::try_from(distinct.len()).map_err(|_| format!("mtree {}: too many distinct values", t.name))?;
                distinct.push(e.value.clone());
                seen.insert(&e.value, i);
                i
            }
        };
        entries.push((e.prefix.as_bytes(), i));
    }
    let tree = Mtree::build(alphabet, entries).map_err(|err| match err {
        BuildError::BadChar { entry, .. } | BuildError::TooLong { entry, .. } => {
            format!("{}: mtree {}: {err}", t.entries[entry].origin, t.name)
        }
        BuildError::Duplicate { first, second } => format!(
            "{}: mtree {}: prefix \"{}\" repeats {}",
            t.entries[second].origin, t.name, t.entries[second].prefix, t.entries[first].origin
        ),
        other => format!("mtree {}: {other}", t.name),
    })?;
    Ok((tree, distinct))
}

impl Table {
    /// A run-time table from a built tree and its distinct values; `set_index` maps the
    /// dispatcher set ids of a sets tree to set indices (an unknown id is an error).
    pub fn new(
        name: &str,
        tree: Mtree<u32>,
        distinct: &[ringsip_config::MtreeValue],
        set_index: &dyn Fn(u32) -> Option<usize>,
    ) -> Result<Table, String> {
        use ringsip_config::MtreeValue as V;
        let values = distinct
            .iter()
            .map(|v| {
                Ok(match v {
                    V::Sets(ids) => MtValue {
                        text: ids.iter().map(u32::to_string).collect::<Vec<_>>().join(";").into_bytes().into(),
                        sets: ids
                            .iter()
                            .map(|id| {
                                set_index(*id)
                                    .ok_or_else(|| format!("mtree {name}: dispatcher set {id} does not exist"))
                            })
                            .collect::<Result<_, String>>()?,
                        weights: Box::new([]),
                    },
                    V::WeightedSets(pairs) => {
                        let mut by_weight: Vec<(u32, u32)> = pairs.clone();
                        by_weight.sort_by_key(|&(_, w)| std::cmp::Reverse(w));
                        MtValue {
                            text: pairs
                                .iter()
                                .map(|(id, w)| format!("{id}:{w}"))
                                .collect::<Vec<_>>()
                                .join(";")
                                .into_bytes()
                                .into(),
                            sets: by_weight
                                .iter()
                                .map(|(id, _)| {
                                    set_index(*id)
                                        .ok_or_else(|| format!("mtree {name}: dispatcher set {id} does not exist"))
                                })
                                .collect::<Result<_, String>>()?,
                            weights: by_weight.iter().map(|&(_, w)| w).collect(),
                        }
                    }
                    V::Text(s) => MtValue { text: s.as_bytes().into(), sets: Box::new([]), weights: Box::new([]) },
                    V::Int(i) => {
                        MtValue { text: i.to_string().into_bytes().into(), sets: Box::new([]), weights: Box::new([]) }
                    }
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Table { tree, values })
    }

    /// The distinct values of every prefix of `key` in the tree, longest first, into `out`
    /// (as many as fit); returns how many.
    #[inline]
    pub fn chain(&self, key: &[u8], out: &mut [u32]) -> usize {
        let mut n = 0;
        for (_, &v) in self.tree.matches(key) {
            if n == out.len() {
                break;
            }
            out[n] = v;
            n += 1;
        }
        n
    }

    /// A distinct value by its index (see [`Table::chain`]).
    #[inline]
    pub fn distinct(&self, index: u32) -> Option<&MtValue> {
        self.values.get(index as usize)
    }

    /// The tree.
    pub fn tree(&self) -> &Mtree<u32> {
        &self.tree
    }

    /// Every prefix of `key` in the tree, longest first: (prefix length, value).
    pub fn matches<'t>(&'t self, key: &[u8]) -> impl Iterator<Item = (usize, &'t MtValue)> + 't {
        let m = self.tree.matches(key);
        m.filter_map(|(len, &v)| Some((len, self.values.get(v as usize)?)))
    }
}

impl Program {
    /// Compile validated routes; `set_index` maps a dispatcher set id to its index. Builds
    /// the trees from their entries and the acl groups. htables are referred to by their
    /// index in `htables`.
    pub fn compile(
        routes: &ringsip_config::Routes,
        mtrees: &[ringsip_config::MtreeTable],
        htables: &[ringsip_config::HtableDef],
        acls: &[ringsip_config::AclGroup],
        set_index: impl Fn(u32) -> Option<usize>,
    ) -> Result<Program, String> {
        let mut tables = Vec::with_capacity(mtrees.len());
        for t in mtrees {
            let (tree, distinct) = build_tree(t)?;
            tables.push(Table::new(&t.name, tree, &distinct, &set_index)?);
        }
        let tree_names = mtrees.iter().map(|t| t.name.clone()).collect();
        let htable_names = htables.iter().map(|t| t.name.clone()).collect();
        Program::with_tables(routes, tree_names, tables, htable_names, acls, set_index)
    }

    /// Compile validated routes over trees that are already built (from a snapshot);
    /// `htable_names` are the `[[htable]]` names in config order; the `[[acl]]` groups are
    /// built here.
    pub fn with_tables(
        routes: &ringsip_config::Routes,
        tree_names: Vec<String>,
        trees: Vec<Table>,
        htable_names: Vec<String>,
        acls: &[ringsip_config::AclGroup],
        set_index: impl Fn(u32) -> Option<usize>,
    ) -> Result<Program, String> {
        let names: Vec<String> = routes.named.keys().cloned().collect();
        let acl_names: Vec<String> = acls.iter().map(|g| g.name.clone()).collect();
        let c = Compiler {
            names: &names,
            tree_names: &tree_names,
            htable_names: &htable_names,
            acl_names: &acl_names,
            set_index: &set_index,
        };
        Ok(Program {
            request: c.route(&routes.request)?,
            reply: routes.reply.as_ref().map(|r| c.route(r)).transpose()?,
            named: routes.named.values().map(|r| c.route(r)).collect::<Result<_, _>>()?,
            names,
            trees,
            tree_names,
            htable_names,
            acls: acls.iter().map(AclSet::new).collect(),
            acl_names,
        })
    }
}

struct Compiler<'c> {
    names: &'c [String],
    tree_names: &'c [String],
    htable_names: &'c [String],
    acl_names: &'c [String],
    set_index: &'c dyn Fn(u32) -> Option<usize>,
}

impl Compiler<'_> {
    fn route(&self, r: &ast::Route) -> Result<Vec<Rule>, String> {
        r.rules
            .iter()
            .map(|rule| {
                Ok(Rule {
                    name: rule.name.clone(),
                    cond: rule.cond.as_ref().map(|e| self.expr(e)).transpose()?,
                    actions: rule.actions.iter().map(|a| self.action(a)).collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    fn operand(&self, o: &ast::Operand) -> Result<Operand, String> {
        Ok(match o {
            ast::Operand::Pv(pv) => Operand::Pv(Pv::compile(pv)),
            ast::Operand::Str(s) => Operand::Lit(Lit::new(s.as_bytes())),
            ast::Operand::Int(i) => {
                Operand::Lit(Lit { bytes: i.to_string().into_bytes().into(), int: Some(*i), ip: None })
            }
            ast::Operand::Myself => Operand::Myself,
            ast::Operand::Sht(s) => Operand::Sht(self.sht(s)?),
        })
    }

    /// The index of a named route.
    fn named(&self, name: &str) -> Result<usize, String> {
        self.names.iter().position(|n| n == name).ok_or_else(|| format!("route {name} does not exist"))
    }

    fn sht(&self, s: &ast::Sht) -> Result<Sht, String> {
        let table = self
            .htable_names
            .iter()
            .position(|n| *n == s.table)
            .ok_or_else(|| format!("htable {} does not exist", s.table))?;
        Ok(Sht { table, key: Template::compile(&s.key) })
    }

    fn expr(&self, e: &ast::Expr) -> Result<Expr, String> {
        use ast::Expr as E;
        let boxed = |e: &ast::Expr| self.expr(e).map(Box::new);
        Ok(match e {
            E::And(a, b) => Expr::And(boxed(a)?, boxed(b)?),
            E::Or(a, b) => Expr::Or(boxed(a)?, boxed(b)?),
            E::Not(a) => Expr::Not(boxed(a)?),
            E::Cmp(l, op, r) => Expr::Cmp(self.operand(l)?, *op, self.operand(r)?),
            E::Match { left, regex, negated } => Expr::Match(self.operand(left)?, regex.clone(), *negated),
            E::InList(l, items) => {
                Expr::InList(self.operand(l)?, items.iter().map(|i| self.operand(i)).collect::<Result<_, _>>()?)
            }
            E::InNet(l, nets) => Expr::InNet(self.operand(l)?, nets.clone()),
            E::InAcl(name) => Expr::InAcl(
                self.acl_names.iter().position(|n| n == name).ok_or_else(|| format!("acl {name} does not exist"))?,
            ),
            E::Exists(pv) => Expr::Exists(Pv::compile(pv)),
            E::ShtExists(s) => Expr::ShtExists(self.sht(s)?),
            E::HasToTag => Expr::HasToTag,
            E::IsRequest => Expr::IsRequest,
            E::IsReply => Expr::IsReply,
            E::Cancelled => Expr::Cancelled,
            E::Flooding => Expr::Flooding,
            E::Timeout => Expr::Timeout,
            E::Replied => Expr::Replied,
            E::True => Expr::True,
        })
    }

    fn action(&self, a: &ast::Action) -> Result<Action, String> {
        use ast::Action as A;
        Ok(match a {
            A::Forward(t) => Action::Forward(t.as_ref().map(|t| (t.addr, t.text.as_bytes().into()))),
            A::Select { set, otherwise } => Action::Select(
                (self.set_index)(*set).ok_or_else(|| format!("dispatcher set {set} does not exist"))?,
                otherwise.as_ref().map(|o| self.action(o).map(Box::new)).transpose()?,
            ),
            A::Lookup { tree, key, all, otherwise } => Action::Lookup(
                self.tree_names.iter().position(|n| n == tree).ok_or_else(|| format!("mtree {tree} does not exist"))?,
                Template::compile(key),
                *all,
                otherwise.as_ref().map(|o| self.action(o).map(Box::new)).transpose()?,
            ),
            A::SelectLookup { otherwise } => {
                Action::SelectLookup(otherwise.as_ref().map(|o| self.action(o).map(Box::new)).transpose()?)
            }
            A::Reply { code, reason } => Action::Reply(*code, reason.as_bytes().into()),
            A::Drop => Action::Drop,
            A::Return => Action::Return,
            A::Route(name) => Action::Route(self.named(name)?),
            A::Relay(t) => Action::Relay(t.as_ref().map(|t| (t.addr, t.text.clone()))),
            A::RecordRoute => Action::RecordRoute,
            A::Fork => Action::Fork,
            A::OnFailure(name) => Action::OnFailure(self.named(name)?),
            A::OnReply(name) => Action::OnReply(self.named(name)?),
            A::SelectNext { otherwise } => {
                Action::SelectNext(otherwise.as_ref().map(|o| self.action(o).map(Box::new)).transpose()?)
            }
            A::MarkDown => Action::MarkDown,
            A::AnchorMedia(flags) => Action::AnchorMedia(*flags),
            A::SetHeader { name, value } => Action::SetHeader(
                HeaderName::from_bytes(name.as_bytes()),
                name.as_bytes().into(),
                Template::compile(value),
            ),
            A::AppendHeader { name, value } => Action::AppendHeader(name.as_bytes().into(), Template::compile(value)),
            A::RemoveHeader(name) => {
                Action::RemoveHeader(HeaderName::from_bytes(name.as_bytes()), name.as_bytes().into())
            }
            A::ShtSet { sht, value, expires } => {
                let value = match value {
                    ast::ShtValue::Int(i) => ShtValue::Int(*i),
                    ast::ShtValue::Text(t) => ShtValue::Text(Template::compile(t)),
                    ast::ShtValue::Pv(pv) => ShtValue::Pv(Pv::compile(pv)),
                };
                Action::Sht(ShtWrite::Set(self.sht(sht)?, value, *expires))
            }
            A::ShtInc { sht, by } => Action::Sht(ShtWrite::Inc(self.sht(sht)?, *by)),
            A::ShtDelete(sht) => Action::Sht(ShtWrite::Delete(self.sht(sht)?)),
        })
    }
}

/// A value read from the message.
#[derive(Clone, Copy, Debug)]
pub enum Val<'v> {
    /// Absent.
    None,
    /// Bytes of the message (or of the context).
    Bytes(&'v [u8]),
    /// A number.
    Int(i64),
    /// An address.
    Ip(IpAddr),
}

/// Ringsip's own addresses, for `myself`.
#[derive(Clone, Debug, Default)]
pub struct Myself {
    /// Listen addresses.
    pub addrs: Vec<SocketAddr>,
    /// The advertised host, if any (compared case-insensitively).
    pub names: Vec<Box<[u8]>>,
}

impl Myself {
    /// Is `ip` one of ours?
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.ip() == ip)
    }

    /// Is the URI host (and port, 5060 when absent) ours?
    pub fn has_uri(&self, uri: &Uri<'_>) -> bool {
        let port = uri.port().unwrap_or(if uri.scheme() == ringsip_proto::Scheme::Sips { 5061 } else { 5060 });
        match uri.host() {
            Some(h) => match h.ip() {
                Some(ip) => self.addrs.iter().any(|a| a.ip() == ip && a.port() == port),
                None => {
                    let host = uri.host_bytes();
                    self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
                        && self.addrs.iter().any(|a| a.port() == port)
                }
            },
            None => false,
        }
    }

    /// Is the host (without port) ours?
    pub fn has_host(&self, host: &[u8]) -> bool {
        if let Some(ip) = std::str::from_utf8(host).ok().and_then(|h| h.trim_matches(['[', ']']).parse().ok()) {
            return self.has_ip(ip);
        }
        self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// What a failure route knows about the branch that failed (None outside failure routes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Failure {
    /// The transaction was CANCELled (`cancelled`).
    pub cancelled: bool,
    /// The branch ended by a local timeout, without a final response (`timeout`).
    pub timeout: bool,
    /// The branch received a response, even a provisional one (`replied`).
    pub replied: bool,
    /// The final status code of the branch (`$rs`): 408 on a local timeout.
    pub code: u16,
    /// Its reason phrase (`$rr`).
    pub reason: &'static [u8],
}

/// What the engine reads: the message and its context.
pub struct Ctx<'m, 'a> {
    /// The message.
    pub msg: &'m Message<'a>,
    /// Sender.
    pub src: SocketAddr,
    /// Local address it arrived on.
    pub local: SocketAddr,
    /// `$du`, once chosen.
    pub du: Option<&'m [u8]>,
    /// Ringsip's addresses.
    pub myself: &'m Myself,
    /// The program's prefix trees (for `$mt`).
    pub trees: &'m [Table],
    /// What the last `lookup` matched: (tree, entry).
    pub mt: Option<(usize, usize)>,
    /// The snapshot's htables (for `$sht` and `sht_*`).
    pub htables: &'m Tables,
    /// The program's acl groups (for `$si in acl NAME`).
    pub acls: &'m [AclSet],
    /// When the message was received: the time htable entries expire against.
    pub now: Instant,
    /// In a failure route: the branch that failed (`cancelled`, `timeout`, `replied`, and
    /// `$rs`/`$rr`, which then read its status, as the message is the request). `None`
    /// elsewhere.
    pub failure: Option<Failure>,
}

impl<'m> Ctx<'m, '_> {
    /// Read a pseudo-variable. Parse errors read as absent.
    pub fn fetch(&self, pv: &Pv) -> Val<'m> {
        let m = self.msg;
        let b = |v: Option<&'m [u8]>| v.map_or(Val::None, Val::Bytes);
        match pv {
            Pv::SrcIp => Val::Ip(self.src.ip()),
            Pv::SrcPort => Val::Int(self.src.port() as i64),
            Pv::LocalIp => Val::Ip(self.local.ip()),
            Pv::LocalPort => Val::Int(self.local.port() as i64),
            Pv::Proto => Val::Bytes(b"udp"),
            Pv::Method => match m.method_bytes() {
                Some(mb) => Val::Bytes(mb),
                None => b(m.cseq().ok().map(|c| c.method)),
            },
            Pv::RUri => b(m.request_uri_bytes()),
            Pv::RUser => b(m.request_uri().ok().and_then(|u| u.user())),
            Pv::RDomain => b(m.request_uri().ok().map(|u| u.host_bytes())),
            Pv::RPort => match m.request_uri().ok().and_then(|u| u.port()) {
                Some(p) => Val::Int(p as i64),
                None => Val::None,
            },
            Pv::FromUri => b(m.from().ok().map(|a| a.uri().as_bytes())),
            Pv::FromUser => b(m.from().ok().and_then(|a| a.uri().user())),
            Pv::FromDomain => b(m.from().ok().map(|a| a.uri().host_bytes())),
            Pv::FromTag => b(m.from().ok().and_then(|a| a.tag())),
            Pv::ToUri => b(m.to().ok().map(|a| a.uri().as_bytes())),
            Pv::ToUser => b(m.to().ok().and_then(|a| a.uri().user())),
            Pv::ToDomain => b(m.to().ok().map(|a| a.uri().host_bytes())),
            Pv::ToTag => b(m.to().ok().and_then(|a| a.tag())),
            Pv::CallId => b(m.call_id().ok()),
            Pv::CSeq => m.cseq().ok().map_or(Val::None, |c| Val::Int(c.number as i64)),
            Pv::UserAgent => b(m.header(HeaderName::UserAgent)),
            Pv::DstUri => b(self.du),
            Pv::Status => match self.failure {
                Some(f) => Val::Int(i64::from(f.code)),
                None => m.status().map_or(Val::None, |s| Val::Int(s as i64)),
            },
            Pv::Reason => match (self.failure, m.start_line()) {
                (Some(f), _) => Val::Bytes(f.reason),
                (None, ringsip_proto::StartLine::Response { reason, .. }) => Val::Bytes(reason),
                _ => Val::None,
            },
            Pv::MtValue => b(self.mt.and_then(|(t, v)| self.trees.get(t)?.value(v)).map(|v| &*v.text)),
            Pv::Hdr(HeaderName::Other, raw) => {
                b(m.headers().find(|h| h.raw_name.eq_ignore_ascii_case(raw)).map(|h| h.value))
            }
            Pv::Hdr(name, _) => b(m.header(*name)),
        }
    }

    fn operand(&self, o: &'m Operand) -> Val<'m> {
        match o {
            Operand::Pv(pv) => self.fetch(pv),
            Operand::Lit(l) => Val::Bytes(&l.bytes),
            // read through `with_operand` (the value lives in the table)
            Operand::Myself | Operand::Sht(_) => Val::None,
        }
    }

    /// Call `f` with the value of `o`; an htable entry is read in place.
    fn with_operand<R>(&self, o: &'m Operand, f: impl FnMut(Val<'_>) -> R) -> R {
        match o {
            Operand::Sht(s) => self.sht(s, f),
            other => {
                let mut f = f;
                f(self.operand(other))
            }
        }
    }

    /// Render the key of `$sht(...)` into `buf`: `None` when it is empty or does not fit.
    pub fn sht_key<'b>(&self, s: &Sht, buf: &'b mut [u8; MAX_SHT_KEY]) -> Option<&'b [u8]> {
        match s.key.render(self, buf) {
            Some(n) if n > 0 => Some(&buf[..n]),
            _ => None,
        }
    }

    /// Call `f` with the value of `$sht(table=>key)`: an integer, or text; [`Val::None`] when
    /// the key is missing or expired (or empty, or longer than [`MAX_SHT_KEY`]). Takes no lock
    /// and allocates nothing: the key is rendered on the stack, the value read in place.
    pub fn sht<R>(&self, s: &Sht, mut f: impl FnMut(Val<'_>) -> R) -> R {
        let mut buf = [0u8; MAX_SHT_KEY];
        let hit = match (self.sht_key(s, &mut buf), self.htables.get(s.table)) {
            (Some(key), Some(t)) => t.get(key, self.now, |v| {
                f(match v {
                    Value::Int(i) => Val::Int(*i),
                    Value::Text(b) => Val::Bytes(b),
                })
            }),
            _ => None,
        };
        match hit {
            Some(r) => r,
            None => f(Val::None),
        }
    }

    /// `exists $sht(table=>key)`: the key is present and not expired.
    pub fn sht_exists(&self, s: &Sht) -> bool {
        let mut buf = [0u8; MAX_SHT_KEY];
        match (self.sht_key(s, &mut buf), self.htables.get(s.table)) {
            (Some(key), Some(t)) => t.exists(key, self.now),
            _ => false,
        }
    }

    /// Run an htable write (`sht_set`, `sht_inc`, `sht_delete`). A text value is rendered
    /// into `scratch` first. A new key allocates (the table copies it).
    pub fn write_sht(&self, w: &ShtWrite, scratch: &mut [u8]) -> Result<(), ShtWriteError> {
        let mut buf = [0u8; MAX_SHT_KEY];
        let (ShtWrite::Set(s, ..) | ShtWrite::Inc(s, _) | ShtWrite::Delete(s)) = w;
        let table = self.htables.get(s.table).ok_or(ShtWriteError::NoTable)?;
        let key = self.sht_key(s, &mut buf).ok_or(ShtWriteError::Key)?;
        match w {
            ShtWrite::Set(_, value, expires) => {
                let value = match value {
                    ShtValue::Int(i) => Value::Int(*i),
                    ShtValue::Text(t) => {
                        let n = t.render(self, scratch).ok_or(ShtWriteError::Value)?;
                        Value::Text(scratch[..n].into())
                    }
                    ShtValue::Pv(pv) => match self.fetch(pv) {
                        Val::None => return Err(ShtWriteError::Value),
                        Val::Int(i) => Value::Int(i),
                        Val::Bytes(b) => Value::Text(b.into()),
                        Val::Ip(ip) => Value::Text(ip_text(ip, &mut [0u8; 48]).into()),
                    },
                };
                table.set(key, value, *expires, self.now).map_err(ShtWriteError::Table)
            }
            ShtWrite::Inc(_, by) => table.inc(key, *by, self.now).map(|_| ()).map_err(ShtWriteError::Table),
            ShtWrite::Delete(_) => {
                table.delete(key);
                Ok(())
            }
        }
    }

    /// Evaluate a condition.
    pub fn eval(&self, e: &'m Expr) -> bool {
        match e {
            Expr::And(a, b) => self.eval(a) && self.eval(b),
            Expr::Or(a, b) => self.eval(a) || self.eval(b),
            Expr::Not(a) => !self.eval(a),
            Expr::True => true,
            Expr::IsRequest => self.msg.is_request(),
            Expr::IsReply => !self.msg.is_request(),
            Expr::HasToTag => self.msg.to().ok().is_some_and(|t| t.tag().is_some()),
            Expr::Cancelled => self.failure.is_some_and(|f| f.cancelled),
            Expr::Flooding => self.htables.pike.as_ref().is_some_and(|p| p.hit(self.src.ip(), self.now)),
            Expr::Timeout => self.failure.is_some_and(|f| f.timeout),
            Expr::Replied => self.failure.is_some_and(|f| f.replied),
            Expr::Exists(pv) => !matches!(self.fetch(pv), Val::None),
            Expr::ShtExists(s) => self.sht_exists(s),
            Expr::Cmp(l, op, r) => self.compare(l, *op, r),
            Expr::Match(l, re, negated) => self.with_operand(l, |v| {
                let mut ibuf = [0u8; 48];
                let mut nbuf = [0u8; 20];
                let text = match v {
                    Val::None => return *negated,
                    Val::Bytes(b) => b,
                    Val::Int(i) => itoa(i, &mut nbuf),
                    Val::Ip(ip) => ip_text(ip, &mut ibuf),
                };
                re.is_match(text) != *negated
            }),
            Expr::InList(l, items) => {
                self.with_operand(l, |lv| items.iter().any(|i| self.compare_val(l, lv, CmpOp::Eq, i)))
            }
            Expr::InNet(l, nets) => self.with_operand(l, |v| match v {
                Val::Ip(ip) => nets.iter().any(|n| in_net(ip, n)),
                _ => false,
            }),
            Expr::InAcl(i) => self.acls.get(*i).is_some_and(|a| a.matches(self.src)),
        }
    }

    fn compare(&self, l: &'m Operand, op: CmpOp, r: &'m Operand) -> bool {
        // `myself` on the right: address membership
        if let Operand::Myself = r {
            let hit = match l {
                Operand::Pv(Pv::RDomain | Pv::RUri) => self.msg.request_uri().is_ok_and(|u| self.myself.has_uri(u)),
                Operand::Pv(Pv::SrcIp) => self.myself.has_ip(self.src.ip()),
                Operand::Pv(pv @ (Pv::FromDomain | Pv::ToDomain)) => match self.fetch(pv) {
                    Val::Bytes(h) => self.myself.has_host(h),
                    _ => false,
                },
                _ => false,
            };
            return match op {
                CmpOp::Eq => hit,
                CmpOp::Ne => !hit,
                _ => false,
            };
        }
        self.with_operand(l, |lv| self.compare_val(l, lv, op, r))
    }

    /// Compare `lv` (the value of `l`) with `r`.
    fn compare_val(&self, l: &Operand, lv: Val<'_>, op: CmpOp, r: &'m Operand) -> bool {
        let (rv, rlit) = match r {
            Operand::Lit(lit) => (Val::Bytes(&lit.bytes), Some(lit)),
            other => (self.operand(other), None),
        };
        if matches!(lv, Val::None) || matches!(rv, Val::None) {
            return op == CmpOp::Ne && !(matches!(lv, Val::None) && matches!(rv, Val::None));
        }
        // numbers
        let as_int = |v: Val<'_>, lit: Option<&Lit>| match v {
            Val::Int(i) => Some(i),
            Val::Bytes(b) => match lit {
                Some(l) => l.int,
                None => std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()),
            },
            _ => None,
        };
        if let (Some(a), Some(b)) = (as_int(lv, None), as_int(rv, rlit)) {
            return match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                CmpOp::Lt => a < b,
                CmpOp::Le => a <= b,
                CmpOp::Gt => a > b,
                CmpOp::Ge => a >= b,
                CmpOp::StartsWith | CmpOp::EndsWith | CmpOp::Contains => {
                    let (mut x, mut y) = ([0u8; 20], [0u8; 20]);
                    bytes_op(itoa(a, &mut x), op, itoa(b, &mut y), false)
                }
            };
        }
        // addresses
        if let Val::Ip(ip) = lv {
            if let Some(rip) = rlit.and_then(|l| l.ip).or(match rv {
                Val::Ip(x) => Some(x),
                _ => None,
            }) {
                return match op {
                    CmpOp::Eq => ip == rip,
                    CmpOp::Ne => ip != rip,
                    _ => false,
                };
            }
        }
        // text: numbers and addresses rendered into stack buffers
        let (mut lb, mut rb) = ([0u8; 48], [0u8; 48]);
        let (mut ln, mut rn) = ([0u8; 20], [0u8; 20]);
        let lt: &[u8] = match lv {
            Val::Bytes(b) => b,
            Val::Int(i) => itoa(i, &mut ln),
            Val::Ip(ip) => ip_text(ip, &mut lb),
            Val::None => b"",
        };
        let rt: &[u8] = match rv {
            Val::Bytes(b) => b,
            Val::Int(i) => itoa(i, &mut rn),
            Val::Ip(ip) => ip_text(ip, &mut rb),
            Val::None => b"",
        };
        let caseless = matches!(l, Operand::Pv(pv) if pv.is_host());
        bytes_op(lt, op, rt, caseless)
    }
}

fn bytes_op(a: &[u8], op: CmpOp, b: &[u8], caseless: bool) -> bool {
    let eq = |x: &[u8], y: &[u8]| if caseless { x.eq_ignore_ascii_case(y) } else { x == y };
    match op {
        CmpOp::Eq => eq(a, b),
        CmpOp::Ne => !eq(a, b),
        CmpOp::StartsWith => a.len() >= b.len() && eq(&a[..b.len()], b),
        CmpOp::EndsWith => a.len() >= b.len() && eq(&a[a.len() - b.len()..], b),
        CmpOp::Contains => b.is_empty() || a.windows(b.len()).any(|w| eq(w, b)),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => false,
    }
}

/// Is `ip` inside `net`?
pub fn in_net(ip: IpAddr, net: &Cidr) -> bool {
    match (ip, net.addr) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = net.len.min(32) as u32;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = net.len.min(128) as u32;
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        // an IPv4-mapped IPv6 source matches IPv4 networks
        (IpAddr::V6(a), IpAddr::V4(_)) => a.to_ipv4_mapped().is_some_and(|v4| in_net(IpAddr::V4(v4), net)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
