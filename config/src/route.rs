//! The route language: the AST a config's `[[route.*]]` rules compile to.
//!
//! A route is an ordered list of rules. A rule has an optional condition (`if`) and a list
//! of actions (`do`). Rules run in order; a rule whose condition holds runs its actions in
//! order. `forward`, `relay`, `reply` and `drop` end the processing of the message; `return`
//! leaves the current named route and continues in its caller; reaching the end of the
//! request route without a terminal action drops the request (counted as `route_end`).
//!
//! `relay` forwards statefully (a server transaction, a client transaction per branch); the
//! named routes armed by `on_failure` and `on_reply` run later, for that transaction: a
//! failure route with the request when a branch fails, a reply route for its replies.
//!
//! Pseudo-variables use Kamailio's names where Kamailio has one.

use std::net::IpAddr;

/// A pseudo-variable: a value read from the message or its context.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Pv {
    /// `$si`: source IP of the message.
    SrcIp,
    /// `$sp`: source port.
    SrcPort,
    /// `$Ri`: the local IP the message was received on.
    LocalIp,
    /// `$Rp`: the local port the message was received on.
    LocalPort,
    /// `$proto`: transport of the message (`udp`).
    Proto,
    /// `$rm`: request method (for replies: the CSeq method).
    Method,
    /// `$ru`: the whole Request-URI.
    RUri,
    /// `$rU`: Request-URI user.
    RUser,
    /// `$rd`: Request-URI host (domain).
    RDomain,
    /// `$rp`: Request-URI port (empty when absent).
    RPort,
    /// `$fu`: From URI.
    FromUri,
    /// `$fU`: From URI user.
    FromUser,
    /// `$fd`: From URI host.
    FromDomain,
    /// `$ft`: From tag.
    FromTag,
    /// `$tu`: To URI.
    ToUri,
    /// `$tU`: To URI user.
    ToUser,
    /// `$td`: To URI host.
    ToDomain,
    /// `$tt`: To tag.
    ToTag,
    /// `$ci`: Call-ID.
    CallId,
    /// `$cs`: CSeq number.
    CSeq,
    /// `$ua`: User-Agent.
    UserAgent,
    /// `$du`: the destination URI chosen so far (by `select` or `forward <uri>`).
    DstUri,
    /// `$rs`: reply status code (reply routes); in a failure route, the final status of the
    /// branch that failed (408 after a local timeout).
    Status,
    /// `$rr`: reply reason phrase (reply routes); in a failure route, the failed branch's.
    Reason,
    /// `$mt`: the value the last `lookup` matched, as text (`2;1` for a sets tree); empty
    /// before a lookup or when it matched nothing.
    MtValue,
    /// `$hdr(Name)`: the value of the first header with that name (compact forms and
    /// case-insensitive). The string is the name as written in the config.
    Hdr(String),
}

impl Pv {
    /// The name as written in a config (`"$rU"`); `None` for `$hdr(...)`, whose name
    /// includes the header (see `Display`).
    pub fn short_name(&self) -> Option<&'static str> {
        Some(match self {
            Pv::SrcIp => "$si",
            Pv::SrcPort => "$sp",
            Pv::LocalIp => "$Ri",
            Pv::LocalPort => "$Rp",
            Pv::Proto => "$proto",
            Pv::Method => "$rm",
            Pv::RUri => "$ru",
            Pv::RUser => "$rU",
            Pv::RDomain => "$rd",
            Pv::RPort => "$rp",
            Pv::FromUri => "$fu",
            Pv::FromUser => "$fU",
            Pv::FromDomain => "$fd",
            Pv::FromTag => "$ft",
            Pv::ToUri => "$tu",
            Pv::ToUser => "$tU",
            Pv::ToDomain => "$td",
            Pv::ToTag => "$tt",
            Pv::CallId => "$ci",
            Pv::CSeq => "$cs",
            Pv::UserAgent => "$ua",
            Pv::DstUri => "$du",
            Pv::Status => "$rs",
            Pv::Reason => "$rr",
            Pv::MtValue => "$mt",
            Pv::Hdr(_) => return None,
        })
    }
}

impl std::fmt::Display for Pv {
    /// The pseudo-variable as written in a config: `$rU`, `$hdr(X-Foo)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pv::Hdr(name) => write!(f, "$hdr({name})"),
            pv => f.write_str(pv.short_name().unwrap_or("$?")),
        }
    }
}

/// A literal or pseudo-variable operand.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Operand {
    /// A pseudo-variable.
    Pv(Pv),
    /// A string literal (`"..."` or `'...'`), or a bare word (`INVITE`).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// `myself`: matches any of ringsip's own addresses (listen and advertised), as
    /// Kamailio's `myself`. Only valid on the right of `==`/`!=` with `$rd`, `$ru`, `$si`,
    /// `$fd`, `$td`.
    Myself,
    /// `$sht(table=>key)`: the value of `key` in an `[[htable]]` (absent when the key is
    /// missing or expired). Only on the left of a comparison, `=~`/`!~` or `in [...]`.
    Sht(Sht),
}

/// `$sht(table=>key)`: an entry of an `[[htable]]`, as Kamailio's `$sht(table=>key)`.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Sht {
    /// The table's name (validated to exist).
    pub table: String,
    /// The key: text and pseudo-variables, like `$si` or `$fU@$fd` (no `$sht` inside).
    pub key: Template,
}

impl std::fmt::Display for Sht {
    /// As written in a config: `$sht(ipban=>$si)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "$sht({}=>{})", self.table, self.key)
    }
}

/// The value `sht_set` writes.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum ShtValue {
    /// An integer literal (`sht_set ipban $si 1`).
    Int(i64),
    /// A quoted template, stored as text (`sht_set users $fU "$si:$sp"`).
    Text(Template),
    /// A pseudo-variable: an integer one (`$sp`, `$cs`, `$rs`...) stores an integer, any other
    /// its text; an absent one writes nothing (a failed write).
    Pv(Pv),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum CmpOp {
    /// `==` (numeric when both sides are integers, else byte-wise; `$rm` is case-sensitive,
    /// host pseudo-variables compare case-insensitively)
    Eq,
    /// `!=`
    Ne,
    /// `<` (numeric only)
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `^=`: starts with
    StartsWith,
    /// `$=`: ends with
    EndsWith,
    /// `*=`: contains
    Contains,
}

/// A network prefix for `in` conditions on `$si`/`$Ri` (and `[[acl]]` entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

/// A condition.
#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum Expr {
    /// `a and b`
    And(#[rkyv(omit_bounds)] Box<Expr>, #[rkyv(omit_bounds)] Box<Expr>),
    /// `a or b`
    Or(#[rkyv(omit_bounds)] Box<Expr>, #[rkyv(omit_bounds)] Box<Expr>),
    /// `not a`
    Not(#[rkyv(omit_bounds)] Box<Expr>),
    /// `left OP right`
    Cmp(Operand, CmpOp, Operand),
    /// `left =~ "regex"` (`negated`: `!~`). Compiled at load; matches bytes.
    Match {
        left: Operand,
        #[rkyv(with = RegexAsText)]
        regex: regex::bytes::Regex,
        negated: bool,
    },
    /// `left in ["a", "b", 3]`
    InList(Operand, Vec<Operand>),
    /// `$si in 10.0.0.0/8` or `$si in [10.0.0.0/8, 192.0.2.1]`
    InNet(Operand, Vec<Cidr>),
    /// `$si in acl NAME`: the source address (and, for entries with a port, the source
    /// port) matches an entry of the `[[acl]]` group NAME (validated to exist).
    InAcl(String),
    /// `exists $hdr(X)` / `exists $tt`: the value is present (even if empty).
    Exists(Pv),
    /// `exists $sht(table=>key)`: the key is in the htable and not expired.
    ShtExists(Sht),
    /// `has_totag`: the To header has a tag (an in-dialog request).
    HasToTag,
    /// `is_request`
    IsRequest,
    /// `is_reply`
    IsReply,
    /// `cancelled`: the transaction was CANCELled (failure routes; false elsewhere).
    Cancelled,
    /// `timeout`: the failed branch ended by a local timeout, no final response (failure
    /// routes; false elsewhere).
    Timeout,
    /// `replied`: the failed branch received a response, even a provisional one (failure
    /// routes; false elsewhere).
    Replied,
    /// `flooding`: count this message against its source IP in the `[pike]` flood detector;
    /// true when the source sent more than `[pike] limit` requests within the sliding
    /// `window` (this one included). Kamailio's `pike_check_req()` (which returns false then).
    Flooding,
    /// `true`
    True,
}

/// A piece of a value template: literal text or a pseudo-variable (`"from $si:$sp"`).
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A pseudo-variable, substituted at run time (empty when absent).
    Pv(Pv),
}

/// A string that may contain pseudo-variables.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Template(pub Vec<Piece>);

impl std::fmt::Display for Template {
    /// As written (without quotes): `$fU@$fd`, a literal `$` as `\$`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.0 {
            match p {
                Piece::Text(t) => f.write_str(&t.replace('$', "\\$"))?,
                Piece::Pv(pv) => write!(f, "{pv}")?,
            }
        }
        Ok(())
    }
}

/// A forwarding target given explicitly: `forward "udp:192.0.2.10:5060"` or
/// `forward "sip:192.0.2.10:5060"`. Host names are refused (no DNS on the hot path).
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Target {
    /// The destination as written.
    pub text: String,
    /// The address to send to.
    pub addr: std::net::SocketAddr,
}

/// An action.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum Action {
    /// `forward`: stateless forward to `$du` if set, else to the top Route (after ringsip's
    /// own entries are removed) or the Request-URI; `forward "<target>"` to an explicit one.
    Forward(Option<Target>),
    /// `select <set>` / `select <set> else <action>`: pick a destination from a dispatcher
    /// set into `$du`; when no destination is available run `otherwise` (or, without
    /// `else`, continue with the next action having selected nothing).
    Select {
        /// The dispatcher set id (validated to exist).
        set: u32,
        /// What to do when nothing is available.
        #[rkyv(omit_bounds)]
        otherwise: Option<Box<Action>>,
    },
    /// `lookup <tree> <key>` / `lookup <tree> <key> else <action>`: the longest prefix of
    /// `key` (a pseudo-variable like `$rU`, or a quoted template) in the `[[mtree]]` named
    /// `tree`; its value becomes `$mt` (and, for a sets tree, what `select $mt` chooses
    /// from). When nothing matches run `otherwise` (or continue with `$mt` empty).
    /// With `all` (`lookup <tree> <key> all`), every matching prefix counts, longest first:
    /// `$mt` is the longest one's value, and `select $mt` goes on to the sets of the shorter
    /// prefixes when those of the longer ones have nothing available.
    Lookup {
        /// The tree's name (validated to exist).
        tree: String,
        /// The key.
        key: Template,
        /// All matches, longest first, instead of the longest only.
        all: bool,
        /// What to do when no prefix matches.
        #[rkyv(omit_bounds)]
        otherwise: Option<Box<Action>>,
    },
    /// `select $mt` / `select $mt else <action>`: pick a destination from the dispatcher sets
    /// the last `lookup` of a sets tree matched, in their order (LCR: the first set with an
    /// available destination); when none has one, or no lookup matched, run `otherwise`.
    SelectLookup {
        /// What to do when nothing is available.
        #[rkyv(omit_bounds)]
        otherwise: Option<Box<Action>>,
    },
    /// `reply <code> "<reason>"`: answer the request statelessly (requests only).
    Reply {
        /// 100–699.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// `drop`: discard silently (counted).
    Drop,
    /// `return`: leave the current named route.
    Return,
    /// `route <name>`: run a named route (validated to exist; no recursion).
    Route(String),
    /// `set_header <Name> "<value>"`: replace every line of the header with one line (or add it).
    SetHeader {
        /// Header name as written.
        name: String,
        /// Value template.
        value: Template,
    },
    /// `append_header <Name> "<value>"`: add a header line at the end of the header section.
    AppendHeader {
        /// Header name as written.
        name: String,
        /// Value template.
        value: Template,
    },
    /// `remove_header <Name>`: remove every line of the header.
    RemoveHeader(String),
    /// `sht_set <table> <key> <value> [expires <duration>]`: write an htable entry. Without
    /// `expires` the entry lives for the table's `autoexpire` (or forever without one).
    ShtSet {
        /// The table and the key.
        sht: Sht,
        /// The value.
        value: ShtValue,
        /// How long the entry lives (whole seconds, 1 s to 365 days).
        expires: Option<std::time::Duration>,
    },
    /// `sht_inc <table> <key> [<by>]`: add `by` (default 1; negative subtracts) to the integer
    /// at the key; a missing or expired key starts from 0.
    ShtInc {
        /// The table and the key.
        sht: Sht,
        /// What to add.
        by: i64,
    },
    /// `sht_delete <table> <key>`: remove the key.
    ShtDelete(Sht),
    /// `relay` / `relay "<target>"`: stateful forward (a server transaction for the request, a
    /// client transaction per branch, responses back statefully). The target is chosen as for
    /// `forward`. In a failure route it starts a new branch (serial forking). Requests only.
    Relay(Option<Target>),
    /// `fork`: relay in parallel to every available destination of the set the last
    /// `select` chose from (parallel forking, RFC 3261 §16.6): the first 2xx wins and the
    /// other branches are cancelled; a 6xx cancels them too; when every branch has failed the
    /// best failure goes to the failure route. Requests only.
    Fork,
    /// `record_route`: add a Record-Route header (ringsip's address, `;lr`) to the request
    /// when it is forwarded or relayed, so that the dialog's later requests come through
    /// ringsip. Requests only.
    RecordRoute,
    /// `on_failure <name>`: run the named route (validated to exist) as the failure route of
    /// the transaction the next `relay` creates, when its branch ends without a 2xx (a 3xx-6xx
    /// reply, a local timeout, a CANCEL). The route runs with the request as the message.
    /// Requests only; a failure route may arm itself again (failover loops).
    OnFailure(String),
    /// `on_reply <name>`: run the named route (validated to exist) for every reply of the
    /// transaction the next `relay` creates. It is a reply route: the same restrictions apply.
    /// Requests only.
    OnReply(String),
    /// `select next` / `select next else <action>`: pick the next alternative destination
    /// after an earlier `select <set>` or `select $mt` (the set's other destinations in order,
    /// then, after `select $mt`, the next sets' destinations), skipping destinations that are
    /// down or already tried; when none is left run `otherwise` (or carry on with nothing
    /// selected). Kamailio's `ds_next_dst`, LCR's `next_gw`.
    SelectNext {
        /// What to do when no alternative is left.
        #[rkyv(omit_bounds)]
        otherwise: Option<Box<Action>>,
    },
    /// `mark_down`: mark the dispatcher destination the failed branch went to as down, until
    /// the prober sees it answer again (Kamailio's `ds_mark_dst("ip")`). Failure routes only.
    MarkDown,
    /// `anchor_media [flags]`: put the call's media through ringsip's RTP relay (`[media]`,
    /// required), as Kamailio's `rtpengine_manage()`. It marks the request the route is
    /// handling; what happens depends on the message relayed statefully (`relay` or `fork`)
    /// and on the replies that come back:
    ///
    /// * an INVITE, UPDATE or re-INVITE with SDP is an **offer**: ringsip takes relay ports for
    ///   each media stream and rewrites the SDP (`c=`, `m=` ports) to point at them;
    /// * the 183 or 200 that answers it with SDP is the **answer**, rewritten the same way for
    ///   the other side; an ACK with SDP (late offer: an INVITE without SDP) is the answer too;
    /// * a BYE or a CANCEL ends the call's media (its ports return to the pool), and so does a
    ///   failed INVITE (a final response of 300 or more without any earlier 2xx).
    ///
    /// A stateless `forward` carries no media state: anchoring needs the transaction. Not in
    /// reply routes (it acts on a request); allowed in request and failure routes.
    AnchorMedia(AnchorFlags),
}

/// The flags of `anchor_media` (space-separated words after it; each at most once). All off
/// by default: symmetric RTP (latch to where each side's media comes from), the SIP source
/// address as each side's first guess, ICE kept, `o=` kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AnchorFlags {
    /// `ice_remove`: strip the ICE attributes (`a=candidate`, `a=ice-ufrag`, `a=ice-pwd` and
    /// the other ICE lines) from the SDP, so that both sides use the relay rather than look
    /// for a path of their own (rtpengine's `ICE=remove`).
    pub ice_remove: bool,
    /// `asymmetric`: no latching: send each side's media to the address its SDP gives, not to
    /// where its packets come from (for peers with a public address that send from elsewhere).
    pub asymmetric: bool,
    /// `trust_address`: take the SDP's `c=` address as each side's media address until it
    /// sends, instead of the SIP source address (rtpengine's `trust-address`: for peers known
    /// not to be behind NAT).
    pub trust_address: bool,
    /// `replace_origin`: rewrite the address in `o=` too, not only in `c=` (rtpengine's
    /// `replace-origin`).
    pub replace_origin: bool,
}

impl AnchorFlags {
    /// The flag words, in the order `Display` writes them.
    pub const NAMES: [&'static str; 4] = ["ice_remove", "asymmetric", "trust_address", "replace_origin"];

    /// The flag with this name, to set.
    pub fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "ice_remove" => &mut self.ice_remove,
            "asymmetric" => &mut self.asymmetric,
            "trust_address" => &mut self.trust_address,
            "replace_origin" => &mut self.replace_origin,
            _ => return None,
        })
    }
}

impl std::fmt::Display for AnchorFlags {
    /// As written after `anchor_media`: `ice_remove replace_origin` (empty with no flag).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = [self.ice_remove, self.asymmetric, self.trust_address, self.replace_origin];
        let mut first = true;
        for (name, _) in Self::NAMES.iter().zip(on).filter(|(_, on)| *on) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

/// One rule.
#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Rule {
    /// Optional name (shown in logs and counters).
    pub name: Option<String>,
    /// Condition; `None` always holds.
    pub cond: Option<Expr>,
    /// Actions, in order.
    pub actions: Vec<Action>,
}

/// A route: rules in order.
#[derive(Clone, Debug, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Route {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// Archives a compiled regular expression as its pattern; unarchiving compiles it again (a
/// pattern that no longer compiles makes the snapshot invalid).
pub struct RegexAsText;

impl rkyv::with::ArchiveWith<regex::bytes::Regex> for RegexAsText {
    type Archived = rkyv::string::ArchivedString;
    type Resolver = rkyv::string::StringResolver;

    fn resolve_with(field: &regex::bytes::Regex, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        rkyv::string::ArchivedString::resolve_from_str(field.as_str(), resolver, out);
    }
}

impl<S> rkyv::with::SerializeWith<regex::bytes::Regex, S> for RegexAsText
where
    S: rkyv::rancor::Fallible + rkyv::ser::Writer + ?Sized,
    S::Error: rkyv::rancor::Source,
{
    fn serialize_with(field: &regex::bytes::Regex, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        rkyv::string::ArchivedString::serialize_from_str(field.as_str(), serializer)
    }
}

impl<D> rkyv::with::DeserializeWith<rkyv::string::ArchivedString, regex::bytes::Regex, D> for RegexAsText
where
    D: rkyv::rancor::Fallible + ?Sized,
    D::Error: rkyv::rancor::Source,
{
    fn deserialize_with(field: &rkyv::string::ArchivedString, _: &mut D) -> Result<regex::bytes::Regex, D::Error> {
        regex::bytes::Regex::new(field.as_str()).map_err(<D::Error as rkyv::rancor::Source>::new)
    }
}
